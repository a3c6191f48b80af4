//! The virtual EF01 fingerprint module: a pseudo-terminal speaking the real packet protocol.
//!
//! The module runs on its own thread with blocking I/O on the pty master, so
//! it works the same inside a test process and behind `tobira hil finger`.
//! Fingers are modelled as numbers: a template stores the finger it was made
//! from, and a match is "same finger". What the next capture sees comes from
//! a queue filled through [`VirtualFingerprintModule::present`] or the
//! control socket.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios;

use super::codec::{
    Ack, Command, Confirmation, Decoder, Packet, PacketKind, SystemParameters, DEFAULT_ADDRESS,
};

/// How often blocking loops look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// The Match/Search score reported for the same finger.
const SAME_FINGER_SCORE: u16 = 200;

/// Settings of a virtual module.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Template slots in the library.
    pub capacity: u16,
    /// Module address.
    pub address: u32,
    /// Module password; when non-zero, VfyPwd must succeed before other commands.
    pub password: u32,
    /// Delay before every reply.
    pub latency: Duration,
    /// Corrupt the checksum of every Nth reply (`None` = never).
    pub bad_checksum_every: Option<u32>,
    /// Slots enrolled at start; slot N holds finger N.
    pub enrolled: Vec<u16>,
    /// Symlink to create to the device end of the pty.
    pub link: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            capacity: 162,
            address: DEFAULT_ADDRESS,
            password: 0,
            latency: Duration::ZERO,
            bad_checksum_every: None,
            enrolled: Vec::new(),
            link: None,
        }
    }
}

/// Errors starting or controlling the virtual module.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: &'static str,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A control line could not be understood or applied.
    #[error("control: {0}")]
    Control(String),
}

fn sys(context: &'static str) -> impl FnOnce(nix::Error) -> SimError {
    move |e| SimError::Sys {
        context,
        source: e.into(),
    }
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> SimError {
    move |source| SimError::Sys { context, source }
}

/// A finger put on the sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    /// The finger whose template is in this slot.
    EnrolledIn(u16),
    /// A finger no template was made from.
    Stranger,
    /// A particular finger (e.g. to enroll it, then match it later).
    Finger(u32),
}

#[derive(Debug)]
struct SimState {
    config: SimConfig,
    /// Slot → finger the template was made from.
    templates: BTreeMap<u16, u32>,
    /// Character buffers 1 and 2.
    buffers: [Option<u32>; 2],
    /// The last captured image.
    image: Option<u32>,
    /// The image came from the queue's front finger, which is still "down".
    image_unconsumed: bool,
    /// Fingers that the next captures will see, in order.
    queue: VecDeque<u32>,
    verified: bool,
    replies: u64,
    next_stranger: u32,
    garbage: Vec<u8>,
}

impl SimState {
    fn new(config: SimConfig) -> Self {
        let templates = config
            .enrolled
            .iter()
            .map(|&slot| (slot, u32::from(slot)))
            .collect();
        SimState {
            verified: config.password == 0,
            config,
            templates,
            buffers: [None, None],
            image: None,
            image_unconsumed: false,
            queue: VecDeque::new(),
            replies: 0,
            // Strangers are numbered from the top so they never equal an enrolled slot's finger.
            next_stranger: u32::MAX,
            garbage: Vec::new(),
        }
    }

    fn present(&mut self, p: Presentation, times: u32) -> Result<(), SimError> {
        let finger = match p {
            Presentation::EnrolledIn(slot) => *self
                .templates
                .get(&slot)
                .ok_or_else(|| SimError::Control(format!("slot {slot} is not enrolled")))?,
            Presentation::Stranger => {
                self.next_stranger -= 1;
                self.next_stranger
            }
            Presentation::Finger(f) => f,
        };
        for _ in 0..times {
            self.queue.push_back(finger);
        }
        Ok(())
    }

