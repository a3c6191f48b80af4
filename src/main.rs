//! The `tobira` command line: parses arguments, then hands over to a crate.

mod central;
mod central_tls;
mod controller;
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
    /// A door controller (`--config FILE`), or `check` its configuration.
    Controller(controller::ControllerArgs),
    /// Simulated devices for hardware-in-the-loop tests.
    Hil(hil::HilArgs),
    /// Talk to real (or simulated) devices directly, for integrators.
    Device(device::DeviceArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A controller logs every recorded event for the technician, the central
    // service every request and controller (dis)connect; the other commands
    // print their results and log only problems.
    let default = match &cli.command {
        Command::Controller(_) => "info",
        Command::Central(args) if args.serves() => "info",
        _ => "warn",
    };
    // Log lines are written by a thread of their own: a door's decision loop
    // logs every event, and a slow reader of stderr (a full pipe to the
    // journal, a paused terminal) must never hold up a lock. Should the
    // buffer ever fill, lines are dropped rather than waited for; the events
    // themselves are in the outbox. The guard flushes what is left at exit.
    let (writer, _flush_at_exit) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
    match cli.command {
        Command::Central(args) => central::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Hil(args) => hil::run(args),
        Command::Device(args) => device::run(args),
    }
}
