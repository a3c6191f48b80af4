//! The controller's typed TOML configuration: doors, readers, biometric modules, pins, central service, and its checks.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tobira_firmware::{DoorId, DoorTimings, EventKind, GateTimings, LockKind, SnapshotData};
use tobira_hardware::gpio::{Polarity, Pull, MAX_BCM};
use tobira_hardware::profile::BoardProfile;

/// Environment variable that overrides `central.secret`, so the secret need
/// not sit in a world-readable config file.
pub const SECRET_ENV: &str = "TOBIRA_CONTROLLER_SECRET";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This controller's id, as registered with the central service.
    pub controller: u32,
    /// The site's IANA time zone. Optional: the central service's snapshot
    /// names the site's zone and that is the one in force; a value here must
    /// agree with it, and stands in only for policy files that name none.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Where the policy cache and the outbox live.
    pub data_dir: PathBuf,
    /// Local address of the status endpoint (technicians only: keep it on loopback or a service LAN).
    #[serde(default = "default_status_listen")]
    pub status_listen: SocketAddr,
    /// The central service; absent for a standalone site run from a policy file.
    #[serde(default)]
    pub central: Option<CentralConfig>,
    /// The GPIO backend.
    pub gpio: GpioConfig,
    /// Biometric modules.
    #[serde(default)]
    pub biometric: Vec<BiometricConfig>,
    /// Doors and flapper gates.
    #[serde(default)]
    pub doors: Vec<DoorConfig>,
    /// Fire alarm inputs: each releases the fire-egress doors of its zone.
    #[serde(default)]
    pub fire_inputs: Vec<FireInputConfig>,
    /// Enclosure tamper switches.
    #[serde(default)]
    pub tamper_inputs: Vec<TamperInputConfig>,
    /// How often door inputs are sampled, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u32,
    /// What the log shows.
    #[serde(default)]
    pub log: LogConfig,
    /// The text it was parsed from, for the line numbers of check errors.
    #[serde(skip)]
    source: Source,
}

/// The `[log]` section.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Card UIDs and person ids as keyed tags (`"tagged"`, the default) or in
    /// full (`"full"`).
    #[serde(default)]
    pub identifiers: crate::identifiers::IdentifierMode,
}

fn default_poll_ms() -> u32 {
    5
}

fn default_status_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8089))
}

/// The central service and this controller's credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralConfig {
    /// Base URL, e.g. `https://central.example.jp`.
    pub url: String,
    /// The controller secret printed by `tobira central controller add`
    /// (or set `TOBIRA_CONTROLLER_SECRET`).
    #[serde(default)]
    pub secret: Option<String>,
    /// The central service's Ed25519 public key (64 hex digits).
    pub public_key: String,
    /// Longest long-poll for urgent changes, in milliseconds.
    #[serde(default = "default_watch_ms")]
    pub watch_ms: u64,
    /// Events per upload batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Retry delays grow from this (ms)…
    #[serde(default = "default_backoff_min")]
    pub backoff_min_ms: u64,
    /// …up to this (ms).
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// How often to pull the passages other controllers recorded in this
    /// controller's zones (ms; 0 = never: the zones are not shared).
    #[serde(default = "default_passages_ms")]
    pub passages_ms: u64,
    /// The CA certificate(s) (PEM) the central service's certificate must
    /// chain to; the only ones trusted when given (`tobira central tls init`
    /// writes `ca.pem`). Without it an `https://` URL is checked against the
    /// public web roots built into the controller.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Lets `url` be `http://`: credentials, policy and events then travel
    /// unencrypted and unauthenticated (closed lab networks and tests only).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl CentralConfig {
    /// Whether the URL is plain HTTP (allowed only with `allow_insecure_http`).
    pub fn is_insecure_http(&self) -> bool {
        self.url.starts_with("http://")
    }
}

fn default_watch_ms() -> u64 {
    25_000
}
fn default_batch() -> usize {
    500
}
fn default_backoff_min() -> u64 {
    500
}
fn default_backoff_max() -> u64 {
    60_000
}
fn default_passages_ms() -> u64 {
    2_000
}

