//! The door rig the end-to-end tests share: a small city hall policy, a
//! private pcscd with two virtual readers, the virtual GPIO board and its
//! observer, the fingerprint simulator, a running controller and its log,
//! and the central service as its own process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{simulator, tap_card, Proc, Scratch, BIN};
use serde_json::Value;
use tobira_firmware::*;
use tobira_hardware::hil::{PrivatePcscd, VirtualReaderSlot};

pub const WAIT: Duration = Duration::from_secs(20);

pub const GROUNDS: ZoneId = ZoneId(1);
pub const OFFICE: ZoneId = ZoneId(2);
pub const MACHINE: ZoneId = ZoneId(3);
pub const MEETING: ZoneId = ZoneId(4);
pub const STORE: ZoneId = ZoneId(5);

pub const SATO: PersonId = PersonId(1); // staff, machine room, finger in slot 3
pub const ITO: PersonId = PersonId(2); // staff, machine room, finger in slot 4
pub const YAMADA: PersonId = PersonId(3); // visitor
pub const KATO: PersonId = PersonId(4); // staff, machine room, slot 5 in the policy only

pub const SATO_CARD: &str = "04A10001";
pub const ITO_CARD: &str = "04A10002000002"; // 7-byte UID
pub const YAMADA_CARD: &str = "012E3C4D5E6F7081"; // FeliCa IDm
pub const LOST_CARD: &str = "04A10009";
pub const KATO_CARD: &str = "04A10004";

// Virtual board pins.
pub const OFFICE_LOCK: u8 = 17;
pub const OFFICE_CONTACT: u8 = 5;
pub const OFFICE_REX: u8 = 6;
pub const MACHINE_LOCK: u8 = 18;
pub const MACHINE_CONTACT: u8 = 12;
pub const MACHINE_PROMPT: u8 = 24;
pub const GATE_IN: u8 = 27;
pub const GATE_OUT: u8 = 22;
pub const GATE_SENSOR: u8 = 13;
pub const MEETING_LOCK: u8 = 16;
pub const MEETING_CONTACT: u8 = 20;
pub const STORE_LOCK: u8 = 21;
pub const STORE_CONTACT: u8 = 26;
/// The fire alarm panel's output, wired to the board (used by configs with `[[fire_inputs]]`).
pub const FIRE_INPUT: u8 = 19;

// Configured unlock times (`timings.unlock_ms`) of the rig's doors.
pub const OFFICE_UNLOCK_MS: u64 = 1500;
pub const MACHINE_UNLOCK_MS: u64 = 1500;
pub const MEETING_UNLOCK_MS: u64 = 1500;
pub const STORE_UNLOCK_MS: u64 = 1500;
// The office door's held-open timings.
pub const OFFICE_PREALARM_MS: u64 = 1200;
pub const OFFICE_ALARM_MS: u64 = 2000;

/// How far a relay's energised time, measured between the board's own edge
/// stamps, may fall short of the configured unlock time. The controller never
/// relocks early by its own clock; the board stamps an edge when it processes
/// the line, so a board descheduled on a loaded machine (CI compiles on both
/// cores) moves one stamp by a few hundred ms either way.
pub const RELAY_EARLY_MS: u64 = 500;
/// How far it may run over: a poll (5 ms) plus the same scheduling slack.
/// The bounds say "the unlock time, not a blip and not stuck".
pub const RELAY_LATE_MS: u64 = 1100;
/// Slack for timers measured between event times (controller clock): the
/// poll, plus the test's own delay where it starts the timer (opening a door).
pub const HELD_SLACK_MS: u64 = 800;
/// How far two timers of one door, both measured by the controller's poll,
/// may be apart from their configured distance (a poll stalled under load).
pub const HELD_GAP_SLACK_MS: u64 = 300;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn uid(hex_text: &str) -> CardUid {
    hex_text.parse().unwrap()
}

pub fn zone(id: ZoneId, level: SecurityLevel) -> Zone {
    Zone {
        id,
        level,
        opening_schedule: None,
        settings: ZoneSettings::for_level(level),
    }
}

pub fn door(id: u32, kind: DoorKind, outside: ZoneId, inside: ZoneId) -> Door {
    Door {
        id: DoorId(id),
        kind,
        outside,
        inside,
        entry_reader: Some(ReaderSide { biometric: None }),
        exit_reader: None,
        fire_egress: false,
    }
}

