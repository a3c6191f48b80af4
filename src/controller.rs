//! `tobira controller`: runs a door controller, or checks its configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tobira_controller::config::Config;

/// A door controller.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(subcommand)]
    action: Option<Action>,
    /// The controller's TOML configuration.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Load the policy snapshot from this file (standalone sites, benches, HIL).
    #[arg(long, global = true)]
    policy: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Validate the configuration (and the policy file, if given) without starting.
    Check,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let path = args.config.context("--config FILE is required")?;
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    match args.action {
        Some(Action::Check) => check(&config, args.policy),
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime
                .block_on(tobira_controller::daemon::run(config, args.policy))
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
    }
}

fn check(config: &Config, policy: Option<PathBuf>) -> anyhow::Result<()> {
    if let Some(path) = policy {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading policy file {}", path.display()))?;
        let data = tobira_controller::daemon::parse_policy(&text, config)
            .map_err(|e| anyhow::anyhow!("policy file {}: {e}", path.display()))?;
        let snapshot = tobira_firmware::Snapshot::new(data)
            .map_err(|e| anyhow::anyhow!("policy file {}: {e}", path.display()))?;
        println!(
            "policy file OK: version {}, {} doors, {} cards",
            snapshot.version(),
            snapshot.data().doors.len(),
            snapshot.data().cards.len()
        );
    }
    println!(
        "config OK: controller {}, {} doors/gates, {} biometric modules, central {}",
        config.controller,
        config.doors.len(),
        config.biometric.len(),
        config
            .central
            .as_ref()
            .map_or("none (standalone)", |c| c.url.as_str())
    );
    Ok(())
}
