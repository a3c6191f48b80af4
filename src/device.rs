//! `tobira device …`: integrators' direct access to card readers and fingerprint modules.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tobira_hardware::card::{PcscCardReader, PcscConfig, ReaderEvent};
use tobira_hardware::fingerprint::driver::DEFAULT_BAUD;
use tobira_hardware::fingerprint::{Biometric, DriverConfig, Ef01Driver};
use tokio::time::Instant;

use crate::hil::parse_hex_u32;

/// Arguments of `tobira device`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// List PC/SC readers and print every tapped card as a JSON line.
    Readers(ReadersArgs),
    /// Talk to a fingerprint module on a serial port.
    Finger(FingerArgs),
}

#[derive(Debug, Args)]
struct ReadersArgs {
    /// Only readers whose name contains this (repeatable); default: all.
    #[arg(long = "reader")]
    readers: Vec<String>,
    /// Exit after this many taps.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Debug, Args)]
struct FingerArgs {
    #[command(subcommand)]
    action: FingerAction,
    /// Serial device of the module.
    #[arg(long, global = true, default_value = "/dev/serial0")]
    port: String,
    /// Line speed.
    #[arg(long, global = true, default_value_t = DEFAULT_BAUD)]
    baud: u32,
    /// Module address in hex.
    #[arg(long, global = true, default_value = "FFFFFFFF")]
    address: String,
    /// Module password in hex.
    #[arg(
        long,
        global = true,
        default_value = "0",
        env = "TOBIRA_FINGER_PASSWORD"
    )]
    password: String,
    /// How long to wait for a finger, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000)]
    timeout_ms: u64,
}

#[derive(Debug, Subcommand)]
enum FingerAction {
    /// System parameters and template count.
    Info,
    /// Enroll a finger (placed twice) into a slot.
    Enroll(SlotArg),
    /// Verify a finger against one slot (1:1).
    Verify(SlotArg),
    /// Delete the template in a slot.
    Delete(SlotArg),
}

#[derive(Debug, Args)]
struct SlotArg {
    /// Template slot.
    #[arg(long)]
    slot: u16,
}

/// Runs `tobira device …`.
pub fn run(args: DeviceArgs) -> anyhow::Result<()> {
    match args.command {
        DeviceCommand::Readers(a) => readers(a),
        DeviceCommand::Finger(a) => finger(a),
    }
}

fn readers(a: ReadersArgs) -> anyhow::Result<()> {
    let mut reader = PcscCardReader::start(PcscConfig {
        readers: a.readers,
        ..PcscConfig::default()
    })
    .context("starting the PC/SC reader thread")?;
    let mut taps = 0u64;
    while let Some(event) = reader.blocking_next_event() {
        println!("{}", event.to_json());
        if matches!(event, ReaderEvent::Tap(_)) {
            taps += 1;
            if a.count.is_some_and(|n| taps >= n) {
                break;
            }
        }
    }
    Ok(())
}

fn finger(a: FingerArgs) -> anyhow::Result<()> {
    let config = DriverConfig {
        address: parse_hex_u32(&a.address)?,
        password: parse_hex_u32(&a.password)?,
        ..DriverConfig::default()
    };
    let wait = Duration::from_millis(a.timeout_ms);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut module = Ef01Driver::open(&a.port, a.baud, config)
            .await
            .with_context(|| format!("opening the fingerprint module on {}", a.port))?;
        let out = match a.action {
            FingerAction::Info => serde_json::to_value(module.info().await?)?,
            FingerAction::Enroll(s) => {
                eprintln!("place the finger on the sensor, twice");
                let enrolled = module.enroll(s.slot, Instant::now() + wait).await?;
                serde_json::json!({"slot": s.slot, "enrolled": enrolled})
            }
            FingerAction::Verify(s) => {
                eprintln!("place the finger on the sensor");
                let outcome = module.verify(s.slot, Instant::now() + wait).await?;
                serde_json::json!({"slot": s.slot, "result": outcome})
            }
            FingerAction::Delete(s) => {
                module.delete(s.slot).await?;
                serde_json::json!({"slot": s.slot, "deleted": true})
            }
        };
        println!("{out}");
        anyhow::Ok(())
    })
}
