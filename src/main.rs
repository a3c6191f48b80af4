//! The `tobira` command line: parses arguments, then hands over to a crate.

mod central;
mod device;
mod hil;

use clap::{Parser, Subcommand};

/// Tobira access control.
#[derive(Debug, Parser)]
#[command(name = "tobira", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The central service: store, controller sync, JSON API.
    Central(central::CentralArgs),
    /// Simulated devices for hardware-in-the-loop tests.
    Hil(hil::HilArgs),
    /// Talk to real (or simulated) devices directly, for integrators.
    Device(device::DeviceArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match Cli::parse().command {
        Command::Central(args) => central::run(args),
        Command::Hil(args) => hil::run(args),
        Command::Device(args) => device::run(args),
    }
}
