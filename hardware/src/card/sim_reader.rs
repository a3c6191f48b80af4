//! The simulated card reader: taps arrive as JSON lines on a local Unix socket, so a door needs no pcscd.
//!
//! A door whose reader is configured as `sim:NAME` reads cards from a socket
//! at `<data_dir>/readers/NAME.sock` (mode 0600, in a 0700 directory). Each
//! line is one presentation of a card:
//!
//! ```text
//! {"uid":"04A1B2C3","card_type":"mifare_classic"}   -> {"ok":true,"reader":"sim:NAME","uid":"04A1B2C3","card_type":"mifare_classic"}
//! {"uid":"012E3C4D5E6F7081"}                        -> card_type guessed from the length (8 bytes: FeliCa IDm)
//! not json                                          -> {"ok":false,"error":"malformed line: …"}
//! ```
//!
//! A good line becomes the events PC/SC produces for a card put on a reader
//! and lifted off again: [`ReaderEvent::Tap`], then [`ReaderEvent::CardRemoved`].
//! A bad line gets an error reply and produces no event at all.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{guess_card_type, CardReader, CardTypeGuess, ReaderEvent, Tap};

/// The prefix that makes a configured reader name a simulated reader.
pub const SIM_PREFIX: &str = "sim:";

/// Longest line accepted; longer lines are refused, not buffered.
pub const MAX_LINE: usize = 512;

/// Longest simulated reader name (the socket path must stay under the
/// 108-byte limit of a Unix socket address).
pub const MAX_NAME: usize = 32;

/// Why a simulated reader could not be set up, or a line was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimReaderError {
    /// The name after `sim:` is not usable as a socket file name.
    #[error("simulated reader name {0:?}: use 1 to {MAX_NAME} letters, digits, '-' or '_'")]
    Name(String),
    /// The socket or its directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something other than a simulated reader's socket is in the way.
    #[error("{0}: exists and is not a socket; not replacing it")]
    NotASocket(PathBuf),
    /// A line that is not a card presentation.
    #[error("malformed line: {0}")]
    Line(String),
}

/// The name after `sim:`, if `reader` names a simulated reader.
pub fn sim_name(reader: &str) -> Option<&str> {
    reader.strip_prefix(SIM_PREFIX)
}

/// Checks a simulated reader's name (the part after `sim:`).
pub fn check_name(name: &str) -> Result<(), SimReaderError> {
    let fits = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fits {
        Ok(())
    } else {
        Err(SimReaderError::Name(name.to_owned()))
    }
}

/// Where the simulated reader `name` (without `sim:`) listens for a
/// controller whose data directory is `data_dir`.
pub fn socket_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("readers").join(format!("{name}.sock"))
}

/// Whether a configured reader `pattern` is the reader named `reader` in an
/// event. A simulated reader is matched by its whole name; a PC/SC pattern
/// by a unique part of a PC/SC reader's name, never a simulated one's.
pub fn reader_matches(pattern: &str, reader: &str) -> bool {
    match (sim_name(pattern), sim_name(reader)) {
        (Some(_), Some(_)) => pattern == reader,
        (None, None) => reader.contains(pattern),
        _ => false,
    }
}

/// One line sent to a simulated reader.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTapLine {
    /// The card identifier in hex: a 4, 7 or 10-byte UID or an 8-byte FeliCa IDm.
    pub uid: String,
    /// What kind of card it is; guessed from the identifier's length when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<CardTypeGuess>,
}

impl SimTapLine {
    /// Parses one line into the identifier and card type it presents.
    pub fn parse(text: &str) -> Result<(Vec<u8>, CardTypeGuess), SimReaderError> {
        let line: SimTapLine =
            serde_json::from_str(text).map_err(|e| SimReaderError::Line(e.to_string()))?;
        let uid = parse_uid(&line.uid).map_err(SimReaderError::Line)?;
        let card_type = line
            .card_type
            .unwrap_or_else(|| guess_card_type(&[], uid.len()));
        Ok((uid, card_type))
    }
}

/// Parses a card identifier in hex (spaces and colons allowed between bytes).
pub fn parse_uid(text: &str) -> Result<Vec<u8>, String> {
    let uid = hex::decode(text.replace([' ', ':'], ""))
        .map_err(|e| format!("uid {text:?} is not hex: {e}"))?;
    match uid.len() {
        4 | 7 | 8 | 10 => Ok(uid),
        n => Err(format!(
            "uid of {n} bytes is not a 4/7/10-byte UID or an 8-byte FeliCa IDm"
        )),
    }
}

/// A simulated reader listening on its socket. Drop it to stop listening and
/// remove the socket.
#[derive(Debug)]
pub struct SimCardReader {
    reader: String,
    path: PathBuf,
    announced: bool,
    events: mpsc::Receiver<ReaderEvent>,
    server: JoinHandle<()>,
}