    fn buffer(&mut self, id: u8) -> Option<&mut Option<u32>> {
        match id {
            1 => Some(&mut self.buffers[0]),
            2 => Some(&mut self.buffers[1]),
            _ => None,
        }
    }

    fn answer(&mut self, command: Command) -> Ack {
        use Confirmation as C;
        let capacity = self.config.capacity;
        if !self.verified && !matches!(command, Command::VfyPwd { .. }) {
            return Ack::bare(C::MustVerifyPassword);
        }
        let code = match command {
            Command::VfyPwd { password } => {
                self.verified = password == self.config.password;
                if self.verified {
                    C::Ok
                } else {
                    C::WrongPassword
                }
            }
            // The finger stays on the sensor until its image has been turned
            // into a character file, so a GenImg resent after a lost reply
            // sees the same finger, as on a real module.
            Command::GenImg => {
                self.image = self.queue.front().copied();
                self.image_unconsumed = self.image.is_some();
                if self.image.is_some() {
                    C::Ok
                } else {
                    C::NoFinger
                }
            }
            Command::Img2Tz { buffer } => {
                let image = self.image;
                if image.is_some() && self.image_unconsumed && (1..=2).contains(&buffer) {
                    self.queue.pop_front();
                    self.image_unconsumed = false;
                }
                match (self.buffer(buffer), image) {
                    (None, _) => C::InvalidRegister,
                    (Some(_), None) => C::NoValidImage,
                    (Some(slot), Some(f)) => {
                        *slot = Some(f);
                        C::Ok
                    }
                }
            }
            Command::Match => {
                return match self.buffers {
                    [Some(a), Some(b)] if a == b => Ack {
                        code: C::Ok,
                        data: SAME_FINGER_SCORE.to_be_bytes().to_vec(),
                    },
                    _ => Ack {
                        code: C::NoMatch,
                        data: vec![0, 0],
                    },
                }
            }
            Command::Search {
                buffer,
                start_page,
                count,
            } => {
                let Some(&Some(finger)) = self.buffer(buffer).map(|b| &*b) else {
                    return Ack::bare(C::NoValidImage);
                };
                let end = start_page.saturating_add(count);
                let found = self
                    .templates
                    .range(start_page..end)
                    .find(|(_, f)| **f == finger)
                    .map(|(slot, _)| *slot);
                return match found {
                    Some(slot) => {
                        let mut data = slot.to_be_bytes().to_vec();
                        data.extend_from_slice(&SAME_FINGER_SCORE.to_be_bytes());
                        Ack { code: C::Ok, data }
                    }
                    None => Ack {
                        code: C::NotFound,
                        data: vec![0; 4],
                    },
                };
            }
            Command::RegModel => match self.buffers {
                [Some(a), Some(b)] if a == b => C::Ok,
                _ => C::MergeFailed,
            },
            Command::Store { buffer, page } => {
                let content = self.buffer(buffer).map(|b| *b);
                match content {
                    None => C::InvalidRegister,
                    Some(_) if page >= capacity => C::PageOutOfRange,
                    Some(None) => C::NoValidImage,
                    Some(Some(f)) => {
                        self.templates.insert(page, f);
                        C::Ok
                    }
                }
            }
            Command::LoadChar { buffer, page } => {
                let stored = self.templates.get(&page).copied();
                match self.buffer(buffer) {
                    None => C::InvalidRegister,
                    Some(_) if page >= capacity => C::PageOutOfRange,
                    Some(slot) => match stored {
                        Some(f) => {
                            *slot = Some(f);
                            C::Ok
                        }
                        None => C::ReadTemplateError,
                    },
                }
            }
            Command::DeleteChar { page, count } => {
                if u32::from(page) + u32::from(count) > u32::from(capacity) {
                    C::PageOutOfRange
                } else {
                    let end = page.saturating_add(count);
                    self.templates.retain(|slot, _| !(page..end).contains(slot));
                    C::Ok
                }
            }
            Command::Empty => {
                self.templates.clear();
                C::Ok
            }
            Command::ReadSysPara => {
                let params = SystemParameters {
                    status: 0,
                    system_id: 0x0009,
                    library_size: capacity,
                    security_level: 3,
                    address: self.config.address,
                    packet_size_code: 2,
                    baud_multiplier: 6,
                };
                return Ack {
                    code: C::Ok,
                    data: params.to_bytes().to_vec(),
                };
            }
            Command::ReadIndexTable { page } => {
                let first = u32::from(page) * 256;
                let mut table = [0u8; 32];
                for &slot in self.templates.keys() {
                    let Some(offset) = u32::from(slot).checked_sub(first).filter(|o| *o < 256)
                    else {
                        continue;
                    };
                    // offset < 256, so both indexes fit.
                    table[(offset / 8) as usize] |= 1 << (offset % 8);
                }
                return Ack {
                    code: C::Ok,
                    data: table.to_vec(),
                };
            }
            Command::TemplateNum => {
                // At most u16::MAX slots exist, so the count always fits.
                let count = u16::try_from(self.templates.len()).unwrap_or(u16::MAX);
                return Ack {
                    code: C::Ok,
                    data: count.to_be_bytes().to_vec(),
                };
            }
        };
        Ack::bare(code)
    }

