//! `tobira central …`: the central service and its administration commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
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
    /// Verifies the admin audit chain; exits non-zero where it breaks.
    Verify,
}

fn parse_id(s: &str) -> Result<Id, String> {
    s.parse::<i64>()
        .ok()
        .and_then(Id::new)
        .ok_or_else(|| format!("{s} is not an id (1 to 4294967295)"))
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
                let state = AppState {
                    store: store.clone(),
                    signer: Arc::new(signer),
                };
                let listener = tobira_web::server::bind(args.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", args.listen))?;
                let addr = listener.local_addr()?;
                eprintln!("tobira central: listening on http://{addr}");
                tobira_web::serve(
                    state,
                    listener,
                    ServeOptions {
                        offline_after: Duration::from_secs(args.offline_after),
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
            }) => match store.verify_audit().await? {
                Ok(n) => println!("admin audit chain intact: {n} entries"),
                Err(seq) => bail!("admin audit chain broken at entry {seq}"),
            },
        }
        store.close().await;
        Ok(())
    })
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
