//! The policy snapshot a controller caches: validated once, then looked up in O(log n).

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::card::Card;
use crate::door::Door;
use crate::grant::{Booking, Grant};
use crate::id::{CardUid, DoorId, GrantId, PersonId, ScheduleId, ZoneId};
use crate::level::{SecurityLevel, ThreatLevel};
use crate::person::{KindRules, Person};
use crate::schedule::{HolidayCalendar, ScheduleError, WeeklySchedule};
use crate::time::Timestamp;
use crate::zone::Zone;

/// The snapshot's contents as they travel (JSON from the central service, a
/// policy file, the controller's cache). `Snapshot::new` checks and indexes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotData {
    /// Monotonic policy version from the central service.
    pub version: u64,
    /// When the central service built it.
    pub issued_at: Timestamp,
    /// The site's threat level.
    #[serde(default)]
    pub threat: ThreatLevel,
    /// The site's IANA time zone (`Asia/Tokyo`): the local time schedules,
    /// opening hours and holidays are read in. The central service always
    /// sets it; a hand-written policy file may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<alloc::string::String>,
    /// Zones.
    pub zones: Vec<Zone>,
    /// Doors.
    pub doors: Vec<Door>,
    /// People.
    pub people: Vec<Person>,
    /// Cards.
    pub cards: Vec<Card>,
    /// Grants.
    pub grants: Vec<Grant>,
    /// Schedules.
    #[serde(default)]
    pub schedules: Vec<WeeklySchedule>,
    /// Holidays.
    #[serde(default)]
    pub holidays: HolidayCalendar,
    /// Room bookings.
    #[serde(default)]
    pub bookings: Vec<Booking>,
}

/// A snapshot that cannot be used. The controller keeps its previous one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Two items share an id.
    #[error("duplicate {what} {id}")]
    Duplicate {
        /// Item kind.
        what: &'static str,
        /// The id, as text.
        id: alloc::string::String,
    },
    /// An item names an id that is not in the snapshot.
    #[error("{from} refers to unknown {what} {id}")]
    Dangling {
        /// Who refers.
        from: alloc::string::String,
        /// Item kind referred to.
        what: &'static str,
        /// The missing id.
        id: alloc::string::String,
    },
    /// A schedule window is impossible.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A booking ends before it starts.
    #[error("booking for person {0} ends before it starts")]
    Booking(PersonId),
}

/// A validated, indexed policy snapshot. Immutable; a new version replaces it whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SnapshotData", into = "SnapshotData")]
pub struct Snapshot {
    data: SnapshotData,
}

fn dangling(
    from: impl core::fmt::Display,
    what: &'static str,
    id: impl core::fmt::Display,
) -> SnapshotError {
    use alloc::string::ToString;
    SnapshotError::Dangling {
        from: from.to_string(),
        what,
        id: id.to_string(),
    }
}

/// Sorts by key and refuses duplicates, so lookups can binary-search.
fn sort_unique<T, K: Ord + Copy + core::fmt::Display>(
    items: &mut [T],
    what: &'static str,
    key: impl Fn(&T) -> K,
) -> Result<(), SnapshotError> {
    items.sort_unstable_by_key(|t| key(t));
    for pair in items.windows(2) {
        if key(&pair[0]) == key(&pair[1]) {
            use alloc::string::ToString;
            return Err(SnapshotError::Duplicate {
                what,
                id: key(&pair[0]).to_string(),
            });
        }
    }
    Ok(())
}

fn find<'a, T, K: Ord>(items: &'a [T], key: &K, get: impl Fn(&T) -> K) -> Option<&'a T> {
    items
        .binary_search_by(|t| get(t).cmp(key))
        .ok()
        .and_then(|i| items.get(i))
}

impl Snapshot {
    /// Checks references and builds the lookup order.
    pub fn new(mut data: SnapshotData) -> Result<Self, SnapshotError> {
        sort_unique(&mut data.zones, "zone", |z| z.id)?;
        sort_unique(&mut data.doors, "door", |d| d.id)?;
        sort_unique(&mut data.people, "person", |p| p.id)?;
        sort_unique(&mut data.cards, "card", |c| c.uid)?;
        sort_unique(&mut data.grants, "grant", |g| g.id)?;
        sort_unique(&mut data.schedules, "schedule", |s| s.id)?;
        data.bookings.sort_unstable_by_key(|b| (b.person, b.start));
        for g in &mut data.grants {
            g.zones.sort_unstable();
            g.zones.dedup();
        }
        let snapshot = Self { data };
        snapshot.check_references()?;
        Ok(snapshot)
    }