    /// The bytes to send for `ack`: pending garbage first, and a corrupted
    /// checksum when the fault injection says so.
    fn wire_reply(&mut self, ack: &Ack) -> Vec<u8> {
        self.replies += 1;
        let mut out = std::mem::take(&mut self.garbage);
        let Ok(mut bytes) = Packet::ack(self.config.address, ack).encode() else {
            return out;
        };
        if let Some(n) = self.config.bad_checksum_every {
            if n > 0 && self.replies % u64::from(n) == 0 {
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0x5A;
                }
            }
        }
        out.extend(bytes);
        out
    }
}

/// A running virtual fingerprint module. Dropping it stops the module and
/// removes the symlink.
#[derive(Debug)]
pub struct VirtualFingerprintModule {
    tty_path: PathBuf,
    link: Option<PathBuf>,
    state: Arc<Mutex<SimState>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    control_path: Option<PathBuf>,
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panicked holder cannot leave the state half-updated in a way that
    // matters to a simulator; keep serving.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl VirtualFingerprintModule {
    /// Creates the pty pair and starts answering on it.
    pub fn start(config: SimConfig) -> Result<Self, SimError> {
        if let Some(slot) = config.enrolled.iter().find(|&&s| s >= config.capacity) {
            return Err(SimError::Control(format!(
                "enrolled slot {slot} is beyond the capacity of {}",
                config.capacity
            )));
        }
        let pty = nix::pty::openpty(None, None).map_err(sys("openpty"))?;
        // Raw mode on the device end, so no line discipline mangles binary packets
        // before the driver (which also sets raw mode) has opened it.
        let mut attrs = termios::tcgetattr(&pty.slave).map_err(sys("tcgetattr"))?;
        termios::cfmakeraw(&mut attrs);
        termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &attrs)
            .map_err(sys("tcsetattr"))?;
        let tty_path = nix::unistd::ttyname(&pty.slave).map_err(sys("ttyname"))?;
        if let Some(link) = &config.link {
            match std::fs::remove_file(link) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("removing old link")(e)),
            }
            std::os::unix::fs::symlink(&tty_path, link).map_err(io("creating link"))?;
        }
        let link = config.link.clone();
        let state = Arc::new(Mutex::new(SimState::new(config)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            let master = pty.master;
            // Holding the device end open keeps the master readable (no EIO)
            // while no driver has the port open.
            let slave = pty.slave;
            std::thread::Builder::new()
                .name("virtual-fingerprint".into())
                .spawn(move || serve_line(master, slave, &state, &stop))
                .map_err(io("spawning module thread"))?
        };
        Ok(VirtualFingerprintModule {
            tty_path,
            link,
            state,
            stop,
            threads: vec![thread],
            control_path: None,
        })
    }

    /// The path a driver opens: the symlink if one was asked for, else the pty.
    pub fn device_path(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.tty_path)
    }

    /// The pty's own device path (`/dev/pts/N`).
    pub fn tty_path(&self) -> &Path {
        &self.tty_path
    }

    /// Puts a finger on the sensor for the next `times` captures.
    pub fn present(&self, presentation: Presentation, times: u32) -> Result<(), SimError> {
        lock(&self.state).present(presentation, times)
    }

    /// Takes every queued finger off the sensor.
    pub fn lift(&self) {
        let mut s = lock(&self.state);
        s.queue.clear();
        s.image_unconsumed = false;
    }

    /// Sends these bytes before the next reply, as line noise would.
    pub fn inject_garbage(&self, bytes: &[u8]) {
        lock(&self.state).garbage.extend_from_slice(bytes);
    }

    /// Slots that hold a template.
    pub fn enrolled(&self) -> Vec<u16> {
        lock(&self.state).templates.keys().copied().collect()
    }

    /// Applies one control line (JSON or text) and returns the JSON answer.
    pub fn control(&self, line: &str) -> Result<serde_json::Value, SimError> {
        apply_control(&self.state, line)
    }

    /// Listens for control lines on a Unix socket at `path`.
    pub fn serve_control(&mut self, path: &Path) -> Result<(), SimError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing old control socket")(e)),
        }
        let listener = UnixListener::bind(path).map_err(io("binding control socket"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("control socket nonblocking"))?;
        let state = Arc::clone(&self.state);
        let stop = Arc::clone(&self.stop);
        let thread = std::thread::Builder::new()
            .name("virtual-fingerprint-control".into())
            .spawn(move || accept_control(&listener, &state, &stop))
            .map_err(io("spawning control thread"))?;
        self.threads.push(thread);
        self.control_path = Some(path.to_owned());
        Ok(())
    }
}

