//! IC card readers: the `CardReader` seam, card identifiers, the PC/SC driver, the simulated reader and the virtual card.

use std::future::Future;
use std::time::SystemTime;

pub mod pcsc_reader;
pub mod sim_reader;
pub mod vicc;

pub use pcsc_reader::{PcscCardReader, PcscConfig};
pub use sim_reader::SimCardReader;
pub use vicc::{CardMisbehaviour, VirtualCard, VirtualCardConfig};

/// The PC/SC pseudo-APDU that asks a contactless reader for the card's
/// identifier (UID for ISO 14443, IDm for FeliCa).
pub const GET_DATA_UID: [u8; 5] = [0xFF, 0xCA, 0x00, 0x00, 0x00];

/// What kind of card this probably is, from its ATR and identifier length.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CardTypeGuess {
    /// MIFARE Classic (4-byte or 7-byte UID).
    MifareClassic,
    /// MIFARE Ultralight / NTAG (7-byte UID).
    MifareUltralight,
    /// Another ISO 14443 type A card (DESFire, etc.).
    Iso14443A,
    /// ISO 14443 type B.
    Iso14443B,
    /// FeliCa (8-byte IDm).
    Felica,
    /// Nothing recognisable.
    Unknown,
}

/// Guesses the card family from the ATR a contactless reader synthesises
/// (PC/SC part 3: `3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS NN NN …`) and the
/// identifier length.
pub fn guess_card_type(atr: &[u8], uid_len: usize) -> CardTypeGuess {
    const PCSC_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x06];
    let part3 = atr
        .windows(PCSC_RID.len())
        .position(|w| w == PCSC_RID)
        .and_then(|i| atr.get(i + 5..i + 8));
    if let Some(&[standard, name_hi, name_lo]) = part3 {
        let name = u16::from_be_bytes([name_hi, name_lo]);
        return match (standard, name) {
            (0x11, _) => CardTypeGuess::Felica,
            (_, 0x0001 | 0x0002 | 0x0026 | 0x0036 | 0x0037) => CardTypeGuess::MifareClassic,
            (_, 0x0003 | 0x003A) => CardTypeGuess::MifareUltralight,
            (0x01..=0x03, _) => CardTypeGuess::Iso14443A,
            (0x05..=0x07, _) => CardTypeGuess::Iso14443B,
            _ => by_length(uid_len),
        };
    }
    by_length(uid_len)
}

fn by_length(uid_len: usize) -> CardTypeGuess {
    match uid_len {
        8 => CardTypeGuess::Felica,
        4 | 7 | 10 => CardTypeGuess::Iso14443A,
        _ => CardTypeGuess::Unknown,
    }
}

/// Why a card's identifier could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardReadError {
    /// PC/SC refused (card removed mid-read, reader gone, …).
    #[error("PC/SC: {0}")]
    Pcsc(String),
    /// The answer was shorter than a status word.
    #[error("answer of {0} bytes is too short")]
    ShortAnswer(usize),
    /// The card or reader answered with an error status word.
    #[error("status word {0:02X} {1:02X}")]
    Status(u8, u8),
    /// The identifier has a length no supported card uses.
    #[error("identifier of {0} bytes is not a 4/7/10-byte UID or 8-byte IDm")]
    IdentifierLength(usize),
}

/// Extracts the identifier from the answer to [`GET_DATA_UID`].
pub fn parse_uid_response(answer: &[u8]) -> Result<Vec<u8>, CardReadError> {
    let Some((sw, data)) = answer
        .len()
        .checked_sub(2)
        .map(|n| (&answer[n..], &answer[..n]))
    else {
        return Err(CardReadError::ShortAnswer(answer.len()));
    };
    if sw != [0x90, 0x00] {
        return Err(CardReadError::Status(sw[0], sw[1]));
    }
    match data.len() {
        4 | 7 | 8 | 10 => Ok(data.to_vec()),
        n => Err(CardReadError::IdentifierLength(n)),
    }
}

/// One card presented to one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The PC/SC reader name.
    pub reader: String,
    /// The card identifier (UID or IDm).
    pub uid: Vec<u8>,
    /// What the card probably is.
    pub card_type: CardTypeGuess,
    /// When the identifier was read.
    pub at: SystemTime,
}