    fn check_references(&self) -> Result<(), SnapshotError> {
        let d = &self.data;
        for s in &d.schedules {
            s.validate()?;
        }
        for z in &d.zones {
            if let Some(s) = z.opening_schedule {
                self.schedule(s)
                    .ok_or_else(|| dangling(format_args!("zone {}", z.id), "schedule", s))?;
            }
        }
        for door in &d.doors {
            // The street outside the site is no zone of the snapshot; the
            // zone a door protects must always be one.
            let outside = Some(door.outside).filter(|z| !z.is_public());
            for zone in outside.into_iter().chain([door.inside]) {
                self.zone(zone)
                    .ok_or_else(|| dangling(format_args!("door {}", door.id), "zone", zone))?;
            }
        }
        for g in &d.grants {
            for &zone in &g.zones {
                self.zone(zone)
                    .ok_or_else(|| dangling(format_args!("grant {}", g.id), "zone", zone))?;
            }
            if let Some(s) = g.schedule {
                self.schedule(s)
                    .ok_or_else(|| dangling(format_args!("grant {}", g.id), "schedule", s))?;
            }
        }
        for p in &d.people {
            for &g in &p.grants {
                self.grant(g)
                    .ok_or_else(|| dangling(format_args!("person {}", p.id), "grant", g))?;
            }
        }
        for c in &d.cards {
            self.person(c.person)
                .ok_or_else(|| dangling(format_args!("card {}", c.uid), "person", c.person))?;
        }
        for b in &d.bookings {
            if b.end <= b.start {
                return Err(SnapshotError::Booking(b.person));
            }
            self.person(b.person)
                .ok_or_else(|| dangling("a booking", "person", b.person))?;
            self.zone(b.room)
                .ok_or_else(|| dangling(format_args!("booking of {}", b.person), "zone", b.room))?;
            for &door in &b.path {
                self.door(door).ok_or_else(|| {
                    dangling(format_args!("booking of {}", b.person), "door", door)
                })?;
            }
        }
        Ok(())
    }

    /// The site's time zone, when the snapshot names one.
    pub fn time_zone(&self) -> Option<&str> {
        self.data.time_zone.as_deref()
    }

    /// The snapshot's contents.
    pub fn data(&self) -> &SnapshotData {
        &self.data
    }

    /// Policy version.
    pub fn version(&self) -> u64 {
        self.data.version
    }

    /// When the central service built it.
    pub fn issued_at(&self) -> Timestamp {
        self.data.issued_at
    }

    /// A card by UID.
    pub fn card(&self, uid: &CardUid) -> Option<&Card> {
        find(&self.data.cards, uid, |c| c.uid)
    }

    /// A person by id.
    pub fn person(&self, id: PersonId) -> Option<&Person> {
        find(&self.data.people, &id, |p| p.id)
    }

    /// A zone by id.
    pub fn zone(&self, id: ZoneId) -> Option<&Zone> {
        find(&self.data.zones, &id, |z| z.id)
    }

    /// A door by id.
    pub fn door(&self, id: DoorId) -> Option<&Door> {
        find(&self.data.doors, &id, |d| d.id)
    }

    /// A grant by id.
    pub fn grant(&self, id: GrantId) -> Option<&Grant> {
        find(&self.data.grants, &id, |g| g.id)
    }

    /// A schedule by id.
    pub fn schedule(&self, id: ScheduleId) -> Option<&WeeklySchedule> {
        find(&self.data.schedules, &id, |s| s.id)
    }

    /// The site's holidays.
    pub fn holidays(&self) -> &HolidayCalendar {
        &self.data.holidays
    }

    /// A person's bookings.
    pub fn bookings_of(&self, person: PersonId) -> &[Booking] {
        let b = &self.data.bookings;
        let start = b.partition_point(|x| x.person < person);
        let end = b.partition_point(|x| x.person <= person);
        b.get(start..end).unwrap_or(&[])
    }

    /// The threat level in force for a zone: the higher of the site's and the zone's.
    pub fn threat_for(&self, zone: &Zone) -> ThreatLevel {
        self.data.threat.max(zone.settings.threat)
    }

    /// The level a zone decides at now: its own, raised by the threat level.
    /// Grounds (level 0) have no lock to raise.
    pub fn effective_level(&self, zone: &Zone) -> SecurityLevel {
        if zone.level == SecurityLevel::L0 {
            return SecurityLevel::L0;
        }
        zone.level.raised(self.threat_for(zone).raise())
    }

    /// The zone's rule for each kind at `level`: as configured, or, when the
    /// threat level raised the zone, the stricter of that and the raised level's defaults.
    pub fn kind_rules(&self, zone: &Zone, level: SecurityLevel) -> KindRules {
        let own = zone.settings.kinds;
        if level == zone.level {
            return own;
        }
        let raised = KindRules::for_level(level);
        KindRules {
            staff: own.staff.stricter(raised.staff),
            contractor: own.contractor.stricter(raised.contractor),
            visitor: own.visitor.stricter(raised.visitor),
            citizen: own.citizen.stricter(raised.citizen),
        }
    }
}

impl TryFrom<SnapshotData> for Snapshot {
    type Error = SnapshotError;
    fn try_from(data: SnapshotData) -> Result<Self, Self::Error> {
        Self::new(data)
    }
}

impl From<Snapshot> for SnapshotData {
    fn from(snapshot: Snapshot) -> Self {
        snapshot.data
    }
}
