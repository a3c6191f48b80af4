//! Identifiers: people, zones, doors, grants, schedules, modules, controllers and card UIDs.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

numeric_id!(
    /// A person known to the site (staff, contractor, visitor or citizen).
    PersonId(u32)
);
numeric_id!(
    /// A zone: an area with one security level.
    ZoneId(u32)
);
numeric_id!(
    /// A door or flapper gate between two zones.
    DoorId(u32)
);
numeric_id!(
    /// A grant: zones × schedule × validity window.
    GrantId(u32)
);
numeric_id!(
    /// A weekly schedule.
    ScheduleId(u32)
);
numeric_id!(
    /// A biometric module (one per reader side that has one).
    ModuleId(u32)
);
numeric_id!(
    /// A door controller board.
    ControllerId(u32)
);
numeric_id!(
    /// A template slot in a biometric module's flash.
    TemplateSlot(u16)
);

impl ZoneId {
    /// Outside the site: the street a door at the edge of the site opens
    /// onto. It is no zone of the snapshot — never locked, never tracked,
    /// no fire input — so such a door needs no made-up "outside" zone.
    pub const PUBLIC: ZoneId = ZoneId(0);

    /// Whether this is [`ZoneId::PUBLIC`].
    pub fn is_public(self) -> bool {
        self == Self::PUBLIC
    }
}

/// The longest identifier a card reader hands us: 10-byte ISO 14443 triple-size UID.
pub const MAX_UID_LEN: usize = 10;

/// A card's identifier as read by GET DATA: a MIFARE/ISO 14443 UID (4, 7 or 10
/// bytes) or a FeliCa IDm (8 bytes).
///
/// Kept inline (no heap) so that 100k cards make one flat, sorted array.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardUid {
    len: u8,
    bytes: [u8; MAX_UID_LEN],
}

/// Why bytes or text are not a card UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    /// Identifiers are 4, 7, 8 or 10 bytes long.
    #[error("a card UID is 4, 7, 8 or 10 bytes, not {0}")]
    Length(usize),
    /// Text form is hexadecimal, two digits a byte.
    #[error("a card UID is written as hexadecimal digits")]
    NotHex,
}

impl CardUid {
    /// Takes a UID from reader bytes; only the lengths real cards use are accepted.
    pub fn new(bytes: &[u8]) -> Result<Self, UidError> {
        if !matches!(bytes.len(), 4 | 7 | 8 | 10) {
            return Err(UidError::Length(bytes.len()));
        }
        let mut inline = [0u8; MAX_UID_LEN];
        inline[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            len: bytes.len() as u8,
            bytes: inline,
        })
    }

    /// The identifier's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for CardUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CardUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardUid({self})")
    }
}

impl FromStr for CardUid {
    type Err = UidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // Accept "04:A2:..." as printed by many reader tools, as well as plain hex.
        let mut bytes = [0u8; MAX_UID_LEN];
        let mut len = 0usize;
        let mut high: Option<u8> = None;
        for c in s.chars().filter(|c| !matches!(c, ':' | ' ' | '-')) {
            let nibble = c.to_digit(16).ok_or(UidError::NotHex)? as u8;
            match high.take() {
                None => high = Some(nibble),
                Some(h) => {
                    if len == MAX_UID_LEN {
                        return Err(UidError::Length(len + 1));
                    }
                    bytes[len] = (h << 4) | nibble;
                    len += 1;
                }
            }
        }
        if high.is_some() {
            return Err(UidError::NotHex);
        }
        Self::new(&bytes[..len])
    }
}

impl Serialize for CardUid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(self.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for CardUid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CardUid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a card UID: 4, 7, 8 or 10 bytes, or their hexadecimal text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CardUid, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<CardUid, E> {
                CardUid::new(v).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn uid_lengths_are_those_of_real_cards() {
        for len in [4, 7, 8, 10] {
            assert!(CardUid::new(&[0xAB; 10][..len]).is_ok());
        }
        for len in [0, 1, 3, 5, 6, 9, 11] {
            assert_eq!(CardUid::new(&[0u8; 11][..len]), Err(UidError::Length(len)));
        }
    }

    #[test]
    fn uid_text_round_trips_and_accepts_separators() {
        let uid: CardUid = "04:a2:3b:1c".parse().unwrap();
        assert_eq!(uid.to_string(), "04A23B1C");
        assert_eq!("04A23B1C".parse::<CardUid>().unwrap(), uid);
        assert_eq!("04A23B1".parse::<CardUid>(), Err(UidError::NotHex));
        assert_eq!("zz112233".parse::<CardUid>(), Err(UidError::NotHex));
        assert_eq!(
            "0102030405060708090A0B".parse::<CardUid>(),
            Err(UidError::Length(11))
        );
    }

    #[test]
    fn uid_serialises_as_hex_in_json_and_bytes_in_postcard() {
        let uid = CardUid::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let json = serde_json::to_string(&uid).unwrap();
        assert_eq!(json, "\"0102030405060708\"");
        assert_eq!(serde_json::from_str::<CardUid>(&json).unwrap(), uid);
        let bin = postcard::to_allocvec(&uid).unwrap();
        assert_eq!(postcard::from_bytes::<CardUid>(&bin).unwrap(), uid);
        assert!(serde_json::from_str::<CardUid>("\"0102\"").is_err());
    }
}
