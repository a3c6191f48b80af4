//! Policy deltas: the frequent, small changes (cards, people, bookings, threat
//! levels) that a controller applies between full snapshots.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::card::Card;
use crate::grant::Booking;
use crate::id::{CardUid, PersonId, ZoneId};
use crate::level::ThreatLevel;
use crate::person::Person;
use crate::snapshot::{Snapshot, SnapshotError};
use crate::time::Timestamp;

/// Changes from policy version `from` to `to`. Anything else (zones, doors,
/// grants, schedules, holidays) changing means a full snapshot instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotDelta {
    /// The version this delta applies to.
    pub from: u64,
    /// The version it produces.
    pub to: u64,
    /// When the central service built it.
    pub issued_at: Timestamp,
    /// Cards added or changed (e.g. reported lost).
    #[serde(default)]
    pub cards: Vec<Card>,
    /// Cards no longer in this controller's policy.
    #[serde(default)]
    pub removed_cards: Vec<CardUid>,
    /// People added or changed (kind, grants, enrollments).
    #[serde(default)]
    pub people: Vec<Person>,
    /// People no longer in this controller's policy (their cards go with them).
    #[serde(default)]
    pub removed_people: Vec<PersonId>,
    /// The full set of bookings, when they changed.
    #[serde(default)]
    pub bookings: Option<Vec<Booking>>,
    /// The site's threat level, when it changed.
    #[serde(default)]
    pub threat: Option<ThreatLevel>,
    /// Zones whose own threat level changed.
    #[serde(default)]
    pub zone_threats: Vec<(ZoneId, ThreatLevel)>,
}

/// Why a delta does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The delta starts from another version than the one held.
    #[error("delta from version {delta_from} does not apply to version {held}")]
    Version {
        /// The version held.
        held: u64,
        /// The delta's starting version.
        delta_from: u64,
    },
    /// A delta must move forward.
    #[error("delta goes from version {from} to {to}")]
    Backwards {
        /// Start.
        from: u64,
        /// End.
        to: u64,
    },
    /// The result is not a valid snapshot.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl Snapshot {
    /// The snapshot with a delta applied; the original is untouched, so a
    /// controller keeps deciding on it until the new one is ready.
    pub fn apply_delta(&self, delta: &SnapshotDelta) -> Result<Snapshot, DeltaError> {
        if delta.from != self.version() {
            return Err(DeltaError::Version {
                held: self.version(),
                delta_from: delta.from,
            });
        }
        if delta.to <= delta.from {
            return Err(DeltaError::Backwards {
                from: delta.from,
                to: delta.to,
            });
        }
        let mut data = self.data().clone();
        data.version = delta.to;
        data.issued_at = delta.issued_at;
        data.people.retain(|p| {
            !delta.removed_people.contains(&p.id) && !delta.people.iter().any(|n| n.id == p.id)
        });
        data.people.extend(delta.people.iter().cloned());
        data.cards.retain(|c| {
            !delta.removed_cards.contains(&c.uid)
                && !delta.removed_people.contains(&c.person)
                && !delta.cards.iter().any(|n| n.uid == c.uid)
        });
        data.cards.extend(delta.cards.iter().copied());
        if let Some(bookings) = &delta.bookings {
            data.bookings = bookings.clone();
        }
        data.bookings
            .retain(|b| !delta.removed_people.contains(&b.person));
        if let Some(threat) = delta.threat {
            data.threat = threat;
        }
        for &(zone, threat) in &delta.zone_threats {
            if let Some(z) = data.zones.iter_mut().find(|z| z.id == zone) {
                z.settings.threat = threat;
            }
        }
        Ok(Snapshot::new(data)?)
    }
}