/// What a card reader reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A reader appeared (at start or when plugged in).
    ReaderAdded(String),
    /// A reader disappeared (unplugged).
    ReaderRemoved(String),
    /// A card was presented and read; exactly one per presentation.
    Tap(Tap),
    /// The card left the reader.
    CardRemoved(String),
    /// A card was presented but could not be read.
    ReadFailed {
        /// The reader.
        reader: String,
        /// What went wrong.
        error: CardReadError,
    },
    /// The PC/SC service is unreachable; the reader keeps retrying.
    ServiceUnavailable(String),
}

impl ReaderEvent {
    /// The event as one JSON object, as `tobira device readers` prints it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ReaderEvent::ReaderAdded(r) => json!({"event": "reader_added", "reader": r}),
            ReaderEvent::ReaderRemoved(r) => json!({"event": "reader_removed", "reader": r}),
            ReaderEvent::Tap(t) => json!({
                "event": "tap",
                "reader": t.reader,
                "uid": hex::encode_upper(&t.uid),
                "card_type": t.card_type,
                "at_ms": unix_ms(t.at),
            }),
            ReaderEvent::CardRemoved(r) => json!({"event": "card_removed", "reader": r}),
            ReaderEvent::ReadFailed { reader, error } => json!({
                "event": "read_failed",
                "reader": reader,
                "error": error.to_string(),
            }),
            ReaderEvent::ServiceUnavailable(e) => {
                json!({"event": "service_unavailable", "error": e})
            }
        }
    }
}

/// Milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A source of card events: one or several physical readers.
pub trait CardReader {
    /// The next event; `None` once the reader has shut down.
    fn next_event(&mut self) -> impl Future<Output = Option<ReaderEvent>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIFARE_1K_ATR: [u8; 20] = [
        0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x6A,
    ];

    #[test]
    fn uid_answers_parse() {
        assert_eq!(
            parse_uid_response(&[1, 2, 3, 4, 0x90, 0x00]).unwrap(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            parse_uid_response(&[0; 12]).map(|u| u.len()),
            Err(CardReadError::Status(0, 0))
        );
        let mut felica = vec![0x01, 0x2E, 0x3C, 0x4D, 0x5E, 0x6F, 0x70, 0x81];
        felica.extend([0x90, 0x00]);
        assert_eq!(parse_uid_response(&felica).unwrap().len(), 8);
        assert_eq!(
            parse_uid_response(&[0x90]),
            Err(CardReadError::ShortAnswer(1))
        );
        assert_eq!(parse_uid_response(&[]), Err(CardReadError::ShortAnswer(0)));
        assert_eq!(
            parse_uid_response(&[0x6A, 0x81]),
            Err(CardReadError::Status(0x6A, 0x81))
        );
        assert_eq!(
            parse_uid_response(&[0x90, 0x00]),
            Err(CardReadError::IdentifierLength(0))
        );
        assert_eq!(
            parse_uid_response(&[1, 2, 3, 4, 0x6A, 0x81]),
            Err(CardReadError::Status(0x6A, 0x81))
        );
        assert_eq!(
            parse_uid_response(&[1, 2, 3, 0x90, 0x00]),
            Err(CardReadError::IdentifierLength(3))
        );
    }

    #[test]
    fn card_types_are_guessed_from_the_atr() {
        assert_eq!(
            guess_card_type(&MIFARE_1K_ATR, 4),
            CardTypeGuess::MifareClassic
        );
        let felica = vicc::atr_for_uid_len(8);
        assert_eq!(guess_card_type(&felica, 8), CardTypeGuess::Felica);
        let ul = vicc::atr_for_uid_len(7);
        assert_eq!(guess_card_type(&ul, 7), CardTypeGuess::MifareUltralight);
        assert_eq!(
            guess_card_type(&[0x3B, 0x80, 0x80, 0x01, 0x01], 7),
            CardTypeGuess::Iso14443A
        );
        assert_eq!(guess_card_type(&[], 8), CardTypeGuess::Felica);
        assert_eq!(guess_card_type(&[], 5), CardTypeGuess::Unknown);
    }

    #[test]
    fn tap_json_has_hex_uid() {
        let t = ReaderEvent::Tap(Tap {
            reader: "r".into(),
            uid: vec![0xDE, 0xAD, 0xBE, 0xEF],
            card_type: CardTypeGuess::MifareClassic,
            at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1500),
        });
        let j = t.to_json();
        assert_eq!(j["uid"], "DEADBEEF");
        assert_eq!(j["card_type"], "mifare_classic");
        assert_eq!(j["at_ms"], 1500);
    }
}
