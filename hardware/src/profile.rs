//! Board profiles: the pin maps of relay HATs and wiring layouts, loaded from `hardware/boards/*.toml`.
//!
//! A profile names each channel (`relay1`, `door_contact`…) with its BCM
//! pin and polarity, so a controller's config says "lock = relay1" and the
//! active-low detail of a particular HAT lives in one checked file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::gpio::{Polarity, Pull, MAX_BCM};

/// The profiles shipped with Tobira, compiled in so an installed binary
/// needs no data directory.
pub const BUILTIN: &[(&str, &str)] = &[
    ("generic", include_str!("../boards/generic.toml")),
    (
        "pimoroni-automation-hat",
        include_str!("../boards/pimoroni-automation-hat.toml"),
    ),
    (
        "waveshare-rpi-relay-board",
        include_str!("../boards/waveshare-rpi-relay-board.toml"),
    ),
];

/// What drives an output channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// A relay contact (COM/NO/NC).
    Relay,
    /// An open-collector / sinking transistor output.
    OpenCollector,
    /// An indicator LED.
    Led,
    /// A plain logic-level pin.
    Gpio,
}

/// One output channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputChannel {
    /// Channel name, unique in the profile.
    pub name: String,
    /// BCM pin.
    pub pin: u8,
    /// Electrical level that energises the channel.
    pub polarity: Polarity,
    /// What the pin drives.
    pub kind: OutputKind,
    /// Wiring note.
    #[serde(default)]
    pub note: String,
}

/// One input channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputChannel {
    /// Channel name, unique in the profile.
    pub name: String,
    /// BCM pin.
    pub pin: u8,
    /// Electrical level that means "asserted".
    pub polarity: Polarity,
    /// Internal pull resistor.
    #[serde(default)]
    pub pull: Pull,
    /// Debounce settle time in milliseconds.
    #[serde(default)]
    pub debounce_ms: u32,
    /// Wiring note.
    #[serde(default)]
    pub note: String,
}

/// A pin the board uses for something else (I2C, UART…).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservedPin {
    /// BCM pin.
    pub pin: u8,
    /// What it is used for.
    #[serde(rename = "use")]
    pub used_for: String,
}

/// A board's pin map.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Profile name (matches the file name).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Where the pin numbers come from.
    #[serde(default)]
    pub source: Option<String>,
    /// Output channels.
    #[serde(default)]
    pub outputs: Vec<OutputChannel>,
    /// Input channels.
    #[serde(default)]
    pub inputs: Vec<InputChannel>,
    /// Pins used otherwise.
    #[serde(default)]
    pub reserved: Vec<ReservedPin>,
}

/// Why a profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields (the message names the line).
    #[error("{origin}: {message}")]
    Parse {
        /// File or profile name.
        origin: String,
        /// Parser message, with line and column.
        message: String,
    },
    /// The pin map is inconsistent.
    #[error("{origin}: {message}")]
    Invalid {
        /// File or profile name.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// No built-in profile has that name.
    #[error("no built-in board profile `{0}` (known: generic, pimoroni-automation-hat, waveshare-rpi-relay-board)")]
    Unknown(String),
}

