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
    let exposed = tobira_controller::config::exposure_warning(&path);
    match args.action {
        Some(Action::Check) => {
            if let Some(warning) = &exposed {
                println!("warning: {warning}");
            }
            check(&config, args.policy)
        }
        None => {
            if let Some(warning) = &exposed {
                tobira_controller::config::log_exposure(warning);
            }
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
    if config
        .central
        .as_ref()
        .is_some_and(|c| c.allow_insecure_http && c.is_insecure_http())
    {
        eprintln!(
            "warning: central.allow_insecure_http: the controller secret, the policy and the events cross the network in plain HTTP; use https:// with ca_file outside a closed test network"
        );
    }
    // The doors are compared with the policy file, or else with the policy
    // the controller has cached: a door the policy does not know refuses
    // every card, a door of the policy nobody drives stays shut.
    let snapshot = match policy {
        Some(path) => {
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
            snapshot
        }
        None => match cached_policy(config)? {
            Some(snapshot) => {
                println!(
                    "cached policy version {} in {}: {} doors, {} cards",
                    snapshot.version(),
                    config.data_dir.display(),
                    snapshot.data().doors.len(),
                    snapshot.data().cards.len()
                );
                snapshot
            }
            None => {
                println!(
                    "no cached policy in {} and no --policy FILE: doors not compared with a policy",
                    config.data_dir.display()
                );
                return Ok(());
            }
        },
    };
    // The site's time zone is the policy's; a config value must agree.
    let clock = tobira_controller::clock::SiteClock::configured(config.time_zone.as_deref())?;
    if let Some(conflict) = clock.conflict(snapshot.time_zone()) {
        anyhow::bail!("{conflict}");
    }
    let mismatch = config.door_mismatch(snapshot.data());
    anyhow::ensure!(
        mismatch.is_empty(),
        "config and policy version {} disagree: {mismatch}",
        snapshot.version()
    );
    println!("doors OK: config and policy agree");
    Ok(())
}

/// The policy the controller has cached in its data directory, if it has one.
/// The state database is only read when it exists: `check` creates nothing.
fn cached_policy(config: &Config) -> anyhow::Result<Option<tobira_firmware::Snapshot>> {
    let path = config.state_path();
    if !path.exists() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let pool = tobira_controller::state::open(&path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let store = tobira_controller::policy::PolicyStore::load(pool.clone()).await;
        pool.close().await;
        let current = store
            .with_context(|| format!("reading the policy cached in {}", path.display()))?
            .current();
        Ok((current.snapshot.version() > 0).then(|| (*current.snapshot).clone()))
    })
}
