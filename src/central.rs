//! `tobira central …`: the central service and its administration commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::{AppState, ServeOptions, Store};

/// Arguments of `tobira central`.
#[derive(Debug, Args)]
pub struct CentralArgs {
    /// Database: `sqlite://FILE` (created if missing) or `postgres://…`.
    #[arg(
        long,
        env = "TOBIRA_DATABASE",
        default_value = "sqlite://tobira-central.db",
        global = true
    )]
    database: String,
    /// The central signing key file (created on first start). Default: next to
    /// the SQLite file, or `tobira-central.key` for PostgreSQL.
    #[arg(long, env = "TOBIRA_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, env = "TOBIRA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
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
    /// Creates a user; the password comes from TOBIRA_PASSWORD or the first line of stdin.
    CreateUser {
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin, facilities, operator or security.
        #[arg(long, default_value = "admin", value_parser = parse_role)]
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
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verifies the admin audit chain; exits non-zero where it breaks.
    Verify,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("{s} is not a role (admin, facilities, operator, security)"))
}

/// Where the signing key lives by default.
fn default_key_file(database: &str) -> PathBuf {
    match database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
    {
        Some(path) => {
            let file = path.split('?').next().unwrap_or(path);
            PathBuf::from(format!("{file}.key"))
        }
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

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TOBIRA_PASSWORD") {
        return Ok(p);
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

/// Runs `tobira central`.
pub fn run(args: CentralArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = Store::connect(&args.database)
            .await
            .with_context(|| format!("opening database {}", redact(&args.database)))?;
        let key_file = args
            .key_file
            .clone()
            .unwrap_or_else(|| default_key_file(&args.database));
        let signer = load_or_create_key(&key_file)?;
        match args.command {
            None => {
                let state = AppState {
                    store: store.clone(),
                    signer: Arc::new(signer),
                };
                eprintln!("tobira central: listening on http://{}", args.listen);
                tobira_web::serve(
                    state,
                    ServeOptions {
                        listen: args.listen,
                    },
                )
                .await
                .with_context(|| format!("serving on {}", args.listen))?;
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