impl BoardProfile {
    /// Parses and validates a profile; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ProfileError> {
        let profile: BoardProfile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        profile
            .validate()
            .map_err(|message| ProfileError::Invalid {
                origin: origin.to_owned(),
                message,
            })?;
        Ok(profile)
    }

    /// Loads a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// A profile shipped with Tobira.
    pub fn builtin(name: &str) -> Result<Self, ProfileError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ProfileError::Unknown(name.to_owned()))?;
        Self::from_toml(text, name)
    }

    /// Checks pins are on the header, no pin is used twice and names are unique.
    pub fn validate(&self) -> Result<(), String> {
        let mut pins: BTreeMap<u8, String> = BTreeMap::new();
        let mut names: BTreeMap<&str, ()> = BTreeMap::new();
        let uses = self
            .outputs
            .iter()
            .map(|o| (o.pin, format!("output `{}`", o.name), Some(o.name.as_str())))
            .chain(
                self.inputs
                    .iter()
                    .map(|i| (i.pin, format!("input `{}`", i.name), Some(i.name.as_str()))),
            )
            .chain(
                self.reserved
                    .iter()
                    .map(|r| (r.pin, format!("reserved ({})", r.used_for), None)),
            );
        for (pin, what, name) in uses {
            if pin > MAX_BCM {
                return Err(format!(
                    "{what}: BCM {pin} is not a header GPIO (0-{MAX_BCM})"
                ));
            }
            if let Some(other) = pins.insert(pin, what.clone()) {
                return Err(format!("BCM {pin} is used twice: {other} and {what}"));
            }
            if let Some(name) = name {
                if names.insert(name, ()).is_some() {
                    return Err(format!("channel name `{name}` is used twice"));
                }
            }
        }
        Ok(())
    }

    /// The output channel called `name`.
    pub fn output(&self, name: &str) -> Option<&OutputChannel> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The input channel called `name`.
    pub fn input(&self, name: &str) -> Option<&InputChannel> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boards_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("boards")
    }

    #[test]
    fn every_board_file_parses_is_consistent_and_is_built_in() {
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(boards_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let profile = BoardProfile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            assert_eq!(profile.name, stem, "profile name matches its file");
            assert!(!profile.outputs.is_empty(), "{stem} has outputs");
            assert_eq!(
                BoardProfile::builtin(&stem).unwrap(),
                profile,
                "{stem} is in BUILTIN"
            );
            seen.push(stem);
        }
        seen.sort();
        let builtin: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        assert_eq!(seen, builtin);
        assert!(seen.len() >= 3);
    }

    #[test]
    fn published_pins_are_kept() {
        let w = BoardProfile::builtin("waveshare-rpi-relay-board").unwrap();
        let relays: Vec<(u8, Polarity)> = w
            .outputs
            .iter()
            .filter(|o| o.kind == OutputKind::Relay)
            .map(|o| (o.pin, o.polarity))
            .collect();
        assert_eq!(
            relays,
            [
                (26, Polarity::ActiveLow),
                (20, Polarity::ActiveLow),
                (21, Polarity::ActiveLow)
            ]
        );
        let a = BoardProfile::builtin("pimoroni-automation-hat").unwrap();
        assert_eq!(a.output("relay1").map(|o| o.pin), Some(13));
        assert_eq!(a.input("input3").map(|i| i.pin), Some(21));
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let twice = r#"
            name = "x"
            description = "x"
            [[outputs]]
            name = "a"
            pin = 17
            polarity = "active_low"
            kind = "relay"
            [[inputs]]
            name = "b"
            pin = 17
            polarity = "active_high"
        "#;
        let e = BoardProfile::from_toml(twice, "x").unwrap_err().to_string();
        assert!(e.contains("BCM 17 is used twice"), "{e}");

        let unknown = "name = \"x\"\ndescription = \"x\"\ncolour = \"red\"\n";
        let e = BoardProfile::from_toml(unknown, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("line 3"), "{e}");

        let off_header = "name = \"x\"\ndescription = \"x\"\n[[reserved]]\npin = 40\nuse = \"?\"\n";
        let e = BoardProfile::from_toml(off_header, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a header GPIO"), "{e}");

        let same_name = r#"
            name = "x"
            description = "x"
            [[outputs]]
            name = "a"
            pin = 17
            polarity = "active_low"
            kind = "relay"
            [[outputs]]
            name = "a"
            pin = 18
            polarity = "active_low"
            kind = "relay"
        "#;
        assert!(BoardProfile::from_toml(same_name, "x").is_err());
        assert!(matches!(
            BoardProfile::builtin("nope"),
            Err(ProfileError::Unknown(_))
        ));
    }
}