impl Drop for VirtualFingerprintModule {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for path in [&self.link, &self.control_path].into_iter().flatten() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn serve_line(master: OwnedFd, _slave: OwnedFd, state: &Mutex<SimState>, stop: &AtomicBool) {
    let mut file = File::from(master);
    let mut decoder = Decoder::new();
    let mut buf = [0u8; 512];
    let timeout = PollTimeout::try_from(STOP_POLL).unwrap_or(PollTimeout::MAX);
    while !stop.load(Ordering::SeqCst) {
        let ready = {
            let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, timeout) {
                Ok(n) => n > 0,
                Err(nix::errno::Errno::EINTR) => false,
                Err(e) => {
                    tracing::error!(error = %e, "virtual fingerprint module: poll failed");
                    return;
                }
            }
        };
        if !ready {
            continue;
        }
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(error = %e, "virtual fingerprint module: read failed");
                return;
            }
        };
        decoder.feed(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let reply = match frame {
                Ok(p) => {
                    let (address, latency) = {
                        let s = lock(state);
                        (s.config.address, s.config.latency)
                    };
                    if p.kind != PacketKind::Command || p.address != address {
                        continue;
                    }
                    if !latency.is_zero() {
                        std::thread::sleep(latency);
                    }
                    let mut s = lock(state);
                    let ack = match Command::parse(&p.payload) {
                        Ok(cmd) => s.answer(cmd),
                        Err(_) => Ack::bare(Confirmation::PacketReceiveError),
                    };
                    s.wire_reply(&ack)
                }
                // What a real module does with a damaged command: say so.
                Err(_) => lock(state).wire_reply(&Ack::bare(Confirmation::PacketReceiveError)),
            };
            if let Err(e) = file.write_all(&reply) {
                tracing::error!(error = %e, "virtual fingerprint module: write failed");
                return;
            }
        }
    }
}

