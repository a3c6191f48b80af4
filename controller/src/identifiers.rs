//! How card UIDs and person ids appear in the log: a short keyed tag by
//! default, in full only when the operator sets `[log] identifiers = "full"`.
//!
//! The tag is HMAC-SHA256 under a random key kept in the controller's data
//! directory (`log-tag.key`, mode 0600), first 8 bytes in hex: the same card
//! gives the same tag in one installation, so a technician can follow it
//! through the log, but a list of every possible UID cannot be turned into
//! tags without the key (a plain hash of a 4-byte UID could be reversed).

use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tobira_firmware::{CardUid, PersonId};

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "log-tag.key";

/// What the log shows of card UIDs and person ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierMode {
    /// A keyed tag (`card#1f0c…`, `person#9a4e…`).
    #[default]
    Tagged,
    /// The identifiers themselves, for an operator who asks.
    Full,
}

/// Turns identifiers into what the log may show.
#[derive(Clone)]
pub struct Identifiers {
    mode: IdentifierMode,
    key: [u8; 32],
}

impl std::fmt::Debug for Identifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Identifiers")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Identifiers {
    /// Reads the installation's key from `data_dir`, creating it (0600) on
    /// first start.
    pub fn load(data_dir: &Path, mode: IdentifierMode) -> std::io::Result<Identifiers> {
        let path = data_dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&text).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not 64 hex digits", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                options
                    .open(&path)?
                    .write_all(hex::encode(key).as_bytes())?;
                key
            }
            Err(e) => return Err(e),
        };
        Ok(Identifiers { mode, key })
    }

    /// What the log shows of a card UID.
    pub fn card(&self, uid: &CardUid) -> String {
        match self.mode {
            IdentifierMode::Full => uid.to_string(),
            IdentifierMode::Tagged => format!("card#{}", self.tag("card", &uid.to_string())),
        }
    }

    /// What the log shows of a person id.
    pub fn person(&self, person: PersonId) -> String {
        match self.mode {
            IdentifierMode::Full => person.0.to_string(),
            IdentifierMode::Tagged => {
                format!("person#{}", self.tag("person", &person.0.to_string()))
            }
        }
    }

    fn tag(&self, kind: &str, value: &str) -> String {
        // HMAC takes a key of any length: `new_from_slice` cannot fail here.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return "?".into();
        };
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..8])
    }
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(hex_text: &str) -> CardUid {
        CardUid::new(&hex::decode(hex_text).unwrap()).unwrap()
    }

    #[test]
    fn tags_are_stable_per_installation_and_hide_the_identifier() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ids = Identifiers::load(dir.path(), IdentifierMode::Tagged).unwrap();
        let card = uid("04a1b2c3");
        let tag = ids.card(&card);
        assert!(tag.starts_with("card#") && tag.len() == 5 + 16, "{tag}");
        assert!(!tag.to_lowercase().contains("04a1b2c3"), "{tag}");
        let person = ids.person(PersonId(4711));
        assert!(
            person.starts_with("person#") && !person.contains("4711"),
            "{person}"
        );
        // The same installation gives the same tag after a restart...
        let again = Identifiers::load(dir.path(), IdentifierMode::Tagged).unwrap();
        assert_eq!(again.card(&card), tag);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // ...another installation a different one.
        let other = tempfile::tempdir().unwrap();
        let elsewhere = Identifiers::load(other.path(), IdentifierMode::Tagged).unwrap();
        assert_ne!(elsewhere.card(&card), tag);
        // In full only when asked.
        let full = Identifiers::load(dir.path(), IdentifierMode::Full).unwrap();
        assert_eq!(full.card(&card), card.to_string());
        assert_eq!(full.person(PersonId(4711)), "4711");
        assert!(!format!("{ids:?}").contains(&hex::encode(ids.key)));
    }
}