/// Where pins come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "backend", rename_all = "snake_case")]
pub enum GpioConfig {
    /// The Raspberry Pi's own GPIO (needs the `rpi` build).
    Rpi {
        /// A board profile by built-in name or path, for named channels.
        #[serde(default)]
        board: Option<String>,
    },
    /// The virtual GPIO board (`tobira hil gpio --socket PATH`).
    Virtual {
        /// Its Unix socket.
        socket: PathBuf,
        /// A board profile by built-in name or path, for named channels.
        #[serde(default)]
        board: Option<String>,
    },
}

impl GpioConfig {
    /// The board profile, if one is named.
    pub fn board(&self) -> Option<&str> {
        match self {
            GpioConfig::Rpi { board } | GpioConfig::Virtual { board, .. } => board.as_deref(),
        }
    }
}

/// A pin: a channel of the board profile by name, or a BCM pin.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PinRef {
    /// A channel name from the board profile (`lock`, `door_contact`…).
    Channel(String),
    /// A pin spelled out.
    Pin(PinSpec),
}

/// A BCM pin with its wiring.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PinSpec {
    /// BCM number.
    pub pin: u8,
    /// Asserted (energised, pressed, shut…) at the low level.
    #[serde(default)]
    pub active_low: bool,
    /// Internal pull resistor (inputs, `rpi` only).
    #[serde(default)]
    pub pull: Pull,
    /// Debounce settle time (inputs).
    #[serde(default)]
    pub debounce_ms: u32,
}

/// A pin with the profile resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedPin {
    /// BCM number.
    pub pin: u8,
    /// Electrical level of "asserted".
    pub polarity: Polarity,
    /// Pull resistor.
    pub pull: Pull,
    /// Debounce settle time.
    pub debounce_ms: u32,
}

/// A biometric module on a serial port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiometricConfig {
    /// Its module id in the policy (doors' readers name it).
    pub module: u32,
    /// A name for logs and status.
    pub name: String,
    /// Serial device, e.g. `/dev/serial0`.
    pub port: PathBuf,
    /// Line speed.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Module address (hex, factory `FFFFFFFF`).
    #[serde(default = "default_address")]
    pub address: String,
    /// Module password.
    #[serde(default)]
    pub password: u32,
    /// Lowest Match score accepted.
    #[serde(default = "default_threshold")]
    pub match_threshold: u16,
}

fn default_baud() -> u32 {
    tobira_hardware::fingerprint::driver::DEFAULT_BAUD
}
fn default_address() -> String {
    "FFFFFFFF".into()
}
fn default_threshold() -> u16 {
    50
}

impl BiometricConfig {
    /// The address as a number.
    pub fn address(&self) -> Result<u32, String> {
        u32::from_str_radix(self.address.trim_start_matches("0x"), 16).map_err(|_| {
            format!(
                "biometric {:?}: address {:?} is not 8 hex digits",
                self.name, self.address
            )
        })
    }
}

/// Door or flapper gate.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DoorKindConfig {
    /// A door with a strike or maglock.
    Door,
    /// A flapper gate.
    FlapperGate,
}

/// One door or gate this controller drives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    /// A name for logs and status.
    pub name: String,
    /// The door's id in the policy.
    pub id: u32,
    /// Door or gate.
    pub kind: DoorKindConfig,
    /// PC/SC reader name (or a unique part of it) on the outside, or
    /// `sim:NAME` for a simulated reader fed through `<data_dir>/readers/NAME.sock`.
    #[serde(default)]
    pub entry_reader: Option<String>,
    /// PC/SC reader name (or `sim:NAME`) on the inside.
    #[serde(default)]
    pub exit_reader: Option<String>,
    /// Strike (fail-secure) or maglock (fail-safe); doors only.
    #[serde(default = "default_lock")]
    pub lock: LockKind,
    /// Lock relay (doors).
    #[serde(default)]
    pub lock_output: Option<PinRef>,
    /// Door-closed contact, asserted while the door is shut (doors).
    #[serde(default)]
    pub contact: Option<PinRef>,
    /// Request-to-exit button (doors, optional).
    #[serde(default)]
    pub rex: Option<PinRef>,
    /// Gate output opening for the inward direction.
    #[serde(default)]
    pub open_in: Option<PinRef>,
    /// Gate output opening for the outward direction.
    #[serde(default)]
    pub open_out: Option<PinRef>,
    /// Gate passage sensor, asserted while someone is in the lane.
    #[serde(default)]
    pub passage: Option<PinRef>,
    /// LED or buzzer lit while the door waits for a finger or an escort.
    #[serde(default)]
    pub prompt: Option<PinRef>,
    /// Door timings.
    #[serde(default)]
    pub timings: DoorTimings,
    /// Gate timings.
    #[serde(default)]
    pub gate_timings: GateTimings,
}