/// A small city hall with no schedules, so the test does not depend on the time of day.
pub fn policy(version: u64) -> SnapshotData {
    let mut meeting = zone(MEETING, SecurityLevel::L2);
    meeting.settings.escort_window_ms = 8_000;
    let mut machine_zone = zone(MACHINE, SecurityLevel::L4);
    machine_zone.settings.biometric_timeout_ms = 6_000;
    let mut machine = door(20, DoorKind::Door, OFFICE, MACHINE);
    machine.entry_reader = Some(ReaderSide {
        biometric: Some(ModuleId(1)),
    });
    machine.exit_reader = Some(ReaderSide {
        biometric: Some(ModuleId(1)),
    });
    let staff = |id: PersonId, slot: u16| Person {
        id,
        kind: PersonKind::Staff,
        grants: vec![GrantId(1)],
        enrollments: vec![Enrollment {
            module: ModuleId(1),
            slot: TemplateSlot(slot),
        }],
    };
    let card = |text: &str, person: PersonId, state: CardState| Card {
        uid: uid(text),
        person,
        state,
        valid_from: None,
        valid_until: None,
    };
    SnapshotData {
        version,
        issued_at: Timestamp(now_ms()),
        time_zone: None,
        threat: ThreatLevel::Normal,
        zones: vec![
            zone(GROUNDS, SecurityLevel::L0),
            zone(OFFICE, SecurityLevel::L3),
            machine_zone,
            meeting,
            zone(STORE, SecurityLevel::L3),
        ],
        doors: vec![
            door(10, DoorKind::Door, GROUNDS, OFFICE),
            machine,
            Door {
                exit_reader: Some(ReaderSide { biometric: None }),
                ..door(30, DoorKind::FlapperGate, GROUNDS, OFFICE)
            },
            door(40, DoorKind::Door, GROUNDS, MEETING),
            door(50, DoorKind::Door, GROUNDS, STORE),
        ],
        people: vec![
            staff(SATO, 3),
            staff(ITO, 4),
            staff(KATO, 5),
            Person {
                id: YAMADA,
                kind: PersonKind::Visitor,
                grants: vec![GrantId(2)],
                enrollments: vec![],
            },
        ],
        cards: vec![
            card(SATO_CARD, SATO, CardState::Active),
            card(ITO_CARD, ITO, CardState::Active),
            card(YAMADA_CARD, YAMADA, CardState::Active),
            card(LOST_CARD, SATO, CardState::Lost),
            card(KATO_CARD, KATO, CardState::Active),
        ],
        grants: vec![
            Grant {
                id: GrantId(1),
                zones: vec![OFFICE, MACHINE, MEETING, STORE],
                schedule: None,
                valid_from: None,
                valid_until: None,
            },
            Grant {
                id: GrantId(2),
                zones: vec![MEETING],
                schedule: None,
                valid_from: None,
                valid_until: None,
            },
        ],
        schedules: vec![],
        holidays: HolidayCalendar::default(),
        bookings: vec![],
    }
}

/// The virtual board as a technician with a multimeter sees it: every edge the controller writes.
pub struct Observer {
    pub writer: UnixStream,
    pub edges: mpsc::Receiver<(u8, bool, u64)>,
}

