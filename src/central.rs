//! `tobira central …`: the central service and its administration commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::store::chains::ChainId;
use tobira_web::store::resources::Id;
use tobira_web::store::utc_text;
use tobira_web::{AppState, ServeOptions, Store};

/// The database when none is given: the one `scripts/run` and the README use.
const DEFAULT_DATABASE: &str = "sqlite://data/central.db";

/// Arguments of `tobira central`.
#[derive(Debug, Args)]
pub struct CentralArgs {
    /// Database: `sqlite://FILE` or `postgres://…` [default: sqlite://data/central.db].
    /// The service creates a missing SQLite file; the administration commands
    /// refuse to create one at the default path (start the service first).
    #[arg(long, env = "TOBIRA_DATABASE", global = true)]
    database: Option<String>,
    /// The central signing key file (created on first start). Default: next to
    /// the SQLite file, or `tobira-central.key` for PostgreSQL.
    #[arg(long, env = "TOBIRA_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, env = "TOBIRA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seconds a controller may stay silent before a `controller_offline` alarm (30 or more).
    #[arg(long, env = "TOBIRA_OFFLINE_AFTER", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(30..))]
    offline_after: u64,
    /// Minutes an alarm may stay unacknowledged before it is escalated
    /// (shown as such, and written to the audit log for the SIEM).
    #[arg(long, env = "TOBIRA_ESCALATE_AFTER_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=1440))]
    escalate_after_minutes: u64,
    /// Forwards events, alarms and admin-audit entries to a SIEM:
    /// `tcp://HOST:PORT`, `tls://HOST:PORT` (with --siem-ca) or `file:PATH`
    /// (JSON lines). Repeat for several targets.
    #[arg(long = "siem", env = "TOBIRA_SIEM", value_delimiter = ',')]
    siem: Vec<String>,
    /// The SIEM's format on tcp:// and tls:// targets: rfc5424 (syslog,
    /// octet-counted) or jsonl.
    #[arg(long, env = "TOBIRA_SIEM_FORMAT", default_value = "rfc5424", value_parser = parse_siem_format)]
    siem_format: tobira_web::siem::Format,
    /// The CA certificate(s) (PEM) that a tls:// SIEM's certificate must chain to.
    #[arg(long, env = "TOBIRA_SIEM_CA")]
    siem_ca: Option<PathBuf>,
    /// Seconds between signed checkpoints of the admin audit and event chains
    /// (chains whose head did not move are skipped).
    #[arg(long, env = "TOBIRA_CHECKPOINT_EVERY", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    checkpoint_every_secs: u64,
    /// Speak HTTPS with this PEM certificate chain (server certificate first); needs --tls-key.
    #[arg(long, env = "TOBIRA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TOBIRA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Open connections in total; one more is closed at once.
    #[arg(long, env = "TOBIRA_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Open connections from one IP address; one more is closed at once.
    #[arg(long, env = "TOBIRA_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_address: u32,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "TOBIRA_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, env = "TOBIRA_TLS_HANDSHAKE_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    tls_handshake_timeout: u64,
    /// Seconds a connection with no request in progress stays open.
    #[arg(long, env = "TOBIRA_IDLE_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// Days entry/exit and door events are kept; older ones are written to a
    /// signed archive file and removed (0 keeps every event).
    #[arg(long, env = "TOBIRA_RETAIN_EVENTS_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    retain_events_days: u32,
    /// Where retention writes its archive files [default: FILE.archive next
    /// to the SQLite file; required for PostgreSQL unless --retain-events-days 0].
    #[arg(long, env = "TOBIRA_ARCHIVE_DIR", global = true)]
    archive_dir: Option<PathBuf>,
    /// Seconds between retention runs of the service (it also runs at start).
    #[arg(long, env = "TOBIRA_RETENTION_EVERY", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    retention_every_secs: u64,
    /// Minutes a web admin session may stay unused before it ends.
    #[arg(long, env = "TOBIRA_SESSION_IDLE_MINS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1440))]
    session_idle_mins: u32,
    /// Hours after login a web admin session ends, however busy.
    #[arg(long, env = "TOBIRA_SESSION_MAX_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=168))]
    session_max_hours: u32,
    #[command(subcommand)]
    command: Option<CentralCommand>,
}

