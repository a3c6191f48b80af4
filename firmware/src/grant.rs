//! Grants (zones × schedule × validity) and room bookings.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::id::{DoorId, GrantId, PersonId, ScheduleId, ZoneId};
use crate::time::Timestamp;

/// Access to some zones, on a schedule, within a validity window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant's id.
    pub id: GrantId,
    /// Zones it opens (kept sorted by the snapshot).
    pub zones: Vec<ZoneId>,
    /// When it applies; `None` = at any time.
    #[serde(default)]
    pub schedule: Option<ScheduleId>,
    /// Not valid before.
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// Not valid from.
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
}

impl Grant {
    /// Whether the grant names the zone.
    pub fn covers(&self, zone: ZoneId) -> bool {
        self.zones.binary_search(&zone).is_ok()
    }

    /// Whether `now` is inside the validity window.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.valid_from.is_none_or(|from| now >= from)
            && self.valid_until.is_none_or(|until| now < until)
    }
}

/// A room booking: a temporary grant for one person to a room and the doors
/// on the way to it, for the booking's time window only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Who booked.
    pub person: PersonId,
    /// The booked room.
    pub room: ZoneId,
    /// Doors on the way to the room.
    pub path: Vec<DoorId>,
    /// Start of the window.
    pub start: Timestamp,
    /// End of the window (exclusive).
    pub end: Timestamp,
}

impl Booking {
    /// Whether the booking opens this door (into `inside`) at `now`.
    pub fn opens(&self, door: DoorId, inside: ZoneId, now: Timestamp) -> bool {
        self.start <= now && now < self.end && (inside == self.room || self.path.contains(&door))
    }
}
