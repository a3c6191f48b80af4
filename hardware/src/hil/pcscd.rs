//! A private `pcscd` with vpcd reader slots on free ports, for HIL tests and demos.
//!
//! There is one pcscd per machine (its socket path is fixed), so instances
//! are serialised across processes with a file lock, and a pcscd that this
//! code did not start is never touched: starting fails with a clear error.

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where Debian's vsmartcard-vpcd installs the reader driver.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// pcscd's client socket; its existence means a pcscd is (or was) running.
pub const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";
const LOCK_PATH: &str = "/tmp/tobira-pcscd.lock";
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Errors starting the private pcscd.
#[derive(Debug, thiserror::Error)]
pub enum PcscdError {
    /// A pcscd not started by us is running; we will not stop it.
    #[error(
        "a pcscd not started by this test is already running ({0}); stop it yourself \
         (e.g. `systemctl stop pcscd.socket pcscd`) and run again"
    )]
    AlreadyRunning(String),
    /// A required program or driver is missing.
    #[error(
        "{0} is missing; install the Debian packages pcscd and vsmartcard-vpcd (scripts/deps test)"
    )]
    Missing(String),
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Underlying error.
        source: std::io::Error,
    },
    /// pcscd did not come up with the expected readers.
    #[error("pcscd did not become ready: {0}")]
    NotReady(String),
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> PcscdError {
    move |source| PcscdError::Io { context, source }
}

/// One virtual reader slot of the private pcscd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualReaderSlot {
    /// The PC/SC reader name.
    pub name: String,
    /// The TCP port a virtual card connects to.
    pub port: u16,
}

/// A pcscd started by us, with two vpcd reader slots. Dropping it stops
/// exactly that process (by PID) and releases the lock.
#[derive(Debug)]
pub struct PrivatePcscd {
    child: Child,
    dir: PathBuf,
    slots: Vec<VirtualReaderSlot>,
    _lock: Flock<File>,
}

/// Where vpcd's ports are chosen: below Linux's ephemeral range (32768 and
/// up by default), so that no `bind(0)` elsewhere - a test's free port for
/// its own server, an outgoing connection - can be handed one of them in the
/// moment between this check and pcscd binding it.
const VPCD_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Two consecutive free TCP ports (vpcd listens on `port` and `port + 1`,
/// one per slot of a reader entry).
fn free_port_pair() -> Result<u16, PcscdError> {
    use std::hash::{BuildHasher, RandomState};
    let span = u64::from(VPCD_PORTS.end - VPCD_PORTS.start - 1);
    let random = RandomState::new();
    for attempt in 0..200u64 {
        let offset = random.hash_one((std::process::id(), attempt)) % span;
        let port = VPCD_PORTS.start + u16::try_from(offset).unwrap_or(0);
        let free = |p: u16| {
            TcpListener::bind(("0.0.0.0", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        };
        if free(port) && free(port + 1) {
            return Ok(port);
        }
    }
    Err(PcscdError::NotReady("no two consecutive free ports".into()))
}

fn pcscd_binary() -> Result<PathBuf, PcscdError> {
    ["/usr/sbin/pcscd", "/usr/bin/pcscd", "/sbin/pcscd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| PcscdError::Missing("pcscd".into()))
}

fn running_pcscd() -> Option<String> {
    let pid_file = Path::new("/run/pcscd/pcscd.pid");
    let pid = std::fs::read_to_string(pid_file).ok();
    let alive = pid
        .as_deref()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .filter(|&p| kill(Pid::from_raw(p), None).is_ok());
    if let Some(pid) = alive {
        return Some(format!("pid {pid}"));
    }
    // A socket someone answers on is a running pcscd even without a pid file
    // (e.g. socket activation).
    if std::os::unix::net::UnixStream::connect(PCSCD_SOCKET).is_ok() {
        return Some(format!("answering on {PCSCD_SOCKET}"));
    }
    None
}

impl PrivatePcscd {
    /// Takes the machine-wide lock, checks no other pcscd runs, and starts
    /// `pcscd --foreground --config DIR` with one vpcd entry (two slots).
    pub fn start() -> Result<Self, PcscdError> {
        let pcscd = pcscd_binary()?;
        if !Path::new(VPCD_DRIVER).exists() {
            return Err(PcscdError::Missing(VPCD_DRIVER.into()));
        }
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .map_err(io("opening the pcscd lock"))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io("locking the pcscd lock")(e.into()))?;
        if let Some(who) = running_pcscd() {
            return Err(PcscdError::AlreadyRunning(who));
        }
        let port = free_port_pair()?;
        let dir = std::env::temp_dir().join(format!("tobira-pcscd-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io("creating the reader.conf directory"))?;
        let conf = dir.join("readers");
        std::fs::create_dir_all(&conf).map_err(io("creating the reader.conf directory"))?;
        // vpcd takes the TCP port from CHANNELID (and DEVICENAME's suffix);
        // "/dev/null" as host makes it listen instead of connecting out.
        std::fs::write(
            conf.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Tobira HIL\"\nDEVICENAME   /dev/null:0x{port:X}\n\
                 LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{port:X}\n"
            ),
        )
        .map_err(io("writing reader.conf"))?;
        let log = File::create(dir.join("pcscd.log")).map_err(io("creating the pcscd log"))?;
        let log2 = log.try_clone().map_err(io("creating the pcscd log"))?;
        let child = Command::new(pcscd)
            .arg("--foreground")
            .arg("--config")
            .arg(&conf)
            // If this process dies without stopping it, pcscd leaves by itself
            // once idle rather than blocking the next run forever.
            .arg("--auto-exit")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("starting pcscd"))?;
        let mut me = PrivatePcscd {
            child,
            dir,
            slots: Vec::new(),
            _lock: lock,
        };
        me.slots = me.wait_ready(port)?;
        Ok(me)
    }

    fn wait_ready(&mut self, port: u16) -> Result<Vec<VirtualReaderSlot>, PcscdError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no reader listed yet");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PcscdError::NotReady(format!(
                    "pcscd exited with {status}; log:\n{}",
                    self.log()
                )));
            }
            match pcsc::Context::establish(pcsc::Scope::User).and_then(|c| c.list_readers_owned()) {
                Ok(names) => {
                    let mut names: Vec<String> = names
                        .iter()
                        .map(|n| n.to_string_lossy().into_owned())
                        .filter(|n| n.starts_with("Tobira HIL"))
                        .collect();
                    names.sort();
                    if names.len() == 2 {
                        // Slot 00 listens on `port`, slot 01 on `port + 1`.
                        return Ok(names
                            .into_iter()
                            .zip([port, port + 1])
                            .map(|(name, port)| VirtualReaderSlot { name, port })
                            .collect());
                    }
                    last = format!("readers so far: {names:?}");
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(PcscdError::NotReady(format!(
            "{last}; log:\n{}",
            self.log()
        )))
    }

    /// The two virtual reader slots (entry side, exit side).
    pub fn slots(&self) -> &[VirtualReaderSlot] {
        &self.slots
    }

    /// The PID of the pcscd we started.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// pcscd's output so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(self.dir.join("pcscd.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        // SIGTERM lets pcscd remove its socket and pid file; SIGKILL if it hangs.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