#[derive(Debug, Subcommand)]
enum CentralCommand {
    /// Admin users of the web admin.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// API tokens for integrations.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Door controllers.
    Controller {
        #[command(subcommand)]
        command: ControllerCommand,
    },
    /// Tamper evidence.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Writes a consistent copy of the running SQLite database to FILE (a new
    /// file, owner-only); PostgreSQL sites use pg_dump (docs/operations.md).
    Backup {
        /// Where the copy goes; an existing file is never overwritten.
        file: PathBuf,
    },
    /// Signs a checkpoint of every chain whose head moved (admin audit, each controller's events).
    Checkpoint,
    /// Re-checks every chain from its rows and against its signed checkpoints; exits non-zero on any problem.
    Verify,
    /// TLS certificates for sites without a PKI.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Retention of events (`--retain-events-days`, `--archive-dir`).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Signed archives of removed events.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Archives and removes the events older than --retain-events-days now.
    Run,
}

#[derive(Debug, Subcommand)]
enum ArchiveCommand {
    /// Checks an archive file on its own: signature, content hash, links
    /// recomputed from the bodies, counts; exits non-zero on any problem.
    /// Needs no database: only the central key (--key-file, or --public-key).
    Verify {
        /// The archive file.
        file: PathBuf,
        /// Central's public key (hex), instead of reading the key file.
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Makes a private CA (ca.pem, ca.key) and a server certificate signed by it
    /// (server.pem, server.key) in DIR; never overwrites a file.
    Init {
        /// Where to write the four files.
        #[arg(long)]
        dir: PathBuf,
        /// A DNS name controllers use to reach the service (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
        /// An IP address controllers use to reach the service (repeatable).
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Creates a user; the password comes from TOBIRA_PASSWORD, else is typed without echo at a terminal, else is the first line of stdin.
    CreateUser {
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin, facilities, operator or security (required: no role is given by default).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Creates an API token and prints it (only its hash is stored).
    Create {
        /// What the token is for.
        #[arg(long)]
        name: String,
        /// admin, facilities, operator or security.
        #[arg(long, default_value = "security", value_parser = parse_role)]
        role: Role,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Lists API tokens: id, name, role, created, expires, last use, state.
    List,
    /// Revokes an API token: refused from its next request on.
    Revoke {
        /// The token's id (from `token list`).
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

#[derive(Debug, Subcommand)]
enum ControllerCommand {
    /// Registers a controller; prints its id, secret and the central public key as JSON.
    Add {
        /// The site it belongs to.
        #[arg(long)]
        site: i64,
        /// A name for it (e.g. "1F east").
        #[arg(long)]
        name: String,
    },
    /// Refuses the controller at sync; its doors keep running on their cached policy.
    Disable {
        /// The controller's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
    /// Accepts a disabled controller again.
    Enable {
        /// The controller's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
    /// Gives the controller a new secret (printed as JSON); the old one stops working.
    RotateSecret {
        /// The controller's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
    /// Removes a controller no door refers to.
    Delete {
        /// The controller's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verifies the admin audit chain and its signed checkpoints; exits non-zero where it breaks.
    Verify,
}

fn parse_id(s: &str) -> Result<Id, String> {
    s.parse::<i64>()
        .ok()
        .and_then(Id::new)
        .ok_or_else(|| format!("{s} is not an id (1 to 4294967295)"))
}

fn parse_siem_format(s: &str) -> Result<tobira_web::siem::Format, String> {
    tobira_web::siem::Format::parse(s)
        .ok_or_else(|| format!("{s} is not a SIEM format (rfc5424, jsonl)"))
}

/// The SIEM targets from the command line, checked before the service starts.
fn siem_targets(args: &CentralArgs) -> anyhow::Result<Vec<tobira_web::siem::Target>> {
    let ca = match &args.siem_ca {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the SIEM CA file {}", path.display()))?,
        ),
        None => None,
    };
    args.siem
        .iter()
        .map(|text| {
            tobira_web::siem::Target::parse(text, args.siem_format, ca.as_deref())
                .with_context(|| format!("--siem {text}"))
        })
        .collect()
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("{s} is not a role (admin, facilities, operator, security)"))
}

/// Where the signing key lives by default.
fn default_key_file(database: &str) -> PathBuf {
    match sqlite_file(database) {
        Some(file) => PathBuf::from(format!("{file}.key")),
        None => PathBuf::from("tobira-central.key"),
    }
}

/// Reads the signing key, or creates one (readable by the owner only).
fn load_or_create_key(path: &Path) -> anyhow::Result<PolicySigner> {
    if let Ok(hex) = std::env::var("TOBIRA_CENTRAL_KEY") {
        return PolicySigner::from_hex(&hex).context("TOBIRA_CENTRAL_KEY");
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            PolicySigner::from_hex(&text).with_context(|| format!("key file {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = PolicySigner::generate();
            write_private(path, &signer.to_hex())
                .with_context(|| format!("creating key file {}", path.display()))?;
            eprintln!(
                "tobira central: created a new signing key in {}",
                path.display()
            );
            Ok(signer)
        }
        Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// The new user's password: from TOBIRA_PASSWORD, else typed at a terminal
/// without echo (asked twice), else the first line of stdin (scripts, CI).
fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TOBIRA_PASSWORD") {
        return Ok(p);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        if first.is_empty() {
            bail!("no password given");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        bail!("no password: set TOBIRA_PASSWORD or pipe it on stdin");
    }
    Ok(line)
}

/// The SQLite file a database URL names, if it is one.
fn sqlite_file(database: &str) -> Option<&str> {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))?;
    Some(path.split('?').next().unwrap_or(path))
}

/// Where the database is, checked before anything is opened: the service may
/// create a SQLite file (and its directory); an administration command may
/// create one only where it was told to, since a token or controller written
/// into a stray database would be refused by the running service.
fn database_for(args: &CentralArgs) -> anyhow::Result<String> {
    let given = args.database.clone();
    let database = given.clone().unwrap_or_else(|| DEFAULT_DATABASE.into());
    let Some(file) = sqlite_file(&database).filter(|f| !f.is_empty() && *f != ":memory:") else {
        return Ok(database);
    };
    if Path::new(file).exists() {
        return Ok(database);
    }
    match (&args.command, given) {
        (None, _) => {
            if let Some(dir) = Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("creating the database directory {}", dir.display())
                })?;
            }
            eprintln!("tobira central: creating a new database at {file}");
        }
        (Some(_), None) => bail!(
            "no database at {file}; start `tobira central` first (it creates it) or pass --database"
        ),
        (Some(_), Some(_)) => eprintln!("tobira central: creating a new database at {file}"),
    }
    Ok(database)
}

impl CentralArgs {
    /// Whether this runs the service (rather than an administration command).
    pub fn serves(&self) -> bool {
        self.command.is_none()
    }
}

/// Runs `tobira central`.
pub fn run(args: CentralArgs) -> anyhow::Result<()> {
    // Certificates need no database.
    if let Some(CentralCommand::Tls {
        command: TlsCommand::Init { dir, names, ips },
    }) = &args.command
    {
        return tls_init(dir, names, ips);
    }
    // An archive is checked on its own, without the database.
    if let Some(CentralCommand::Archive {
        command: ArchiveCommand::Verify { file, public_key },
    }) = &args.command
    {
        return archive_verify(&args, file, public_key.as_deref());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let database = database_for(&args)?;
        let kind = if sqlite_file(&database).is_some() {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        let store = Store::connect(&database)
            .await
            .with_context(|| format!("opening the {kind} database {}", redact(&database)))?;
        let key_file = args
            .key_file
            .clone()
            .unwrap_or_else(|| default_key_file(&database));
        let signer = load_or_create_key(&key_file)?;
        match args.command {
            None => {
                let targets = siem_targets(&args)?;
                for target in &targets {
                    eprintln!("tobira central: forwarding to the SIEM at {}", target.name);
                }
                let retention = retention_for(&args, &database)?;
                let _forwarders = tobira_web::siem::spawn(&store, targets);
                let state = AppState::new(store.clone(), Arc::new(signer));
                let tls = match (&args.tls_cert, &args.tls_key) {
                    (Some(cert), Some(key)) => Some(tobira_web::Tls::from_pem_files(cert, key)?),
                    _ => None,
                };
                let scheme = if tls.is_some() { "https" } else { "http" };
                let ui = tobira_web::ui::UiOptions {
                    sessions: tobira_web::store::sessions::SessionPolicy {
                        idle_ms: i64::from(args.session_idle_mins) * 60_000,
                        max_ms: i64::from(args.session_max_hours) * 3_600_000,
                    },
                    tls: tls.is_some(),
                    clock: tobira_web::ui::Clock::System,
                };
                let listener = tobira_web::server::bind(args.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", args.listen))?;
                let addr = listener.local_addr()?;
                eprintln!("tobira central: listening on {scheme}://{addr}");
                eprintln!("tobira central: web admin at {scheme}://{addr}/login");
                tobira_web::serve(
                    state,
                    listener,
                    ServeOptions {
                        offline_after: Duration::from_secs(args.offline_after),
                        escalate_after: Duration::from_secs(args.escalate_after_minutes * 60),
                        checkpoint_every: Duration::from_secs(args.checkpoint_every_secs),
                        limits: tobira_web::ConnectionLimits {
                            max_connections: args.max_connections as usize,
                            max_per_address: args.max_connections_per_address as usize,
                            header_timeout: Duration::from_secs(args.header_timeout),
                            handshake_timeout: Duration::from_secs(args.tls_handshake_timeout),
                            idle_timeout: Duration::from_secs(args.idle_timeout),
                        },
                        tls,
                        retention,
                        ui,
                    },
                )
                .await
                .with_context(|| format!("serving on {addr}"))?;
            }
            Some(CentralCommand::Admin {
                command: AdminCommand::CreateUser { username, role },
            }) => {
                let password = read_password()?;
                store.create_user("cli", &username, &password, role).await?;
                eprintln!("created user {username} ({})", role.as_str());
            }
            Some(CentralCommand::Token {
                command: TokenCommand::Create { name, role, days },
            }) => {
                let token = store.create_token("cli", &name, role, days).await?;
                println!("{token}");
            }
            Some(CentralCommand::Token {
                command: TokenCommand::List,
            }) => print_tokens(&store).await?,
            Some(CentralCommand::Token {
                command: TokenCommand::Revoke { id },
            }) => {
                let token = store.revoke_token("cli", id).await?;
                eprintln!("revoked token {id} ({})", token.name);
            }
            Some(CentralCommand::Controller {
                command: ControllerCommand::Add { site, name },
            }) => {
                let creds = store.add_controller("cli", site, &name).await?;
                let out = serde_json::json!({
                    "controller": creds.controller,
                    "secret": creds.secret,
                    "central_public_key": signer.public_key().to_hex(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Some(CentralCommand::Controller {
                command: ControllerCommand::Disable { id },
            }) => {
                store.set_controller_disabled("cli", id, true).await?;
                eprintln!("disabled controller {id}: it is refused at sync; its doors keep their cached policy");
            }
            Some(CentralCommand::Controller {
                command: ControllerCommand::Enable { id },
            }) => {
                store.set_controller_disabled("cli", id, false).await?;
                eprintln!("enabled controller {id}");
            }
            Some(CentralCommand::Controller {
                command: ControllerCommand::RotateSecret { id },
            }) => {
                let creds = store.rotate_controller_secret("cli", id).await?;
                let out = serde_json::json!({
                    "controller": creds.controller,
                    "secret": creds.secret,
                    "central_public_key": signer.public_key().to_hex(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Some(CentralCommand::Controller {
                command: ControllerCommand::Delete { id },
            }) => {
                store.delete_controller("cli", id).await?;
                eprintln!("deleted controller {id}");
            }
            Some(CentralCommand::Audit {
                command: AuditCommand::Verify,
            }) => {
                let report = store
                    .verify_chain(&signer.public_key(), &ChainId::AdminAudit)
                    .await?;
                match &report.problem {
                    None => println!(
                        "admin audit chain intact: {} entries{}",
                        report.records,
                        reached(&report)
                    ),
                    Some(problem) => bail!("admin audit chain broken: {problem}"),
                }
            }
            Some(CentralCommand::Checkpoint) => {
                let run = store
                    .make_checkpoints(&signer, tobira_web::store::now_ms())
                    .await?;
                for c in &run.made {
                    println!(
                        "checkpoint {}: {} record {} head {}",
                        c.id, c.chain, c.count, c.head
                    );
                }
                if run.made.is_empty() {
                    println!("no chain moved since its last checkpoint");
                }
                if !run.refused.is_empty() {
                    bail!("not signed:\n{}", run.refused.join("\n"));
                }
            }
            Some(CentralCommand::Verify) => {
                let mut v = store.verify_chains(&signer.public_key()).await?;
                // The archives retention wrote, where the flags say they are.
                let archive_dir = args.archive_dir.clone().or_else(|| {
                    sqlite_file(&database).map(|f| PathBuf::from(format!("{f}.archive")))
                });
                if let Some(dir) = archive_dir {
                    let missing = store.check_archives(&dir).await?;
                    v.ok &= missing.is_empty();
                    v.problems.extend(missing);
                }
                for c in &v.chains {
                    let gaps: Vec<String> =
                        c.gaps.iter().map(|g| format!("{}-{}", g.from, g.to)).collect();
                    println!(
                        "{}: {} records{}{}{}{}",
                        c.chain,
                        c.records,
                        if c.archived > 0 {
                            format!(" (and {} archived by retention)", c.archived)
                        } else {
                            String::new()
                        },
                        reached(c),
                        if gaps.is_empty() {
                            String::new()
                        } else {
                            format!(", gaps recorded at ingest: {}", gaps.join(" "))
                        },
                        if c.problem.is_some() { ", BROKEN" } else { "" }
                    );
                }
                if !v.ok {
                    let problems: Vec<String> = v.problems.iter().map(|p| p.to_string()).collect();
                    bail!("tamper evidence does not hold:\n{}", problems.join("\n"));
                }
                println!("every chain intact");
            }
            Some(CentralCommand::Backup { file }) => {
                let report = store.backup_to(&file).await?;
                println!(
                    "backup written to {}: {} bytes, {} events, {} admin-audit entries; integrity check ok",
                    report.file.display(),
                    report.bytes,
                    report.events,
                    report.audit_entries
                );
                eprintln!(
                    "the signing key is not in the backup: keep a copy of {} apart from it",
                    key_file.display()
                );
            }
            Some(CentralCommand::Tls { .. }) => {
                bail!("tls commands run without a database")
            }
            Some(CentralCommand::Archive { .. }) => {
                bail!("archive commands run without a database")
            }
            Some(CentralCommand::Retention {
                command: RetentionCommand::Run,
            }) => {
                let Some(retention) = retention_for(&args, &database)? else {
                    println!("--retain-events-days 0: every event is kept");
                    return Ok(());
                };
                let now = tobira_web::store::now_ms();
                let run = store
                    .apply_retention(&signer, &retention.archive_dir, retention.cutoff(now), now)
                    .await?;
                for c in &run.cuts {
                    println!(
                        "{}: records {} to {} ({} events) archived to {} and removed",
                        c.chain,
                        c.first_seq,
                        c.through_seq,
                        c.count,
                        retention.archive_dir.join(&c.archive).display()
                    );
                }
                if run.cuts.is_empty() {
                    println!(
                        "no events older than {} days to archive",
                        retention.events_days
                    );
                }
                if !run.refused.is_empty() {
                    bail!("not cut:\n{}", run.refused.join("\n"));
                }
            }
        }
        store.close().await;
        Ok(())
    })
}

/// Retention as the flags set it: `None` with --retain-events-days 0. The
/// archive directory defaults to FILE.archive next to a SQLite file;
/// PostgreSQL has no such place, so it must be given.
fn retention_for(
    args: &CentralArgs,
    database: &str,
) -> anyhow::Result<Option<tobira_web::server::Retention>> {
    if args.retain_events_days == 0 {
        return Ok(None);
    }
    let archive_dir = match (&args.archive_dir, sqlite_file(database)) {
        (Some(dir), _) => dir.clone(),
        (None, Some(file)) => PathBuf::from(format!("{file}.archive")),
        (None, None) => bail!(
            "retention needs --archive-dir on PostgreSQL (or --retain-events-days 0 to keep every event)"
        ),
    };
    Ok(Some(tobira_web::server::Retention {
        events_days: args.retain_events_days,
        archive_dir,
        every: Duration::from_secs(args.retention_every_secs),
    }))
}

/// `tobira central archive verify FILE`: checks the file with central's
/// public key, read from --public-key or the key file (never created here).
fn archive_verify(args: &CentralArgs, file: &Path, public_key: Option<&str>) -> anyhow::Result<()> {
    let key = match public_key {
        Some(hex) => tobira_protocol::PolicyKey::from_hex(hex).context("--public-key")?,
        None => {
            let path = args.key_file.clone().unwrap_or_else(|| {
                default_key_file(args.database.as_deref().unwrap_or(DEFAULT_DATABASE))
            });
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading key file {}", path.display()))?;
            PolicySigner::from_hex(&text)
                .with_context(|| format!("key file {}", path.display()))?
                .public_key()
        }
    };
    match tobira_web::store::retention::verify_archive_file(file, &key) {
        Ok(report) => {
            let m = &report.manifest;
            let gaps: Vec<String> = report
                .gaps
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect();
            println!(
                "archive intact: {} records {} to {} ({} events), cut at {}, signed by the central key{}",
                m.chain,
                m.first,
                m.last,
                m.count,
                utc_text(m.at),
                if gaps.is_empty() {
                    String::new()
                } else {
                    format!("; absent (gaps ingest recorded): {}", gaps.join(" "))
                }
            );
            Ok(())
        }
        Err(e) => bail!("archive {} does not verify: {e}", file.display()),
    }
}

/// ", reaches signed checkpoint N", or nothing when no checkpoint was reached.
fn reached(report: &tobira_web::store::verify::ChainReport) -> String {
    report
        .reaches_checkpoint
        .map(|id| format!(", reaches signed checkpoint {id}"))
        .unwrap_or_default()
}

/// `tobira central tls init`: writes the files and says where each goes.
fn tls_init(dir: &Path, names: &[String], ips: &[std::net::IpAddr]) -> anyhow::Result<()> {
    let written = crate::central_tls::init(dir, names, ips)?;
    let [ca, ca_key, cert, key] = written.as_slice() else {
        bail!("tls init wrote {} files, not 4", written.len());
    };
    println!(
        "CA certificate:     {}  -> copy to each controller, [central] ca_file",
        ca.display()
    );
    println!(
        "CA key:             {}  -> keep offline; only for signing a new server certificate",
        ca_key.display()
    );
    println!(
        "server certificate: {}  -> tobira central --tls-cert",
        cert.display()
    );
    println!(
        "server key:         {}  -> tobira central --tls-key (readable by the service only)",
        key.display()
    );
    Ok(())
}

/// Prints every API token, one a line (never the token or its hash).
async fn print_tokens(store: &Store) -> anyhow::Result<()> {
    let time = |ms: Option<i64>| ms.map_or_else(|| "never".to_string(), utc_text);
    println!(
        "{:<6} {:<24} {:<10} {:<20} {:<20} {:<20} STATE",
        "ID", "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USE"
    );
    let now = tobira_web::store::now_ms();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_tokens(Some(500), cursor.as_deref()).await?;
        for t in &page.items {
            let state = match t.revoked_at {
                Some(at) => format!("revoked {}", utc_text(at.get())),
                None if t.expires_at.get() <= now => "expired".to_string(),
                None => "active".to_string(),
            };
            println!(
                "{:<6} {:<24} {:<10} {:<20} {:<20} {:<20} {state}",
                t.id.get(),
                t.name,
                t.role.as_str(),
                utc_text(t.created_at.get()),
                utc_text(t.expires_at.get()),
                time(t.last_used_at.map(|m| m.get())),
            );
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// The database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_sits_next_to_the_sqlite_file() {
        assert_eq!(
            default_key_file("sqlite:///var/lib/tobira/c.db?mode=rwc"),
            PathBuf::from("/var/lib/tobira/c.db.key")
        );
        assert_eq!(default_key_file("sqlite://c.db"), PathBuf::from("c.db.key"));
        assert_eq!(
            default_key_file("postgres://u:p@h/db"),
            PathBuf::from("tobira-central.key")
        );
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://tobira:hunter2@127.0.0.1/db"),
            "postgres://…@127.0.0.1/db"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
