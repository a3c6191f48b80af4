//! The virtual contactless card: a vpcd client that answers GET DATA with a chosen identifier.
//!
//! `vpcd` (the `vsmartcard` reader driver inside `pcscd`) listens on a TCP
//! port per reader slot; a card "is on the reader" while a client is
//! connected. Every message either way is a 2-byte big-endian length and
//! that many bytes. A 1-byte message from vpcd is a control code (power
//! off/on, reset, get ATR); anything longer is a command APDU to answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::GET_DATA_UID;

/// vpcd's default port (the first reader slot).
pub const DEFAULT_VPCD_PORT: u16 = 35963;
const CTRL_POWER_OFF: u8 = 0x00;
const CTRL_POWER_ON: u8 = 0x01;
const CTRL_RESET: u8 = 0x02;
const CTRL_GET_ATR: u8 = 0x04;

/// Ways the virtual card can answer badly, to exercise the driver's error paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardMisbehaviour {
    /// Answer GET DATA with the UID but an error status word (`6A 82`).
    WrongStatus,
    /// Answer GET DATA with a single byte.
    ShortAnswer,
}

/// What the virtual card is and where it taps.
#[derive(Debug, Clone)]
pub struct VirtualCardConfig {
    /// The identifier returned by GET DATA.
    pub uid: Vec<u8>,
    /// vpcd host.
    pub host: String,
    /// vpcd port of the reader slot to tap.
    pub port: u16,
    /// How long the card stays on the reader after connecting.
    pub hold: Duration,
    /// How long to keep retrying while vpcd is not yet listening.
    pub connect_timeout: Duration,
    /// Answer badly instead of with the UID.
    pub misbehaviour: Option<CardMisbehaviour>,
}

impl VirtualCardConfig {
    /// A well-behaved card with `uid` for the default local vpcd.
    pub fn new(uid: Vec<u8>) -> Self {
        VirtualCardConfig {
            uid,
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_VPCD_PORT,
            // pcscd polls vpcd for presence about every 400 ms; a shorter
            // tap can come and go unseen.
            hold: Duration::from_millis(1000),
            connect_timeout: Duration::from_secs(10),
            misbehaviour: None,
        }
    }
}

/// Errors of the virtual card.
#[derive(Debug, thiserror::Error)]
pub enum ViccError {
    /// vpcd could not be reached.
    #[error("cannot reach vpcd at {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// Last connection error.
        source: std::io::Error,
    },
    /// The connection failed mid-tap.
    #[error("vpcd connection: {0}")]
    Io(#[from] std::io::Error),
}

/// What happened during one tap, for tests and the CLI to check.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TapReport {
    /// GET DATA (UID) commands answered.
    pub uid_reads: u32,
    /// Command APDUs answered in total.
    pub apdus: u32,
    /// ATR requests answered.
    pub atr_requests: u32,
}

/// The ATR a contactless reader would synthesise (PC/SC part 3) for a
/// card with a UID of this length: MIFARE Classic 1K for 4 bytes,
/// Ultralight for 7, FeliCa for 8, a generic ISO 14443 A card otherwise.
pub fn atr_for_uid_len(len: usize) -> Vec<u8> {
    let (standard, name): (u8, [u8; 2]) = match len {
        4 => (0x03, [0x00, 0x01]),
        7 => (0x03, [0x00, 0x03]),
        8 => (0x11, [0x00, 0x3B]),
        _ => (0x03, [0x00, 0x00]),
    };
    let mut atr = vec![
        0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, standard, name[0],
        name[1], 0x00, 0x00, 0x00, 0x00,
    ];
    // TCK: XOR of every byte after TS.
    let tck = atr[1..].iter().fold(0u8, |x, b| x ^ b);
    atr.push(tck);
    atr
}

/// A virtual card, one tap long.
#[derive(Debug)]
pub struct VirtualCard {
    config: VirtualCardConfig,
    atr: Vec<u8>,
}

impl VirtualCard {
    /// A card from its configuration.
    pub fn new(config: VirtualCardConfig) -> Self {
        let atr = atr_for_uid_len(config.uid.len());
        VirtualCard { config, atr }
    }

