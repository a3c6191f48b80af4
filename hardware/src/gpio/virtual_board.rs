//! The virtual GPIO board server: pin levels behind a Unix socket, as specified in `docs/gpio-sim.md`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::protocol::{BoardMessage, ClientMessage, Role};
use super::{check_pin, GpioError, MAX_BCM};

/// Longest line accepted; longer lines are refused, not buffered.
const MAX_LINE: usize = 1024;
const PINS: usize = MAX_BCM as usize + 1;

/// Parses `22=1,23=1` into initial pin levels.
pub fn parse_init(spec: &str) -> Result<Vec<(u8, u8)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (pin, level) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected PIN=LEVEL"))?;
            let pin: u8 = pin
                .trim()
                .parse()
                .map_err(|_| format!("`{item}`: bad pin"))?;
            check_pin(pin).map_err(|e| e.to_string())?;
            match level.trim() {
                "0" => Ok((pin, 0)),
                "1" => Ok((pin, 1)),
                _ => Err(format!("`{item}`: level must be 0 or 1")),
            }
        })
        .collect()
}

#[derive(Debug)]
struct Client {
    id: u64,
    role: Option<Role>,
    subscribed: bool,
    tx: mpsc::UnboundedSender<String>,
}

#[derive(Debug)]
struct Board {
    levels: [u8; PINS],
    clients: Vec<Client>,
    next_id: u64,
    started: Instant,
}

impl Board {
    fn client(&mut self, id: u64) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.id == id)
    }

    /// Sets a level; on a change, tells every subscriber, and controllers
    /// about inputs driven by observers.
    fn set(&mut self, pin: u8, level: u8, by: Role) {
        let slot = &mut self.levels[usize::from(pin)];
        if *slot == level {
            return;
        }
        *slot = level;
        let t_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let line = BoardMessage::Edge {
            pin,
            level,
            t_us,
            by,
        }
        .to_line();
        for c in &self.clients {
            let wants = c.subscribed || (by == Role::Observer && c.role == Some(Role::Controller));
            if wants {
                // A send error means that client is going away; its task cleans up.
                let _ = c.tx.send(line.clone());
            }
        }
    }

    /// Handles one parsed line; returns the reply line, if any.
    fn handle(&mut self, id: u64, msg: ClientMessage) -> Option<BoardMessage> {
        let role = self.client(id).and_then(|c| c.role);
        let refuse = |message: &str| {
            Some(BoardMessage::Error {
                message: message.to_owned(),
            })
        };
        match (role, msg) {
            (None, ClientMessage::Hello { role }) => {
                if let Some(c) = self.client(id) {
                    c.role = Some(role);
                }
                None
            }
            (Some(_), ClientMessage::Hello { .. }) => refuse("hello was already sent"),
            (None, _) => refuse("the first line must be hello"),
            (Some(_), ClientMessage::Read { pin }) => match check_pin(pin) {
                Ok(pin) => Some(BoardMessage::Level {
                    pin,
                    level: self.levels[usize::from(pin)],
                }),
                Err(e) => refuse(&e.to_string()),
            },
            (Some(_), ClientMessage::Subscribe) => {
                if let Some(c) = self.client(id) {
                    c.subscribed = true;
                }
                None
            }
            (Some(Role::Controller), ClientMessage::Write { pin, level })
            | (Some(Role::Observer), ClientMessage::Drive { pin, level }) => {
                let by = role.unwrap_or(Role::Observer);
                if let Err(e) = check_pin(pin) {
                    return refuse(&e.to_string());
                }
                if level > 1 {
                    return refuse("level must be 0 or 1");
                }
                self.set(pin, level, by);
                None
            }
            (Some(Role::Observer), ClientMessage::Write { .. }) => {
                refuse("observers drive inputs; only the controller writes outputs")
            }
            (Some(Role::Controller), ClientMessage::Drive { .. }) => {
                refuse("the controller writes outputs; observers drive inputs")
            }
        }
    }
}

/// A running virtual board. Bind it, then `run` it on a tokio runtime.
#[derive(Debug)]
pub struct VirtualBoard {
    listener: UnixListener,
    path: PathBuf,
    board: Arc<Mutex<Board>>,
}

fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(|p| p.into_inner())
}

impl VirtualBoard {
    /// Binds the socket at `path` (replacing a stale one) with initial levels.
    pub fn bind(path: &Path, init: &[(u8, u8)]) -> Result<Self, GpioError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let listener = UnixListener::bind(path)?;
        let mut levels = [0u8; PINS];
        for &(pin, level) in init {
            check_pin(pin)?;
            levels[usize::from(pin)] = level.min(1);
        }
        Ok(VirtualBoard {
            listener,
            path: path.to_owned(),
            board: Arc::new(Mutex::new(Board {
                levels,
                clients: Vec::new(),
                next_id: 0,
                started: Instant::now(),
            })),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves clients until the task is dropped or accepting fails.
    pub async fn run(self) -> Result<(), GpioError> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let board = Arc::clone(&self.board);
            tokio::spawn(serve_client(stream, board));
        }
    }
}

impl Drop for VirtualBoard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_client(stream: UnixStream, board: Arc<Mutex<Board>>) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let id = {
        let mut b = lock(&board);
        b.next_id += 1;
        let id = b.next_id;
        b.clients.push(Client {
            id,
            role: None,
            subscribed: false,
            tx: tx.clone(),
        });
        id
    };
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds how much one line may buffer.
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(n) => n,
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            let _ = tx.send(
                BoardMessage::Error {
                    message: format!("line longer than {MAX_LINE} bytes"),
                }
                .to_line(),
            );
            // Throw away the rest of the long line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut rest)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<ClientMessage>(text) {
            Ok(msg) => lock(&board).handle(id, msg),
            Err(e) => Some(BoardMessage::Error {
                message: format!("malformed line: {e}"),
            }),
        };
        if let Some(reply) = reply {
            let _ = tx.send(reply.to_line());
        }
    }
    lock(&board).clients.retain(|c| c.id != id);
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_spec_parses() {
        assert_eq!(parse_init("22=1, 23=1").unwrap(), vec![(22, 1), (23, 1)]);
        assert_eq!(parse_init("").unwrap(), vec![]);
        for bad in ["22", "28=1", "x=1", "4=2"] {
            assert!(parse_init(bad).is_err(), "{bad}");
        }
    }
}