fn accept_control(listener: &UnixListener, state: &Arc<Mutex<SimState>>, stop: &Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = Arc::clone(state);
                let stop = Arc::clone(stop);
                // Detached: it ends when the peer hangs up or the module stops.
                let _ = std::thread::Builder::new()
                    .name("virtual-fingerprint-control-conn".into())
                    .spawn(move || serve_control_connection(stream, &state, &stop));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(STOP_POLL),
            Err(e) => {
                tracing::error!(error = %e, "virtual fingerprint module: accept failed");
                std::thread::sleep(STOP_POLL);
            }
        }
    }
}

fn serve_control_connection(stream: UnixStream, state: &Mutex<SimState>, stop: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(STOP_POLL)).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                let answer = match apply_control(state, line.trim()) {
                    Ok(v) => v,
                    Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
                };
                line.clear();
                if writeln!(writer, "{answer}").is_err() {
                    return;
                }
            }
            // Timeout: partial input stays in `line`; look at the stop flag and go on.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// One control line: `{"next":"match","slot":3}`, `{"next":"nomatch"}`,
/// `{"next":"nofinger"}`, `{"next":"finger","finger":42}`, optional `"times":N`;
/// `{"garbage":"a5 5a"}`; `{"query":"slots"}`. The text forms `match 3`,
/// `nomatch`, `nofinger`, `finger 42`, `slots` do the same.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlLine {
    next: Option<String>,
    slot: Option<u16>,
    finger: Option<u32>,
    times: Option<u32>,
    garbage: Option<String>,
    query: Option<String>,
}

fn parse_text_control(line: &str) -> Result<ControlLine, SimError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| -> Result<u32, SimError> {
        words
            .get(i)
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| SimError::Control(format!("`{line}` needs a number")))
    };
    let mut c = ControlLine {
        next: None,
        slot: None,
        finger: None,
        times: None,
        garbage: None,
        query: None,
    };
    match words.first().copied() {
        Some("match") => {
            c.next = Some("match".into());
            c.slot = Some(
                u16::try_from(number(1)?)
                    .map_err(|_| SimError::Control("slot too large".into()))?,
            );
        }
        Some("finger") => {
            c.next = Some("finger".into());
            c.finger = Some(number(1)?);
        }
        Some(w @ ("nomatch" | "nofinger")) => c.next = Some(w.into()),
        Some("slots") => c.query = Some("slots".into()),
        _ => return Err(SimError::Control(format!("unknown command `{line}`"))),
    }
    Ok(c)
}

