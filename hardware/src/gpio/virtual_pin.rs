//! The controller's side of the virtual GPIO board: `embedded-hal` pins over the board socket.
//!
//! `embedded-hal` pins are synchronous, so the client is too: writes go
//! straight to the socket and a reader thread keeps a local mirror of every
//! pin current from `level` and `edge` lines. Reading an input is a look at
//! the mirror, never a round trip, just as reading a real GPIO register is.

use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin, StatefulOutputPin};

use super::protocol::{BoardMessage, ClientMessage, Role};
use super::{check_pin, GpioError, MAX_BCM};

const PINS: usize = MAX_BCM as usize + 1;
/// How long `connect` waits for the board to report every pin.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Mirror {
    levels: [Option<bool>; PINS],
    /// The last `error` line from the board, for diagnostics.
    last_error: Option<String>,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    writer: Mutex<UnixStream>,
    mirror: Mutex<Mirror>,
    changed: Condvar,
}

impl Shared {
    fn mirror(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, msg: &ClientMessage) -> Result<(), GpioError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(msg.to_line().as_bytes())?;
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Wakes the reader thread (EOF), which then ends.
        if let Ok(w) = self.writer.get_mut() {
            let _ = w.shutdown(Shutdown::Both);
        }
    }
}

/// A connection to the virtual board in the controller role.
#[derive(Debug, Clone)]
pub struct VirtualBoardClient {
    shared: Arc<Shared>,
}

impl VirtualBoardClient {
    /// Connects, says hello as controller and mirrors every pin's level.
    pub fn connect(path: &Path) -> Result<Self, GpioError> {
        let stream = UnixStream::connect(path)?;
        let reader = stream.try_clone()?;
        let shared = Arc::new(Shared {
            writer: Mutex::new(stream),
            mirror: Mutex::new(Mirror::default()),
            changed: Condvar::new(),
        });
        {
            // The thread holds only a weak handle so that dropping the last
            // client or pin closes the connection.
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("virtual-gpio-client".into())
                .spawn(move || {
                    for line in BufReader::new(reader).lines() {
                        let Ok(line) = line else { break };
                        let Some(shared) = weak.upgrade() else { break };
                        apply_line(&shared, &line);
                    }
                    if let Some(shared) = weak.upgrade() {
                        shared.mirror().closed = true;
                        shared.changed.notify_all();
                    }
                })?;
        }
        let client = VirtualBoardClient { shared };
        client.shared.send(&ClientMessage::Hello {
            role: Role::Controller,
        })?;
        for pin in 0..=MAX_BCM {
            client.shared.send(&ClientMessage::Read { pin })?;
        }
        client.wait_until(SYNC_TIMEOUT, |m| m.levels.iter().all(Option::is_some))?;
        Ok(client)
    }

    /// Waits until `cond` holds for the mirror, the board hangs up, or `timeout`.
    fn wait_until(
        &self,
        timeout: Duration,
        cond: impl Fn(&Mirror) -> bool,
    ) -> Result<(), GpioError> {
        let deadline = Instant::now() + timeout;
        let mut m = self.shared.mirror();
        loop {
            if cond(&m) {
                return Ok(());
            }
            if m.closed {
                return Err(GpioError::Board(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the board closed the connection",
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(GpioError::Timeout(timeout));
            }
            m = self
                .shared
                .changed
                .wait_timeout(m, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the mirror shows `pin` at `level` (e.g. an input a test drives).
    pub fn wait_for_level(&self, pin: u8, level: bool, timeout: Duration) -> Result<(), GpioError> {
        let pin = usize::from(check_pin(pin)?);
        self.wait_until(timeout, |m| m.levels[pin] == Some(level))
    }

    /// The last error line the board sent, if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared.mirror().last_error.clone()
    }

    /// A pin handle for BCM `pin`, usable as input or output.
    pub fn pin(&self, pin: u8) -> Result<VirtualPin, GpioError> {
        Ok(VirtualPin {
            pin: check_pin(pin)?,
            shared: Arc::clone(&self.shared),
        })
    }
}

fn apply_line(shared: &Shared, line: &str) {
    let mut m = shared.mirror();
    match serde_json::from_str::<BoardMessage>(line) {
        Ok(BoardMessage::Level { pin, level } | BoardMessage::Edge { pin, level, .. }) => {
            if let Some(slot) = m.levels.get_mut(usize::from(pin)) {
                *slot = Some(level != 0);
            }
        }
        Ok(BoardMessage::Error { message }) => {
            tracing::warn!(%message, "virtual GPIO board refused a line");
            m.last_error = Some(message);
        }
        Err(e) => tracing::warn!(error = %e, %line, "unreadable line from virtual GPIO board"),
    }
    drop(m);
    shared.changed.notify_all();
}

/// One pin of the virtual board. Outputs write through to the board; inputs
/// read the local mirror.
#[derive(Debug)]
pub struct VirtualPin {
    pin: u8,
    shared: Arc<Shared>,
}

impl VirtualPin {
    /// The BCM number.
    pub fn bcm(&self) -> u8 {
        self.pin
    }

    fn level(&self) -> bool {
        self.shared.mirror().levels[usize::from(self.pin)].unwrap_or(false)
    }

    fn write(&mut self, high: bool) -> Result<(), GpioError> {
        // Mirror first: our own writes come back as edges only to subscribers.
        self.shared.mirror().levels[usize::from(self.pin)] = Some(high);
        self.shared.send(&ClientMessage::Write {
            pin: self.pin,
            level: u8::from(high),
        })
    }
}

impl ErrorType for VirtualPin {
    type Error = GpioError;
}

impl OutputPin for VirtualPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.write(false)
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.write(true)
    }
}

impl StatefulOutputPin for VirtualPin {
    fn is_set_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.level())
    }

    fn is_set_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.level())
    }
}

impl InputPin for VirtualPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.level())
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.level())
    }
}
