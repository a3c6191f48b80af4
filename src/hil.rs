//! `tobira hil …`: the simulated devices of the hardware-in-the-loop kit.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use tobira_hardware::card::sim_reader::{check_name, parse_uid, sim_name, socket_path, SimTapLine};
use tobira_hardware::card::{CardMisbehaviour, CardTypeGuess, VirtualCard, VirtualCardConfig};
use tobira_hardware::fingerprint::{SimConfig, VirtualFingerprintModule};
use tobira_hardware::gpio::virtual_board::{parse_init, VirtualBoard};

/// Arguments of `tobira hil`.
#[derive(Debug, Args)]
pub struct HilArgs {
    #[command(subcommand)]
    command: HilCommand,
}

#[derive(Debug, Subcommand)]
enum HilCommand {
    /// Tap a virtual contactless card once: on a vpcd reader slot, or with
    /// --reader on a controller's simulated reader.
    Card(CardArgs),
    /// Run a virtual fingerprint module on a pseudo-terminal.
    Finger(FingerArgs),
    /// Run the virtual GPIO board (protocol: docs/gpio-sim.md).
    Gpio(GpioArgs),
}

#[derive(Debug, Args)]
struct CardArgs {
    /// Identifier returned by GET DATA, in hex (4, 7 or 10 bytes UID; 8 bytes FeliCa IDm).
    #[arg(long)]
    uid: String,
    /// Tap on the simulated reader `sim:NAME` of a controller (NAME, with or
    /// without `sim:`) instead of on a vpcd slot.
    #[arg(long, conflicts_with_all = ["port", "host", "garbage"])]
    reader: Option<String>,
    /// The controller's data directory, where its simulated readers listen.
    #[arg(long, requires = "reader", conflicts_with = "socket")]
    data_dir: Option<PathBuf>,
    /// The simulated reader's socket (instead of --data-dir).
    #[arg(long, requires = "reader")]
    socket: Option<PathBuf>,
    /// The card's type for a simulated reader (guessed from the UID's length if not given).
    #[arg(long, value_enum, requires = "reader")]
    card_type: Option<CardType>,
    /// How long the card stays on the reader, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    hold_ms: u64,
    /// vpcd port of the reader slot.
    #[arg(long, default_value_t = tobira_hardware::card::vicc::DEFAULT_VPCD_PORT)]
    port: u16,
    /// vpcd host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Answer GET DATA badly instead of with the UID.
    #[arg(long, value_enum)]
    garbage: Option<Garbage>,
    /// How long to keep trying while vpcd is not listening, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    connect_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CardType {
    MifareClassic,
    MifareUltralight,
    Iso14443A,
    Iso14443B,
    Felica,
}