    /// The answer to one command APDU.
    pub fn answer(&self, apdu: &[u8]) -> Vec<u8> {
        if apdu == GET_DATA_UID {
            return match self.config.misbehaviour {
                None => [self.config.uid.as_slice(), &[0x90, 0x00]].concat(),
                Some(CardMisbehaviour::WrongStatus) => {
                    [self.config.uid.as_slice(), &[0x6A, 0x82]].concat()
                }
                Some(CardMisbehaviour::ShortAnswer) => vec![0x90],
            };
        }
        match apdu.first() {
            // Class FF is the reader's pseudo-APDU space: wrong P1/P2 here.
            Some(0xFF) => vec![0x6A, 0x81],
            _ => vec![0x6D, 0x00],
        }
    }

    /// Connects to vpcd (card placed), answers until the hold time is over,
    /// then disconnects (card removed).
    pub fn tap(&self) -> Result<TapReport, ViccError> {
        let mut stream = self.connect()?;
        let placed = Instant::now();
        let leave_at = placed + self.config.hold;
        let mut report = TapReport::default();
        loop {
            let left = leave_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stream.set_read_timeout(Some(left))?;
            let mut len = [0u8; 2];
            match stream.read_exact(&mut len) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            // A message has started: give its body a fixed short time.
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut msg)?;
            let reply = match msg.as_slice() {
                [CTRL_GET_ATR] => {
                    report.atr_requests += 1;
                    Some(self.atr.clone())
                }
                [CTRL_POWER_OFF | CTRL_POWER_ON | CTRL_RESET] | [_] | [] => None,
                apdu => {
                    report.apdus += 1;
                    if apdu == GET_DATA_UID {
                        report.uid_reads += 1;
                    }
                    Some(self.answer(apdu))
                }
            };
            if let Some(reply) = reply {
                send(&mut stream, &reply)?;
            }
            // Linux clears quick-ack mode after a while; keep it on so vpcd's
            // small requests are acknowledged at once, not after 40 ms.
            let _ = rustix::net::sockopt::set_tcp_quickack(&stream, true);
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        Ok(report)
    }

    fn connect(&self) -> Result<TcpStream, ViccError> {
        let addr = format!("{}:{}", self.config.host, self.config.port);
        let deadline = Instant::now() + self.config.connect_timeout;
        loop {
            match TcpStream::connect(&addr) {
                Ok(stream) => {
                    // Small request/response messages: no Nagle, no delayed ACK.
                    stream.set_nodelay(true)?;
                    let _ = rustix::net::sockopt::set_tcp_quickack(&stream, true);
                    return Ok(stream);
                }
                Err(source) if Instant::now() >= deadline => {
                    return Err(ViccError::Connect { addr, source })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

fn send(stream: &mut TcpStream, data: &[u8]) -> Result<(), ViccError> {
    let len = u16::try_from(data.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "reply longer than 65535 bytes",
        )
    })?;
    let mut msg = Vec::with_capacity(2 + data.len());
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(data);
    stream.write_all(&msg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mifare_atr_matches_the_reference() {
        assert_eq!(
            atr_for_uid_len(4),
            [
                0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00,
                0x01, 0x00, 0x00, 0x00, 0x00, 0x6A
            ]
        );
    }

    #[test]
    fn answers_get_data_and_refuses_the_rest() {
        let card = VirtualCard::new(VirtualCardConfig::new(vec![1, 2, 3, 4]));
        assert_eq!(card.answer(&GET_DATA_UID), [1, 2, 3, 4, 0x90, 0x00]);
        assert_eq!(card.answer(&[0xFF, 0xCA, 0x01, 0x00, 0x00]), [0x6A, 0x81]);
        assert_eq!(card.answer(&[0x00, 0xA4, 0x04, 0x00]), [0x6D, 0x00]);
        let mut bad = VirtualCardConfig::new(vec![1, 2, 3, 4]);
        bad.misbehaviour = Some(CardMisbehaviour::ShortAnswer);
        assert_eq!(VirtualCard::new(bad).answer(&GET_DATA_UID), [0x90]);
    }
}