fn default_lock() -> LockKind {
    LockKind::FailSecure
}

/// A fire alarm input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FireInputConfig {
    /// The zone whose fire-egress doors it releases.
    pub zone: u32,
    /// The input, asserted in alarm.
    pub input: PinRef,
}

/// An enclosure tamper switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TamperInputConfig {
    /// A name for logs and events.
    pub name: String,
    /// The input, asserted when the enclosure is open.
    pub input: PinRef,
}

/// Where a problem is in the file: the line and column (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    fn of(text: &str, offset: usize) -> Self {
        let before = text.get(..offset.min(text.len())).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Doors the configuration and the policy disagree about, by id, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DoorMismatch {
    /// Configured doors the policy does not know: every card there is refused as `unknown_door`.
    pub not_in_policy: Vec<u32>,
    /// Doors of this controller's policy that no configured door drives.
    pub not_configured: Vec<u32>,
}

impl DoorMismatch {
    /// Whether they agree.
    pub fn is_empty(&self) -> bool {
        self.not_in_policy.is_empty() && self.not_configured.is_empty()
    }

    /// The event recording it.
    pub fn event(&self) -> EventKind {
        EventKind::ConfigMismatch {
            not_in_policy: self.not_in_policy.iter().copied().map(DoorId).collect(),
            not_configured: self.not_configured.iter().copied().map(DoorId).collect(),
        }
    }
}

impl std::fmt::Display for DoorMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |ids: &[u32]| {
            ids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.not_in_policy.is_empty() {
            parts.push(format!(
                "configured doors not in the policy: {} (every card there is refused as unknown_door)",
                list(&self.not_in_policy)
            ));
        }
        if !self.not_configured.is_empty() {
            parts.push(format!(
                "doors of this controller's policy driven by no configured door: {}",
                list(&self.not_configured)
            ));
        }
        if parts.is_empty() {
            f.write_str("config and policy agree on the doors")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown/missing/mistyped field.
    #[error("{path}:{}:{}: {message}", at.line, at.column)]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where.
        at: Location,
        /// The parser's message, with the offending line.
        message: String,
    },
    /// The fields parse but do not make sense together.
    #[error("{path}:{}: {message}", at.line)]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the key (or the table) that is wrong.
        at: Location,
        /// What is wrong.
        message: String,
    },
}

/// One step of a key path: a key of a table or an item of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Item(usize),
}

/// A problem found by [`Config::check`], with the key it is about.
#[derive(Debug)]
struct Issue {
    at: Vec<Step<'static>>,
    message: String,
}