fn apply_control(state: &Mutex<SimState>, line: &str) -> Result<serde_json::Value, SimError> {
    let c: ControlLine = if line.starts_with('{') {
        serde_json::from_str(line).map_err(|e| SimError::Control(e.to_string()))?
    } else {
        parse_text_control(line)?
    };
    let mut s = lock(state);
    let times = c.times.unwrap_or(1);
    match c.next.as_deref() {
        None => {}
        Some("match") => {
            let slot = c
                .slot
                .ok_or_else(|| SimError::Control("`match` needs `slot`".into()))?;
            s.present(Presentation::EnrolledIn(slot), times)?;
        }
        Some("nomatch") => s.present(Presentation::Stranger, times)?,
        Some("finger") => {
            let f = c
                .finger
                .ok_or_else(|| SimError::Control("`finger` needs `finger`".into()))?;
            s.present(Presentation::Finger(f), times)?;
        }
        Some("nofinger") => {
            s.queue.clear();
            s.image_unconsumed = false;
        }
        Some(other) => return Err(SimError::Control(format!("unknown `next`: {other}"))),
    }
    if let Some(g) = c.garbage {
        let bytes = hex::decode(g.replace([' ', ':'], ""))
            .map_err(|e| SimError::Control(format!("garbage: {e}")))?;
        s.garbage.extend(bytes);
    }
    match c.query.as_deref() {
        None => Ok(serde_json::json!({"ok": true})),
        Some("slots") => Ok(serde_json::json!({
            "ok": true,
            "slots": s.templates.keys().collect::<Vec<_>>(),
        })),
        Some(other) => Err(SimError::Control(format!("unknown query: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(config: SimConfig) -> Mutex<SimState> {
        Mutex::new(SimState::new(config))
    }

    #[test]
    fn control_lines_queue_fingers() {
        let s = state(SimConfig {
            enrolled: vec![3],
            ..SimConfig::default()
        });
        apply_control(&s, r#"{"next":"match","slot":3,"times":2}"#).unwrap();
        apply_control(&s, "nomatch").unwrap();
        let q: Vec<u32> = lock(&s).queue.iter().copied().collect();
        assert_eq!(q[..2], [3, 3]);
        assert_ne!(q[2], 3);
        apply_control(&s, r#"{"next":"nofinger"}"#).unwrap();
        assert!(lock(&s).queue.is_empty());
        let slots = apply_control(&s, "slots").unwrap();
        assert_eq!(slots["slots"], serde_json::json!([3]));
    }

    #[test]
    fn bad_control_lines_are_errors() {
        let s = state(SimConfig::default());
        for line in [
            r#"{"next":"match","slot":9}"#,
            r#"{"next":"dance"}"#,
            r#"{"bogus":1}"#,
            "match",
            "fly away",
            r#"{"garbage":"zz"}"#,
        ] {
            assert!(apply_control(&s, line).is_err(), "{line}");
        }
    }

    #[test]
    fn password_gate_and_library_rules() {
        let mut s = SimState::new(SimConfig {
            password: 0x1234,
            capacity: 10,
            ..SimConfig::default()
        });
        assert_eq!(
            s.answer(Command::GenImg).code,
            Confirmation::MustVerifyPassword
        );
        assert_eq!(
            s.answer(Command::VfyPwd { password: 1 }).code,
            Confirmation::WrongPassword
        );
        assert_eq!(
            s.answer(Command::VfyPwd { password: 0x1234 }).code,
            Confirmation::Ok
        );
        assert_eq!(s.answer(Command::GenImg).code, Confirmation::NoFinger);
        assert_eq!(
            s.answer(Command::LoadChar {
                buffer: 2,
                page: 10
            })
            .code,
            Confirmation::PageOutOfRange
        );
        assert_eq!(
            s.answer(Command::LoadChar { buffer: 2, page: 1 }).code,
            Confirmation::ReadTemplateError
        );
        assert_eq!(
            s.answer(Command::Img2Tz { buffer: 3 }).code,
            Confirmation::InvalidRegister
        );
    }

    #[test]
    fn the_index_table_marks_the_slots_in_use() {
        let mut s = SimState::new(SimConfig {
            capacity: 300,
            enrolled: vec![0, 9, 257],
            ..SimConfig::default()
        });
        let page0 = s.answer(Command::ReadIndexTable { page: 0 });
        assert_eq!(page0.code, Confirmation::Ok);
        assert_eq!(page0.data.len(), 32);
        assert_eq!((page0.data[0], page0.data[1]), (0b1, 0b10));
        let page1 = s.answer(Command::ReadIndexTable { page: 1 });
        assert_eq!(page1.data[0], 0b10);
    }

    #[test]
    fn enrolled_slots_must_fit_the_library() {
        let r = VirtualFingerprintModule::start(SimConfig {
            capacity: 5,
            enrolled: vec![1, 5],
            ..SimConfig::default()
        });
        assert!(matches!(r, Err(SimError::Control(m)) if m.contains("slot 5")));
    }

    #[test]
    fn every_nth_reply_has_a_bad_checksum() {
        let mut s = SimState::new(SimConfig {
            bad_checksum_every: Some(2),
            ..SimConfig::default()
        });
        let mut d = Decoder::new();
        for _ in 0..4 {
            let wire = s.wire_reply(&Ack::bare(Confirmation::Ok));
            d.feed(&wire);
        }
        let frames: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
        let bad = frames.iter().filter(|f| f.is_err()).count();
        let good = frames.iter().filter(|f| f.is_ok()).count();
        assert_eq!((good, bad), (2, 2));
    }
}