impl Observer {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).unwrap();
        let mut writer = stream.try_clone().unwrap();
        writeln!(writer, r#"{{"op":"hello","role":"observer"}}"#).unwrap();
        writeln!(writer, r#"{{"op":"subscribe"}}"#).unwrap();
        let (tx, edges) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if v["op"] == "edge" && v["by"] == "controller" {
                    let edge = (
                        v["pin"].as_u64().unwrap() as u8,
                        v["level"] == 1,
                        v["t_us"].as_u64().unwrap(),
                    );
                    if tx.send(edge).is_err() {
                        break;
                    }
                }
            }
        });
        Observer { writer, edges }
    }

    pub fn drive(&mut self, pin: u8, level: bool) {
        writeln!(
            self.writer,
            r#"{{"op":"drive","pin":{pin},"level":{}}}"#,
            u8::from(level)
        )
        .unwrap();
    }

    /// Waits for the controller to set `pin` to `level`; returns the board time in µs.
    pub fn edge(&self, pin: u8, level: bool) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.edges.recv_timeout(left) {
                Ok((p, l, t)) if p == pin && l == level => return t,
                Ok(_) => {}
                Err(_) => panic!("pin {pin} never went to {level}"),
            }
        }
    }

    /// Waits for the controller to energise `pin` and then release it; returns
    /// both board times. Edges of other pins in between are skipped.
    pub fn pulse(&self, pin: u8) -> Pulse {
        let on_us = self.edge(pin, true);
        let off_us = self.edge(pin, false);
        Pulse { pin, on_us, off_us }
    }

    /// Waits for one unlock of `pin` and asserts the relay was energised for
    /// `unlock_ms` within the rig's tolerance; returns the pulse.
    pub fn unlock(&self, pin: u8, unlock_ms: u64) -> Pulse {
        let pulse = self.pulse(pin);
        pulse.assert_unlock_time(unlock_ms);
        pulse
    }

    /// Waits for the controller to set `pin` to `level`; returns the board
    /// time and every edge written before it (other pins included).
    pub fn edge_after(&self, pin: u8, level: bool) -> (u64, Vec<(u8, bool, u64)>) {
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.edges.recv_timeout(left) {
                Ok((p, l, t)) if p == pin && l == level => return (t, before),
                Ok(edge) => before.push(edge),
                Err(_) => panic!("pin {pin} never went to {level}; before that: {before:?}"),
            }
        }
    }

    /// Every edge the controller writes within `window`.
    pub fn edges_within(&self, window: Duration) -> Vec<(u8, bool, u64)> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.edges.recv_timeout(left) {
                Ok(edge) => seen.push(edge),
                Err(_) => break,
            }
        }
        seen
    }

    /// Forgets edges seen so far.
    pub fn drain(&self) {
        while self.edges.try_recv().is_ok() {}
    }

    /// Asserts `pin` is not written to `level` within `window`.
    pub fn no_edge(&self, pin: u8, level: bool, window: Duration) {
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.edges.recv_timeout(left) {
                Ok((p, l, _)) if p == pin && l == level => {
                    panic!("pin {pin} went to {level} but should not have")
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// One energised period of an output, in board time (µs).
#[derive(Debug, Clone, Copy)]
pub struct Pulse {
    pub pin: u8,
    pub on_us: u64,
    pub off_us: u64,
}

impl Pulse {
    /// From a rising and a falling edge already waited for.
    pub fn between(pin: u8, on_us: u64, off_us: u64) -> Self {
        Pulse { pin, on_us, off_us }
    }

    pub fn energised_ms(&self) -> u64 {
        self.off_us.saturating_sub(self.on_us) / 1000
    }

    /// The relay was energised for the configured unlock time, within
    /// [`RELAY_EARLY_MS`] / [`RELAY_LATE_MS`].
    pub fn assert_unlock_time(&self, unlock_ms: u64) {
        let held = self.energised_ms();
        let range = unlock_ms.saturating_sub(RELAY_EARLY_MS)..unlock_ms + RELAY_LATE_MS;
        assert!(
            self.off_us > self.on_us && range.contains(&held),
            "pin {} energised for {held} ms, configured {unlock_ms} ms (allowed {range:?})",
            self.pin
        );
    }
}

/// A running controller; its log lines are collected for the test to wait on.
pub struct Controller {
    pub proc: Proc,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Controller {
    pub fn start(config: &Path, policy: Option<&Path>) -> Self {
        Self::start_logging(config, policy, "info")
    }

    /// Starts with a log filter of the test's choosing (`RUST_LOG` syntax).
    pub fn start_logging(config: &Path, policy: Option<&Path>, filter: &str) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["controller", "--config", config.to_str().unwrap()]);
        if let Some(p) = policy {
            cmd.args(["--policy", p.to_str().unwrap()]);
        }
        let mut child = cmd
            .env("RUST_LOG", filter)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if std::env::var_os("TOBIRA_TEST_ECHO").is_some() {
                        eprintln!("controller: {line}");
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let c = Controller {
            proc: Proc(child),
            log,
        };
        c.wait_log("the controller to run", |l| {
            l.contains("controller running")
        });
        c
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `pred`; returns it.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_logs(what, pred, 1)
    }

    /// Waits until `n` log lines satisfy `pred`; returns the `n`-th.
    pub fn wait_logs(&self, what: &str, pred: impl Fn(&str) -> bool, n: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.lines().into_iter().filter(|l| pred(l)).nth(n - 1) {
                return l;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {WAIT:?} for {what}; log:\n{}",
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the `n`-th recorded event matching all of `parts`.
    pub fn wait_event(&self, parts: &[&str], n: usize) -> String {
        let what = format!("event #{n} with {parts:?}");
        let deadline = Instant::now() + WAIT;
        loop {
            let found: Vec<String> = self
                .lines()
                .into_iter()
                .filter(|l| l.contains("event recorded") && parts.iter().all(|p| l.contains(p)))
                .collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {WAIT:?} for {what}; log:\n{}",
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn count_events(&self, parts: &[&str]) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.contains("event recorded") && parts.iter().all(|p| l.contains(p)))
            .count()
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.proc.0.try_wait().unwrap() {
                assert!(status.success(), "controller exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "controller did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        self.lines()
    }
}

pub fn tap(slot: &VirtualReaderSlot, card: &str) {
    let report = tap_card(slot.port, card, 1500);
    assert_eq!(
        report["uid_reads"], 1,
        "the card was not read once: {report}"
    );
}

pub fn http_get(port: u16, path: &str) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    if path == "/metrics" {
        return Value::String(body.to_owned());
    }
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Everything a controller needs, started fresh.
pub struct Rig {
    pub dir: Scratch,
    pub pcscd: PrivatePcscd,
    pub _board: Proc,
    pub _finger: Proc,
    pub finger_control: UnixStream,
    pub observer: Observer,
    pub status_port: u16,
    pub config: PathBuf,
    pub policy: PathBuf,
}

impl Rig {
    pub fn start(test: &str, finger_args: &[&str]) -> Rig {
        // vpcd keeps its connections in one static table per process, so a
        // pcscd has exactly one vpcd entry of two reader slots to work with;
        // the scenarios move the two readers between doors by config.
        let pcscd = PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
        let dir = Scratch::new(test);
        let socket = dir.path().join("gpio.sock");
        let (board, _, _) = simulator(&["hil", "gpio", "--socket", socket.to_str().unwrap()]);
        let link = dir.path().join("finger");
        let control = dir.path().join("finger.ctl");
        let mut args = vec![
            "hil",
            "finger",
            "--link",
            link.to_str().unwrap(),
            "--control",
            control.to_str().unwrap(),
            "--enrolled",
            "3,4",
        ];
        args.extend_from_slice(finger_args);
        let (finger, _, _) = simulator(&args);
        let finger_control = UnixStream::connect(&control).unwrap();
        finger_control
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let observer = Observer::connect(&socket);
        let status_port = free_port();
        let config = dir.path().join("controller.toml");
        let policy_path = dir.path().join("policy.json");
        std::fs::write(&policy_path, serde_json::to_string(&policy(1)).unwrap()).unwrap();
        Rig {
            dir,
            pcscd,
            _board: board,
            _finger: finger,
            finger_control,
            observer,
            status_port,
            config,
            policy: policy_path,
        }
    }

    pub fn slot(&self, i: usize) -> &VirtualReaderSlot {
        &self.pcscd.slots()[i]
    }

    /// Writes the controller config with the two virtual readers on these
    /// door entry sides; the other readers are configured but absent
    /// (unplugged), and so is the second biometric module's serial port.
    pub fn configure(&self, readers: [u32; 2]) {
        self.configure_with(readers, "");
    }

    /// [`Rig::configure`], with more TOML after the doors (fire or tamper inputs).
    pub fn configure_with(&self, readers: [u32; 2], extra: &str) {
        let reader = |door: u32| -> String {
            readers
                .iter()
                .position(|&d| d == door)
                .map_or(format!("Unplugged Reader {door}"), |i| {
                    self.slot(i).name.clone()
                })
        };
        let socket = self.dir.path().join("gpio.sock");
        let link = self.dir.path().join("finger");
        let status_port = self.status_port;
        std::fs::write(
            &self.config,
            format!(
                r#"
controller = 1
data_dir = "{data}"
status_listen = "127.0.0.1:{status_port}"
poll_ms = 5

# The tests follow cards and people through the log by their ids.
[log]
identifiers = "full"

[gpio]
backend = "virtual"
socket = "{socket}"

[[biometric]]
module = 1
name = "machine room finger"
port = "{link}"

[[biometric]]
module = 2
name = "store finger"
port = "{missing}"

[[doors]]
name = "office"
id = 10
kind = "door"
entry_reader = "{r10}"
lock_output = {{ pin = {OFFICE_LOCK} }}
contact = {{ pin = {OFFICE_CONTACT}, active_low = true }}
rex = {{ pin = {OFFICE_REX} }}
timings = {{ unlock_ms = {OFFICE_UNLOCK_MS}, held_prealarm_ms = {OFFICE_PREALARM_MS}, held_alarm_ms = {OFFICE_ALARM_MS} }}

[[doors]]
name = "machine room"
id = 20
kind = "door"
entry_reader = "{r20}"
exit_reader = "{r21}"
lock_output = {{ pin = {MACHINE_LOCK} }}
contact = {{ pin = {MACHINE_CONTACT}, active_low = true }}
prompt = {{ pin = {MACHINE_PROMPT} }}
timings = {{ unlock_ms = {MACHINE_UNLOCK_MS}, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}

[[doors]]
name = "office gate"
id = 30
kind = "flapper_gate"
entry_reader = "{r30}"
exit_reader = "{r31}"
open_in = {{ pin = {GATE_IN} }}
open_out = {{ pin = {GATE_OUT} }}
passage = {{ pin = {GATE_SENSOR} }}
gate_timings = {{ open_timeout_ms = 5000, closing_ms = 300 }}

[[doors]]
name = "meeting room"
id = 40
kind = "door"
entry_reader = "{r40}"
lock_output = {{ pin = {MEETING_LOCK} }}
contact = {{ pin = {MEETING_CONTACT}, active_low = true }}
timings = {{ unlock_ms = {MEETING_UNLOCK_MS}, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}

[[doors]]
name = "store"
id = 50
kind = "door"
entry_reader = "{r50}"
lock_output = {{ pin = {STORE_LOCK} }}
contact = {{ pin = {STORE_CONTACT}, active_low = true }}
timings = {{ unlock_ms = {STORE_UNLOCK_MS}, held_prealarm_ms = 20000, held_alarm_ms = 30000 }}
{extra}
"#,
                data = self.dir.path().join("data").display(),
                socket = socket.display(),
                link = link.display(),
                missing = self.dir.path().join("no-such-tty").display(),
                r10 = reader(10),
                r20 = reader(20),
                r21 = reader(21),
                r30 = reader(30),
                r31 = reader(31),
                r40 = reader(40),
                r50 = reader(50),
            ),
        )
        .unwrap();
    }

    /// Replaces the policy file the next controller start loads.
    pub fn write_policy(&self, data: &SnapshotData) {
        std::fs::write(&self.policy, serde_json::to_string(data).unwrap()).unwrap();
    }

    pub fn finger(&mut self, line: &str) {
        writeln!(self.finger_control, "{line}").unwrap();
        let mut answer = String::new();
        BufReader::new(&self.finger_control)
            .read_line(&mut answer)
            .unwrap();
        assert!(answer.contains("\"ok\":true"), "{line} → {answer}");
    }

    /// Where the controller's event chain began: its epoch's genesis.
    pub fn chain_start(&self) -> tobira_firmware::Chain {
        let path = self.dir.path().join("data").join("controller.sqlite");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = tobira_controller::state::open(&path).await.unwrap();
            let outbox = tobira_controller::outbox::Outbox::open(pool.clone(), ControllerId(1))
                .await
                .unwrap();
            let epoch = outbox.chain().await.epoch;
            pool.close().await;
            tobira_firmware::Chain::start(ControllerId(1), epoch)
        })
    }

    pub fn outbox(&self) -> Vec<SealedEvent> {
        let path = self.dir.path().join("data").join("controller.sqlite");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = tobira_controller::state::open(&path).await.unwrap();
            let outbox = tobira_controller::outbox::Outbox::open(pool.clone(), ControllerId(1))
                .await
                .unwrap();
            let events = outbox.pending(100_000).await.unwrap();
            pool.close().await;
            events
        })
    }
}

pub fn reasons(events: &[SealedEvent], door: u32) -> Vec<(Option<PersonId>, Reason)> {
    events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::Access(a) if a.door == DoorId(door) => Some((a.person, a.reason)),
            _ => None,
        })
        .collect()
}

/// When (controller clock, ms) each held-open stage of `door` was recorded, in order.
pub fn held_open_times(events: &[SealedEvent], door: u32) -> Vec<(HeldStage, i64)> {
    events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::DoorHeldOpen { door: d, stage } if *d == DoorId(door) => {
                Some((*stage, e.event.at.0))
            }
            _ => None,
        })
        .collect()
}

/// When (controller clock, ms) each access record of `door` with `reason` was recorded.
pub fn access_times(events: &[SealedEvent], door: u32, reason: Reason) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::Access(a) if a.door == DoorId(door) && a.reason == reason => {
                Some(e.event.at.0)
            }
            _ => None,
        })
        .collect()
}

