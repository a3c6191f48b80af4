//! Zones, their security level and the settings an admin can change per zone.

use serde::{Deserialize, Serialize};

use crate::id::{ScheduleId, ZoneId};
use crate::level::{SecurityLevel, ThreatLevel};
use crate::person::KindRules;

/// What happens when someone already inside presents a card to enter again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntiPassback {
    /// Not tracked.
    Off,
    /// Allowed, but the event carries a warning (detects shared cards).
    Soft,
    /// Denied.
    Hard,
}

/// Per-zone settings; `ZoneSettings::for_level` gives the requirements' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSettings {
    /// Anti-passback mode.
    pub anti_passback: AntiPassback,
    /// First entry into an empty zone needs two authorised people.
    pub dual_custody: bool,
    /// How long an escort and the escorted may be apart, either order.
    pub escort_window_ms: u32,
    /// How long dual custody waits for the second person.
    pub dual_custody_window_ms: u32,
    /// How long to wait for a finger after the card.
    pub biometric_timeout_ms: u32,
    /// Deny (and alarm) when the controller's policy is older than this.
    pub max_offline_age_ms: Option<u64>,
    /// Who is admitted alone, escorted, or not at all.
    pub kinds: KindRules,
    /// This zone's own threat level; the higher of it and the site's applies.
    pub threat: ThreatLevel,
}

impl ZoneSettings {
    /// The defaults from the requirements for a zone of this level.
    pub fn for_level(level: SecurityLevel) -> Self {
        Self {
            anti_passback: match level {
                SecurityLevel::L3 => AntiPassback::Soft,
                SecurityLevel::L4 => AntiPassback::Hard,
                _ => AntiPassback::Off,
            },
            dual_custody: false,
            escort_window_ms: 10_000,
            dual_custody_window_ms: 10_000,
            biometric_timeout_ms: 10_000,
            max_offline_age_ms: (level == SecurityLevel::L4).then_some(24 * 60 * 60 * 1000),
            kinds: KindRules::for_level(level),
            threat: ThreatLevel::Normal,
        }
    }
}

/// An area with one security level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// The zone's id.
    pub id: ZoneId,
    /// Its level.
    pub level: SecurityLevel,
    /// When a level-1 zone is open to the public without a card.
    #[serde(default)]
    pub opening_schedule: Option<ScheduleId>,
    /// Its settings.
    pub settings: ZoneSettings,
}