fn issue(at: &[Step<'static>], message: impl Into<String>) -> Issue {
    Issue {
        at: at.to_vec(),
        message: message.into(),
    }
}

/// The text a configuration was parsed from, so a check can name the line.
#[derive(Debug, Clone, Default)]
struct Source {
    path: PathBuf,
    text: std::sync::Arc<str>,
}

impl Source {
    /// Where the value at `at` is written: the deepest part of the path that
    /// is in the file (a key left to its default has no line; its table has).
    fn locate(&self, at: &[Step<'_>]) -> Location {
        use toml::de::{DeTable, DeValue};
        let Ok(root) = DeTable::parse(&self.text) else {
            return Location { line: 1, column: 1 };
        };
        let mut span = 0..0;
        let mut table = Some(root.get_ref());
        let mut array: Option<&toml::de::DeArray<'_>> = None;
        for step in at {
            let found = match (step, table, array) {
                (Step::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == *k)
                    .map(|(key, value)| (key.span(), value)),
                (Step::Item(i), _, Some(a)) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((at, value)) = found else { break };
            span = at;
            (table, array) = match value.get_ref() {
                DeValue::Table(t) => (Some(t), None),
                DeValue::Array(a) => (None, Some(a)),
                _ => (None, None),
            };
        }
        Location::of(&self.text, span.start)
    }
}

impl Config {
    /// Reads, parses and checks a configuration file; applies the secret from the environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        if let Some(central) = config.central.as_mut() {
            if let Ok(secret) = std::env::var(SECRET_ENV) {
                central.secret = Some(secret);
            }
        }
        config.check()?;
        Ok(config)
    }

    /// Parses TOML text (no checks beyond the types).
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let at = Location::of(text, e.span().map_or(0, |s| s.start));
            let shown = text.lines().nth(at.line - 1).unwrap_or("").trim_end();
            ConfigError::Parse {
                path: origin.to_owned(),
                at,
                message: format!("{}\n{:>5} | {shown}", e.message().trim_end(), at.line),
            }
        })?;
        config.source = Source {
            path: origin.to_owned(),
            text: text.into(),
        };
        Ok(config)
    }

    /// The board profile named by the GPIO section, if any.
    pub fn profile(&self) -> Result<Option<BoardProfile>, String> {
        let Some(name) = self.gpio.board() else {
            return Ok(None);
        };
        let profile = if name.contains('/') || name.ends_with(".toml") {
            BoardProfile::load(Path::new(name))
        } else {
            BoardProfile::builtin(name)
        };
        profile
            .map(Some)
            .map_err(|e| format!("board profile {name:?}: {e}"))
    }

    /// Resolves a pin reference against the board profile.
    pub fn resolve(
        &self,
        profile: Option<&BoardProfile>,
        pin: &PinRef,
        output: bool,
    ) -> Result<ResolvedPin, String> {
        match pin {
            PinRef::Pin(spec) => {
                if spec.pin > MAX_BCM {
                    return Err(format!(
                        "BCM pin {} is not on the header (0–{MAX_BCM})",
                        spec.pin
                    ));
                }
                Ok(ResolvedPin {
                    pin: spec.pin,
                    polarity: if spec.active_low {
                        Polarity::ActiveLow
                    } else {
                        Polarity::ActiveHigh
                    },
                    pull: spec.pull,
                    debounce_ms: spec.debounce_ms,
                })
            }
            PinRef::Channel(name) => {
                let profile = profile.ok_or_else(|| {
                    format!("pin {name:?} names a board channel but [gpio] has no board profile")
                })?;
                if output {
                    let ch = profile.output(name).ok_or_else(|| {
                        format!("board {:?} has no output channel {name:?}", profile.name)
                    })?;
                    Ok(ResolvedPin {
                        pin: ch.pin,
                        polarity: ch.polarity,
                        pull: Pull::None,
                        debounce_ms: 0,
                    })
                } else {
                    let ch = profile.input(name).ok_or_else(|| {
                        format!("board {:?} has no input channel {name:?}", profile.name)
                    })?;
                    Ok(ResolvedPin {
                        pin: ch.pin,
                        polarity: ch.polarity,
                        pull: ch.pull,
                        debounce_ms: ch.debounce_ms,
                    })
                }
            }
        }
    }

    /// Checks what the types cannot: ids and names unique, each door has the
    /// pins its kind needs, no pin used twice, keys and zones parse. The error
    /// names the file and the line of the key (or table) that is wrong.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.issues().map_err(|issue| ConfigError::Invalid {
            path: self.source.path.clone(),
            at: self.source.locate(&issue.at),
            message: issue.message,
        })
    }

    fn issues(&self) -> Result<(), Issue> {
        use Step::{Item, Key};
        crate::clock::SiteClock::configured(self.time_zone.as_deref())
            .map_err(|e| issue(&[Key("time_zone")], e.to_string()))?;
        if let Some(central) = &self.central {
            let at = |key: &'static str| [Key("central"), Key(key)];
            tobira_protocol::PolicyKey::from_hex(&central.public_key)
                .map_err(|e| issue(&at("public_key"), format!("central.public_key: {e}")))?;
            if central.secret.as_deref().is_none_or(str::is_empty) {
                return Err(issue(
                    &at("secret"),
                    format!("central.secret is missing (set it in the file or in {SECRET_ENV})"),
                ));
            }
            if !(central.url.starts_with("http://") || central.url.starts_with("https://")) {
                return Err(issue(
                    &at("url"),
                    format!(
                        "central.url {:?} must start with http:// or https://",
                        central.url
                    ),
                ));
            }
            if central.is_insecure_http() && !central.allow_insecure_http {
                return Err(issue(
                    &at("url"),
                    format!(
                        "central.url {:?} is plain HTTP: the controller secret, the policy and the events would cross the network readable and changeable by anyone on the path; use https:// (with ca_file), or set allow_insecure_http = true on a closed test network",
                        central.url
                    ),
                ));
            }
            if let Some(ca_file) = &central.ca_file {
                if central.is_insecure_http() {
                    return Err(issue(
                        &at("ca_file"),
                        "central.ca_file is set but central.url is http://: nothing would be checked against it",
                    ));
                }
                crate::sync::read_ca_file(ca_file)
                    .map_err(|e| issue(&at("ca_file"), format!("central.ca_file: {e}")))?;
            }
            // The central service answers a long-poll after at most 30 s.
            if !(1_000..=30_000).contains(&central.watch_ms) {
                return Err(issue(
                    &at("watch_ms"),
                    "central.watch_ms must be 1000–30000",
                ));
            }
            if central.backoff_min_ms < 10 || central.backoff_max_ms < central.backoff_min_ms {
                return Err(issue(
                    &at("backoff_min_ms"),
                    "central.backoff_min_ms must be ≥ 10 and ≤ backoff_max_ms",
                ));
            }
            if central.passages_ms != 0 && !(100..=600_000).contains(&central.passages_ms) {
                return Err(issue(
                    &at("passages_ms"),
                    "central.passages_ms must be 0 (off) or 100–600000",
                ));
            }
            if central.batch == 0 || central.batch > tobira_protocol::MAX_BATCH {
                return Err(issue(
                    &at("batch"),
                    format!("central.batch must be 1–{}", tobira_protocol::MAX_BATCH),
                ));
            }
        }
        let profile = self
            .profile()
            .map_err(|e| issue(&[Key("gpio"), Key("board")], e))?;
        let mut pins = BTreeSet::new();
        let mut claim =
            |at: &[Step<'static>], what: String, pin: &PinRef, output: bool| -> Result<(), Issue> {
                let resolved = self
                    .resolve(profile.as_ref(), pin, output)
                    .map_err(|e| issue(at, format!("{what}: {e}")))?;
                if !pins.insert(resolved.pin) {
                    return Err(issue(
                        at,
                        format!("{what}: BCM pin {} is already used", resolved.pin),
                    ));
                }
                Ok(())
            };
        let mut names = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let mut readers = BTreeSet::new();
        for (i, door) in self.doors.iter().enumerate() {
            let key = |part: &'static str| [Key("doors"), Item(i), Key(part)];
            let table = [Key("doors"), Item(i)];
            let what = |part: &str| format!("door {:?}: {part}", door.name);
            if !names.insert(door.name.as_str()) {
                return Err(issue(
                    &key("name"),
                    format!("door name {:?} is used twice", door.name),
                ));
            }
            if !ids.insert(door.id) {
                return Err(issue(
                    &key("id"),
                    format!("door id {} is used twice", door.id),
                ));
            }
            for (part, reader) in [
                ("entry_reader", &door.entry_reader),
                ("exit_reader", &door.exit_reader),
            ] {
                if let Some(reader) = reader {
                    if let Some(name) = tobira_hardware::card::sim_reader::sim_name(reader) {
                        tobira_hardware::card::sim_reader::check_name(name)
                            .map_err(|e| issue(&key(part), e.to_string()))?;
                    }
                    if !readers.insert(reader.as_str()) {
                        return Err(issue(
                            &key(part),
                            format!("reader {reader:?} is given to two door sides"),
                        ));
                    }
                }
            }
            // (key, pin, whether it is an output)
            type Part<'d> = (&'static str, &'d Option<PinRef>, bool);
            let (required, optional, foreign): (Vec<Part<'_>>, Vec<Part<'_>>, Vec<Part<'_>>) =
                match door.kind {
                    DoorKindConfig::Door => (
                        vec![
                            ("lock_output", &door.lock_output, true),
                            ("contact", &door.contact, false),
                        ],
                        vec![("rex", &door.rex, false)],
                        vec![
                            ("open_in", &door.open_in, true),
                            ("open_out", &door.open_out, true),
                            ("passage", &door.passage, false),
                        ],
                    ),
                    DoorKindConfig::FlapperGate => (
                        vec![
                            ("open_in", &door.open_in, true),
                            ("open_out", &door.open_out, true),
                            ("passage", &door.passage, false),
                        ],
                        vec![],
                        vec![
                            ("lock_output", &door.lock_output, true),
                            ("contact", &door.contact, false),
                            ("rex", &door.rex, false),
                        ],
                    ),
                };
            for (part, pin, output) in required {
                let pin = pin.as_ref().ok_or_else(|| {
                    issue(
                        &table,
                        what(&format!("{part} is required for a {:?}", door.kind)),
                    )
                })?;
                claim(&key(part), what(part), pin, output)?;
            }
            for (part, pin, output) in optional {
                if let Some(pin) = pin {
                    claim(&key(part), what(part), pin, output)?;
                }
            }
            let belongs = match door.kind {
                DoorKindConfig::Door => "flapper gates",
                DoorKindConfig::FlapperGate => "doors",
            };
            for (part, pin, _) in foreign {
                if pin.is_some() {
                    return Err(issue(&key(part), what(&format!("{part} is for {belongs}"))));
                }
            }
            match door.kind {
                DoorKindConfig::Door => {
                    let t = door.timings;
                    if t.unlock_ms == 0 || t.held_prealarm_ms > t.held_alarm_ms {
                        return Err(issue(
                            &key("timings"),
                            what("timings need unlock_ms > 0 and held_prealarm_ms ≤ held_alarm_ms"),
                        ));
                    }
                }
                DoorKindConfig::FlapperGate => {
                    if door.gate_timings.open_timeout_ms == 0 {
                        return Err(issue(
                            &key("gate_timings"),
                            what("gate_timings.open_timeout_ms must be > 0"),
                        ));
                    }
                }
            }
            if let Some(prompt) = &door.prompt {
                claim(&key("prompt"), what("prompt"), prompt, true)?;
            }
            if door.entry_reader.is_none() && door.exit_reader.is_none() && door.rex.is_none() {
                return Err(issue(
                    &table,
                    what("has no reader and no request-to-exit button"),
                ));
            }
        }
        let mut modules = BTreeSet::new();
        for (i, module) in self.biometric.iter().enumerate() {
            let key = |part: &'static str| [Key("biometric"), Item(i), Key(part)];
            if !modules.insert(module.module) {
                return Err(issue(
                    &key("module"),
                    format!("biometric module {} is configured twice", module.module),
                ));
            }
            module.address().map_err(|e| issue(&key("address"), e))?;
        }
        for (i, fire) in self.fire_inputs.iter().enumerate() {
            claim(
                &[Key("fire_inputs"), Item(i), Key("input")],
                format!("fire input of zone {}", fire.zone),
                &fire.input,
                false,
            )?;
        }
        for (i, tamper) in self.tamper_inputs.iter().enumerate() {
            claim(
                &[Key("tamper_inputs"), Item(i), Key("input")],
                format!("tamper input {:?}", tamper.name),
                &tamper.input,
                false,
            )?;
        }
        Ok(())
    }

    /// Where this configuration and a policy snapshot disagree about the
    /// doors. The central service builds each controller's snapshot from
    /// exactly the doors assigned to it, so every door in the snapshot is one
    /// this controller should drive.
    pub fn door_mismatch(&self, policy: &SnapshotData) -> DoorMismatch {
        let configured: BTreeSet<u32> = self.doors.iter().map(|d| d.id).collect();
        let known: BTreeSet<u32> = policy.doors.iter().map(|d| d.id.0).collect();
        DoorMismatch {
            not_in_policy: configured.difference(&known).copied().collect(),
            not_configured: known.difference(&configured).copied().collect(),
        }
    }

    /// The state database's path.
    pub fn state_path(&self) -> PathBuf {
        self.data_dir.join("controller.sqlite")
    }
}