impl SimCardReader {
    /// Listens for the simulated reader `reader` (`sim:NAME`) at `path`,
    /// replacing a stale socket left by an earlier run. Must be called
    /// inside a tokio runtime.
    pub fn bind(reader: &str, path: &Path) -> Result<Self, SimReaderError> {
        let name = sim_name(reader).unwrap_or(reader);
        check_name(name)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SimReaderError::Io { path, source }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            // Only the controller's user may tap cards: a tap can open a door.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(dir))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(io(path))?
            }
            Ok(_) => return Err(SimReaderError::NotASocket(path.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
        let listener = UnixListener::bind(path).map_err(io(path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
        let (tx, events) = mpsc::channel(64);
        let reader = format!("{SIM_PREFIX}{name}");
        let server = tokio::spawn(serve(listener, reader.clone(), tx));
        Ok(SimCardReader {
            reader,
            path: path.to_owned(),
            announced: false,
            events,
            server,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reader's name in its events (`sim:NAME`).
    pub fn name(&self) -> &str {
        &self.reader
    }
}

impl CardReader for SimCardReader {
    async fn next_event(&mut self) -> Option<ReaderEvent> {
        // The reader is "plugged in" as soon as it listens, as pcscd reports
        // the readers it has when first asked.
        if !self.announced {
            self.announced = true;
            return Some(ReaderEvent::ReaderAdded(self.reader.clone()));
        }
        self.events.recv().await
    }
}

impl Drop for SimCardReader {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(listener: UnixListener, reader: String, tx: mpsc::Sender<ReaderEvent>) {
    let mut clients = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    clients.spawn(serve_client(stream, reader.clone(), tx.clone()));
                }
                Err(e) => {
                    tracing::warn!(%reader, error = %e, "simulated reader cannot accept; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            // Reap finished clients so a long-running reader does not collect them.
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

fn reply(result: Result<serde_json::Value, String>) -> String {
    let value = match result {
        Ok(v) => v,
        Err(error) => serde_json::json!({ "ok": false, "error": error }),
    };
    format!("{value}\n")
}

async fn serve_client(stream: UnixStream, reader: String, tx: mpsc::Sender<ReaderEvent>) {
    let (read, mut write) = stream.into_split();
    let mut input = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds how much one line may buffer.
        let n = match (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let answer = if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            // Throw away the rest of the long line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut input)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut rest)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            Err(format!("line longer than {MAX_LINE} bytes"))
        } else {
            match std::str::from_utf8(&line).map(str::trim) {
                Err(_) => Err("malformed line: not UTF-8".to_owned()),
                Ok("") => continue,
                Ok(text) => present(text, &reader, &tx).await,
            }
        };
        if write.write_all(reply(answer).as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Turns one line into a tap and a removal on this reader.
async fn present(
    text: &str,
    reader: &str,
    tx: &mpsc::Sender<ReaderEvent>,
) -> Result<serde_json::Value, String> {
    let (uid, card_type) = SimTapLine::parse(text).map_err(|e| e.to_string())?;
    let tap = Tap {
        reader: reader.to_owned(),
        uid,
        card_type,
        at: SystemTime::now(),
    };
    let answer = serde_json::json!({
        "ok": true,
        "reader": reader,
        "uid": hex::encode_upper(&tap.uid),
        "card_type": card_type,
    });
    let stopped = || "the reader is shutting down".to_owned();
    tx.send(ReaderEvent::Tap(tap))
        .await
        .map_err(|_| stopped())?;
    tx.send(ReaderEvent::CardRemoved(reader.to_owned()))
        .await
        .map_err(|_| stopped())?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["front", "gate-2", "L4_exit"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a b",
            "a/b",
            ".hidden",
            &"x".repeat(MAX_NAME + 1),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns_match_their_own_backend_only() {
        assert!(reader_matches("sim:front", "sim:front"));
        assert!(!reader_matches("sim:front", "sim:front2"));
        assert!(!reader_matches("front", "sim:front"));
        assert!(!reader_matches("sim:front", "Virtual PCD sim:front"));
        assert!(reader_matches("PCD 00 00", "Virtual PCD 00 00"));
    }

    #[test]
    fn lines_parse_into_taps() {
        let (uid, kind) =
            SimTapLine::parse(r#"{"uid":"04A1B2C3","card_type":"mifare_classic"}"#).unwrap();
        assert_eq!(uid, vec![0x04, 0xA1, 0xB2, 0xC3]);
        assert_eq!(kind, CardTypeGuess::MifareClassic);
        let (uid, kind) = SimTapLine::parse(r#"{"uid":"01 2E 3C 4D 5E 6F 70 81"}"#).unwrap();
        assert_eq!(uid.len(), 8);
        assert_eq!(kind, CardTypeGuess::Felica);
        for bad in [
            "04A1B2C3",
            r#"{"uid":"04A1B2"}"#,
            r#"{"uid":"zz"}"#,
            r#"{"uid":"04A1B2C3","card_type":"gold"}"#,
            r#"{"uid":"04A1B2C3","open":true}"#,
            r#"{"card_type":"felica"}"#,
        ] {
            assert!(
                matches!(SimTapLine::parse(bad), Err(SimReaderError::Line(_))),
                "{bad}"
            );
        }
    }
}