/// The access records of one door for one person, in order: (side, reason, warnings).
pub fn passages_of(
    events: &[SealedEvent],
    door: u32,
    person: PersonId,
) -> Vec<(Side, Reason, Warnings)> {
    events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::Access(a) if a.door == DoorId(door) && a.person == Some(person) => {
                Some((a.side, a.reason, a.warnings))
            }
            _ => None,
        })
        .collect()
}

/// A controller whose log also says when a card leaves a reader.
pub fn start_watching_cards(rig: &Rig, policy: Option<&Path>) -> Controller {
    let c = Controller::start_logging(&rig.config, policy, "info,tobira_controller::engine=debug");
    // A tap right after a (re)start must not be lost to a reader still being opened.
    for i in 0..2 {
        let name = rig.slot(i).name.clone();
        c.wait_log("the reader to come online", |l| {
            l.contains("card reader online") && l.contains(&name)
        });
    }
    c
}

/// Taps a card and waits until the controller has seen it leave the reader:
/// pcscd notices a removal only at its next presence poll, so a controller
/// restarted (or a card tapped) before then would see the old card still there.
pub fn tap_and_lift(rig: &Rig, c: &Controller, reader: usize, card: &str) {
    let name = rig.slot(reader).name.clone();
    let removed = |l: &str| l.contains("card removed") && l.contains(&name);
    let before = c.lines().iter().filter(|l| removed(l)).count();
    tap(rig.slot(reader), card);
    c.wait_logs("the card to leave the reader", removed, before + 1);
}