/// A warning when the configuration file, which may hold the controller
/// secret, is readable or writable by group or others (`None` when it is not,
/// or its mode cannot be read). The daemon logs it at start and `check`
/// prints it; neither refuses, since a site may keep the secret in the
/// environment instead.
pub fn exposure_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "configuration file {} has mode {mode:03o}: it may hold the controller secret, \
                 so let only its owner read it (chmod 600 {})",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs an [`exposure_warning`] as the daemon starts.
pub fn log_exposure(warning: &str) {
    tracing::warn!("{warning}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.toml");
        std::fs::write(&path, "secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = exposure_warning(&path).unwrap();
        assert!(
            warning.contains("644") && warning.contains("chmod 600"),
            "{warning}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(exposure_warning(&path), None);
    }

    const GOOD: &str = r#"
controller = 7
data_dir = "/tmp/x"

[gpio]
backend = "virtual"
socket = "/tmp/gpio.sock"
board = "generic"

[[doors]]
name = "staff office"
id = 3
kind = "door"
entry_reader = "Virtual PCD 00 00"
lock_output = "lock"
contact = "door_contact"
rex = "rex"
"#;

    #[test]
    fn a_good_config_checks_and_names_resolve_through_the_profile() {
        let c = Config::parse(GOOD, Path::new("c.toml")).unwrap();
        c.check().unwrap();
        assert_eq!(c.time_zone, None);
        let p = c.profile().unwrap();
        let lock = c
            .resolve(p.as_ref(), c.doors[0].lock_output.as_ref().unwrap(), true)
            .unwrap();
        assert_eq!((lock.pin, lock.polarity), (17, Polarity::ActiveLow));
    }

    #[test]
    fn a_simulated_reader_checks() {
        let sim = GOOD.replace("Virtual PCD 00 00", "sim:front");
        Config::parse(&sim, Path::new("c.toml"))
            .unwrap()
            .check()
            .unwrap();
    }

    #[test]
    fn errors_name_the_line() {
        let bad = GOOD.replace("kind = \"door\"", "kind = \"door\"\nunlock_secs = 5");
        let err = Config::parse(&bad, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:14:1:"), "{err}");
        assert!(err.contains("unlock_secs"), "{err}");
        let bad = GOOD.replace("id = 3", "id = \"three\"");
        let err = Config::parse(&bad, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:12:"), "{err}");
    }

    /// Loads `text` from a file, as `tobira controller` does; returns the error.
    fn load_error(text: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.toml");
        std::fs::write(&path, text).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        (err, path.display().to_string())
    }

    #[test]
    fn every_config_error_names_the_file_and_the_line() {
        let second_door = "\n[[doors]]\nname = \"annex\"\nid = 3\nkind = \"door\"\nentry_reader = \"R2\"\nlock_output = { pin = 20 }\ncontact = { pin = 21 }\n";
        let central = "[central]\nurl = \"http://127.0.0.1:1\"\npublic_key = \"zz\"\nsecret = \"s\"\n\n[gpio]";
        let keyless = "[central]\nurl = \"http://127.0.0.1:1\"\npublic_key = \"0000000000000000000000000000000000000000000000000000000000000000\"\n\n[gpio]";
        let cases: Vec<(String, usize, &str)> = vec![
            // TOML syntax.
            (GOOD.replace("id = 3", "id = = 3"), 12, "`=`"),
            // An unknown key.
            (
                GOOD.replace("kind = \"door\"", "kind = \"door\"\nunlock_secs = 5"),
                14,
                "unlock_secs",
            ),
            // A value of the wrong type.
            (GOOD.replace("id = 3", "id = \"three\""), 12, "u32"),
            // A pin used twice: where it is used the second time.
            (
                GOOD.replace("rex = \"rex\"", "rex = \"door_contact\""),
                17,
                "already used",
            ),
            // A pin the door's kind needs is missing: the door's table.
            (
                GOOD.replace("lock_output = \"lock\"\n", ""),
                10,
                "lock_output is required",
            ),
            // An unknown time zone.
            (
                GOOD.replace("data_dir", "time_zone = \"Asia/Tokio\"\ndata_dir"),
                3,
                "Asia/Tokio",
            ),
            // A board channel the profile does not have.
            (
                GOOD.replace("contact = \"door_contact\"", "contact = \"doorbell\""),
                16,
                "doorbell",
            ),
            // A door id used twice: the second door's id.
            (format!("{GOOD}{second_door}"), 21, "used twice"),
            // A central key that is not one.
            (GOOD.replace("[gpio]", central), 7, "public_key"),
            // A central section without a secret: the section.
            (GOOD.replace("[gpio]", keyless), 5, "secret"),
            // A simulated reader whose name cannot be a socket file.
            (
                GOOD.replace("Virtual PCD 00 00", "sim:../front"),
                14,
                "simulated reader name",
            ),
        ];
        for (text, line, what) in cases {
            let (err, path) = load_error(&text);
            assert!(
                err.starts_with(&format!("{path}:{line}:")),
                "expected {path}:{line}: for {what:?}, got: {err}"
            );
            assert!(err.contains(what), "{err}");
        }
    }

    #[test]
    fn plain_http_needs_allow_insecure_http_and_a_ca_file_needs_https() {
        let key = "0000000000000000000000000000000000000000000000000000000000000000";
        let central = |keys: &str| {
            GOOD.replace(
                "[gpio]",
                &format!("[central]\n{keys}\npublic_key = \"{key}\"\nsecret = \"s\"\n\n[gpio]"),
            )
        };
        let plain = central("url = \"http://central.lan\"");
        let (err, path) = load_error(&plain);
        assert!(err.starts_with(&format!("{path}:6:")), "{err}");
        assert!(
            err.contains("plain HTTP") && err.contains("allow_insecure_http"),
            "{err}"
        );
        let allowed = central("url = \"http://central.lan\"\nallow_insecure_http = true");
        Config::parse(&allowed, Path::new("c.toml"))
            .unwrap()
            .check()
            .unwrap();
        let pinned_plain = central(
            "url = \"http://central.lan\"\nallow_insecure_http = true\nca_file = \"/etc/ca.pem\"",
        );
        let err = Config::parse(&pinned_plain, Path::new("c.toml"))
            .unwrap()
            .check()
            .unwrap_err();
        assert!(err.to_string().contains("ca_file"), "{err}");
        let missing_ca =
            central("url = \"https://central.lan\"\nca_file = \"/nonexistent/ca.pem\"");
        let err = Config::parse(&missing_ca, Path::new("c.toml"))
            .unwrap()
            .check()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "not a certificate").unwrap();
        let garbage = central(&format!(
            "url = \"https://central.lan\"\nca_file = \"{}\"",
            not_pem.path().display()
        ));
        let err = Config::parse(&garbage, Path::new("c.toml"))
            .unwrap()
            .check()
            .unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        // https:// without a CA file: the built-in public roots.
        let public = central("url = \"https://central.example.jp\"");
        Config::parse(&public, Path::new("c.toml"))
            .unwrap()
            .check()
            .unwrap();
    }

    #[test]
    fn inconsistent_configs_are_refused() {
        let twice = GOOD.replace("rex = \"rex\"", "rex = \"door_contact\"");
        let c = Config::parse(&twice, Path::new("c.toml")).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("already used"));
        let no_lock = GOOD.replace("lock_output = \"lock\"\n", "");
        let c = Config::parse(&no_lock, Path::new("c.toml")).unwrap();
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("lock_output is required"));
        let zone = GOOD.replace("data_dir", "time_zone = \"Asia/Nowhere\"\ndata_dir");
        let c = Config::parse(&zone, Path::new("c.toml")).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("Asia/Nowhere"));
        let channel = GOOD.replace("contact = \"door_contact\"", "contact = \"doorbell\"");
        let c = Config::parse(&channel, Path::new("c.toml")).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("doorbell"));
    }
}