impl From<CardType> for CardTypeGuess {
    fn from(t: CardType) -> Self {
        match t {
            CardType::MifareClassic => CardTypeGuess::MifareClassic,
            CardType::MifareUltralight => CardTypeGuess::MifareUltralight,
            CardType::Iso14443A => CardTypeGuess::Iso14443A,
            CardType::Iso14443B => CardTypeGuess::Iso14443B,
            CardType::Felica => CardTypeGuess::Felica,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Garbage {
    /// The UID with status word 6A 82.
    WrongSw,
    /// A one-byte answer.
    Short,
}

#[derive(Debug, Args)]
struct FingerArgs {
    /// Symlink to create to the module's serial device.
    #[arg(long)]
    link: Option<PathBuf>,
    /// Unix socket for control lines such as {"next":"match","slot":3}.
    #[arg(long)]
    control: Option<PathBuf>,
    /// Template slots.
    #[arg(long, default_value_t = 162)]
    capacity: u16,
    /// Module address in hex.
    #[arg(long, default_value = "FFFFFFFF")]
    address: String,
    /// Module password in hex.
    #[arg(long, default_value = "0")]
    password: String,
    /// Delay before every reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Corrupt the checksum of every Nth reply.
    #[arg(long)]
    bad_checksum_every: Option<u32>,
    /// Slots enrolled at start, e.g. 1,2,5 (slot N holds finger N).
    #[arg(long, value_delimiter = ',')]
    enrolled: Vec<u16>,
}

#[derive(Debug, Args)]
struct GpioArgs {
    /// Unix socket to listen on.
    #[arg(long)]
    socket: PathBuf,
    /// Initial levels, e.g. 22=1,23=1.
    #[arg(long, default_value = "")]
    init: String,
}

/// Parses a hex number such as `FFFFFFFF` or `0x1234`.
pub fn parse_hex_u32(s: &str) -> anyhow::Result<u32> {
    let digits = s.trim().trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(digits, 16).with_context(|| format!("`{s}` is not a 32-bit hex number"))
}

/// Runs `tobira hil …`.
pub fn run(args: HilArgs) -> anyhow::Result<()> {
    match args.command {
        HilCommand::Card(a) => card(a),
        HilCommand::Finger(a) => finger(a),
        HilCommand::Gpio(a) => gpio(a),
    }
}

fn card(a: CardArgs) -> anyhow::Result<()> {
    if let Some(reader) = &a.reader {
        return sim_card(reader, &a);
    }
    let uid = hex::decode(a.uid.replace([' ', ':'], "")).context("--uid must be hex")?;
    anyhow::ensure!(
        matches!(uid.len(), 4 | 7 | 8 | 10),
        "--uid must be 4, 7 or 10 bytes (UID) or 8 bytes (FeliCa IDm), got {}",
        uid.len()
    );
    let mut config = VirtualCardConfig::new(uid);
    config.hold = Duration::from_millis(a.hold_ms);
    config.port = a.port;
    config.host = a.host;
    config.connect_timeout = Duration::from_millis(a.connect_timeout_ms);
    config.misbehaviour = a.garbage.map(|g| match g {
        Garbage::WrongSw => CardMisbehaviour::WrongStatus,
        Garbage::Short => CardMisbehaviour::ShortAnswer,
    });
    let report = VirtualCard::new(config).tap()?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Taps a card on a controller's simulated reader: one line to its socket,
/// one reply back (printed; an error reply fails the command).
fn sim_card(reader: &str, a: &CardArgs) -> anyhow::Result<()> {
    use std::io::{BufRead as _, Write as _};
    let name = sim_name(reader).unwrap_or(reader);
    check_name(name).map_err(|e| anyhow::anyhow!("--reader: {e}"))?;
    parse_uid(&a.uid).map_err(|e| anyhow::anyhow!("--uid: {e}"))?;
    let socket = match (&a.socket, &a.data_dir) {
        (Some(socket), _) => socket.clone(),
        (None, Some(dir)) => socket_path(dir, name),
        (None, None) => {
            anyhow::bail!("--reader needs --data-dir DIR (the controller's) or --socket PATH")
        }
    };
    let line = SimTapLine {
        uid: a.uid.clone(),
        card_type: a.card_type.map(CardTypeGuess::from),
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).with_context(|| {
        format!(
            "connecting to the simulated reader sim:{name} at {} (is the controller running with it configured?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_millis(a.connect_timeout_ms)))?;
    writeln!(stream, "{}", serde_json::to_string(&line)?)?;
    let mut answer = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut answer)
        .context("reading the simulated reader's reply")?;
    let answer: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("the simulated reader answered {answer:?}"))?;
    if answer["ok"] != true {
        anyhow::bail!(
            "the simulated reader refused the tap: {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    println!("{answer}");
    Ok(())
}

fn finger(a: FingerArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        capacity: a.capacity,
        address: parse_hex_u32(&a.address)?,
        password: parse_hex_u32(&a.password)?,
        latency: Duration::from_millis(a.latency_ms),
        bad_checksum_every: a.bad_checksum_every,
        enrolled: a.enrolled,
        link: a.link,
    };
    let mut module = VirtualFingerprintModule::start(config)?;
    if let Some(control) = &a.control {
        module.serve_control(control)?;
    }
    println!(
        "{}",
        serde_json::json!({
            "device": module.device_path(),
            "tty": module.tty_path(),
            "control": a.control,
        })
    );
    wait_for_shutdown()?;
    drop(module);
    Ok(())
}

fn gpio(a: GpioArgs) -> anyhow::Result<()> {
    let init = parse_init(&a.init).map_err(|e| anyhow::anyhow!("--init: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let board = VirtualBoard::bind(&a.socket, &init)
            .with_context(|| format!("binding {}", a.socket.display()))?;
        println!("{}", serde_json::json!({ "socket": a.socket }));
        tokio::select! {
            r = board.run() => r.map_err(anyhow::Error::from),
            r = shutdown_signal() => r,
        }
    })
}

/// Blocks until SIGINT or SIGTERM, so that simulators clean up their links and sockets.
fn wait_for_shutdown() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(shutdown_signal())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