/// Card and a matching finger at one side of the machine-room door; the
/// strike opens for its unlock time and the level-4 door relocks.
pub fn enter_or_leave(rig: &mut Rig, c: &Controller, reader: usize) {
    let waiting = |l: &str| l.contains("waiting for a finger") && l.contains("slot=3");
    let waits = c.lines().iter().filter(|l| waiting(l)).count();
    let grants = c.count_events(&["door=20", "reason=granted", "person=1"]);
    rig.observer.drain();
    tap_and_lift(rig, c, reader, SATO_CARD);
    c.wait_logs("the module waiting for Sato's finger", waiting, waits + 1);
    rig.finger(r#"{"next":"match","slot":3}"#);
    c.wait_event(&["door=20", "reason=granted", "person=1"], grants + 1);
    rig.observer.unlock(MACHINE_LOCK, MACHINE_UNLOCK_MS);
}

/// A central service on SQLite as its own process, with an admin API token
/// made from the command line, as an integrator sets one up on site.
pub struct CentralProc {
    pub _proc: Proc,
    pub port: u16,
    pub token: String,
    /// A second admin's token: approves what `token` asks for (four-eyes).
    pub second_admin: String,
}

impl CentralProc {
    pub fn start(dir: &Scratch) -> Self {
        let db = format!("sqlite://{}", dir.path().join("central.db").display());
        let out = Command::new(BIN)
            .args(["central", "--database", &db, "token", "create"])
            .args(["--name", "integrator", "--role", "admin", "--days", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let out = Command::new(BIN)
            .args(["central", "--database", &db, "token", "create"])
            .args(["--name", "second-admin", "--role", "admin", "--days", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let second_admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let port = free_port();
        let proc = serve_central(&db, port);
        CentralProc {
            _proc: proc,
            port,
            token,
            second_admin,
        }
    }

    /// POSTs a resource that must be created (201); returns its JSON.
    pub fn create(&self, path: &str, body: Value) -> Value {
        let (status, answer) = api(self.port, &self.token, "POST", path, Some(body));
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }
}

/// One request to the central service's JSON API with an API token; returns
/// the status and the JSON body (null when there is none).
pub fn api(port: u16, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} /api/v1{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let answer = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(answer).unwrap_or(Value::Null))
}

/// Polls `check` until it answers `Some`, for at most [`WAIT`].
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the central service again on the database and port of one started
/// with [`CentralProc::start`] in `dir`, after the test stopped it: a central
/// service back from an outage, at the address controllers already know.
pub fn central_again(dir: &Scratch, port: u16) -> Proc {
    let db = format!("sqlite://{}", dir.path().join("central.db").display());
    serve_central(&db, port)
}

/// `tobira central` serving `db` on `port`, once it answers.
fn serve_central(db: &str, port: u16) -> Proc {
    let proc = Proc(
        Command::new(BIN)
            .args(["central", "--database", db, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("the central service to answer", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    proc
}
