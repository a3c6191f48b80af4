//! Security levels 0–4 and threat levels.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A zone's security level, from the municipal ICT plan's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum SecurityLevel {
    /// Grounds: no lock, never locked.
    L0,
    /// Reception and waiting areas: open in opening hours, a card after hours.
    L1,
    /// Meeting and consultation rooms: card; visitors and citizens escorted or booked.
    L2,
    /// Staff offices: card; staff and contractors; visitors escorted.
    L3,
    /// Machine room: card and biometric, entry and exit recorded.
    L4,
}

impl SecurityLevel {
    /// All levels, lowest first.
    pub const ALL: [SecurityLevel; 5] = [Self::L0, Self::L1, Self::L2, Self::L3, Self::L4];

    /// The level as the number people use for it.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The level `steps` higher, stopping at 4.
    pub fn raised(self, steps: u8) -> Self {
        let n = self.number().saturating_add(steps).min(4);
        Self::ALL[usize::from(n)]
    }
}

/// A number that is not a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("security levels are 0 to 4, not {0}")]
pub struct LevelOutOfRange(pub u8);

impl TryFrom<u8> for SecurityLevel {
    type Error = LevelOutOfRange;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Self::ALL
            .get(usize::from(n))
            .copied()
            .ok_or(LevelOutOfRange(n))
    }
}

impl From<SecurityLevel> for u8 {
    fn from(level: SecurityLevel) -> u8 {
        level.number()
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.number())
    }
}

/// The site's (or a zone's) threat level.
///
/// `Elevated` and `High` make every locked zone decide as if its level were one
/// or two higher (never above 4; grounds stay unlocked); `Lockdown` locks every
/// door except fire egress.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ThreatLevel {
    /// Rules as configured.
    #[default]
    Normal,
    /// Zones decide one level higher.
    Elevated,
    /// Zones decide two levels higher.
    High,
    /// Nothing opens but fire egress.
    Lockdown,
}

impl ThreatLevel {
    /// How many levels this threat level lifts a zone by.
    pub fn raise(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Elevated => 1,
            Self::High | Self::Lockdown => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_convert_from_numbers_and_cap_when_raised() {
        assert_eq!(SecurityLevel::try_from(3), Ok(SecurityLevel::L3));
        assert_eq!(SecurityLevel::try_from(5), Err(LevelOutOfRange(5)));
        assert_eq!(SecurityLevel::L3.raised(2), SecurityLevel::L4);
        assert_eq!(SecurityLevel::L1.raised(1), SecurityLevel::L2);
        assert_eq!(serde_json::to_string(&SecurityLevel::L2).unwrap(), "2");
        assert!(serde_json::from_str::<SecurityLevel>("7").is_err());
    }
}
