//! The brain's short-term memory: who is inside, who waits for what, fire alarms, policy age.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::decision::{Awaiting, Decision, Reason, Subject};
use crate::door::Side;
use crate::id::{DoorId, PersonId, ZoneId};
use crate::time::Timestamp;

/// A decision waiting for its next factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The door.
    pub door: DoorId,
    /// The side.
    pub side: Side,
    /// Who waits.
    pub subject: Subject,
    /// What for.
    pub awaiting: Awaiting,
    /// Until when.
    pub deadline: Timestamp,
}

/// Someone admitted who may escort others through the same door for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EscortOffer {
    pub door: DoorId,
    pub escort: PersonId,
    pub until: Timestamp,
}

/// The waits and escort offers of a [`Memory`]: the part besides occupancy
/// that must outlive a controller restart (a visitor waiting for an escort,
/// the first person of a dual-custody pair, a finger prompt). Deadlines are
/// UTC instants, so a restored wait that ran out while the controller was
/// down ends in its denial at the next [`Memory::expire`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waits {
    waiting: Vec<Waiting>,
    escorts: Vec<EscortOffer>,
}

impl Waits {
    /// Whether nothing waits and nobody may escort.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.escorts.is_empty()
    }
}

/// State the brain keeps between decisions. It changes only through
/// [`Memory::apply`], [`Memory::expire`] and the explicit setters, so that
/// `decide` itself stays a pure function of (snapshot, memory, request, now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    inside: BTreeMap<ZoneId, BTreeSet<PersonId>>,
    waiting: Vec<Waiting>,
    escorts: Vec<EscortOffer>,
    fire: BTreeSet<ZoneId>,
    policy_confirmed_at: Option<Timestamp>,
}

impl Memory {
    /// An empty memory: nobody inside, nothing waiting, no fire.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the person is recorded inside the zone.
    pub fn is_inside(&self, zone: ZoneId, person: PersonId) -> bool {
        self.inside.get(&zone).is_some_and(|s| s.contains(&person))
    }

    /// Who is recorded inside a zone.
    pub fn occupants(&self, zone: ZoneId) -> impl Iterator<Item = PersonId> + '_ {
        self.inside.get(&zone).into_iter().flatten().copied()
    }

    /// Whether nobody is recorded inside the zone.
    pub fn is_empty(&self, zone: ZoneId) -> bool {
        self.inside.get(&zone).is_none_or(|s| s.is_empty())
    }

    /// Restores occupancy (e.g. from the controller's database after a restart).
    pub fn set_inside(&mut self, zone: ZoneId, person: PersonId, inside: bool) {
        if inside {
            self.inside.entry(zone).or_default().insert(person);
        } else if let Some(set) = self.inside.get_mut(&zone) {
            set.remove(&person);
        }
    }

    /// Every zone with someone recorded inside, and who.
    pub fn inside(&self) -> impl Iterator<Item = (ZoneId, PersonId)> + '_ {
        self.inside
            .iter()
            .flat_map(|(zone, people)| people.iter().map(move |p| (*zone, *p)))
    }

    /// A copy of the waits and escort offers, to keep on disk.
    pub fn waits(&self) -> Waits {
        Waits {
            waiting: self.waiting.clone(),
            escorts: self.escorts.clone(),
        }
    }

    /// Restores waits and escort offers kept on disk (after a restart).
    pub fn restore_waits(&mut self, waits: Waits) {
        self.waiting = waits.waiting;
        self.escorts = waits.escorts;
    }

    /// Decisions waiting for a next factor.
    pub fn waiting(&self) -> &[Waiting] {
        &self.waiting
    }

    pub(crate) fn escort_offer(&self, door: DoorId, now: Timestamp) -> Option<PersonId> {
        self.escorts
            .iter()
            .rev()
            .find(|o| o.door == door && now < o.until)
            .map(|o| o.escort)
    }

    /// Records a fire alarm input for a zone; returns whether it changed.
    pub fn set_fire_alarm(&mut self, zone: ZoneId, active: bool) -> bool {
        if active {
            self.fire.insert(zone)
        } else {
            self.fire.remove(&zone)
        }
    }

    /// Whether a fire alarm is active in the zone.
    pub fn fire_alarm(&self, zone: ZoneId) -> bool {
        self.fire.contains(&zone)
    }

    /// The controller confirmed with the central service that its policy is current.
    pub fn confirm_policy(&mut self, at: Timestamp) {
        self.policy_confirmed_at = Some(self.policy_confirmed_at.map_or(at, |t| t.max(at)));
    }

    /// When the policy was last confirmed current, if ever.
    pub fn policy_confirmed_at(&self) -> Option<Timestamp> {
        self.policy_confirmed_at
    }

    /// Acts on a decision the controller carried out.
    pub fn apply(&mut self, decision: &Decision) {
        let effects = &decision.effects;
        self.waiting.retain(|w| {
            !effects.ended.iter().any(|&(door, side, person)| {
                w.door == door
                    && w.side == side
                    && match person {
                        Some(p) => w.subject.person == p,
                        None => matches!(w.awaiting, Awaiting::Biometric { .. }),
                    }
            })
        });
        for p in &effects.passages {
            self.set_inside(p.from, p.person, false);
            self.set_inside(p.to, p.person, true);
        }
        if let (Some(pending), Some(subject)) = (decision.pending, decision.subject) {
            // One wait per person per door side: a new tap replaces the old one.
            self.waiting.retain(|w| {
                !(w.door == decision.door
                    && w.side == decision.side
                    && (w.subject.person == subject.person
                        || matches!(
                            (w.awaiting, pending.awaiting),
                            (Awaiting::Biometric { .. }, Awaiting::Biometric { .. })
                        )))
            });
            self.waiting.push(Waiting {
                door: decision.door,
                side: decision.side,
                subject,
                awaiting: pending.awaiting,
                deadline: pending.deadline,
            });
        }
        if let (Some(until), Some(subject)) = (effects.escort_until, decision.subject) {
            self.escorts.push(EscortOffer {
                door: decision.door,
                escort: subject.person,
                until,
            });
        }
    }

    /// Ends every wait past its deadline; each becomes a final denial for the
    /// event log (no finger, no escort, no second person).
    pub fn expire(&mut self, now: Timestamp) -> Vec<Decision> {
        self.escorts.retain(|o| now < o.until);
        let mut ended = Vec::new();
        self.waiting.retain(|w| {
            if now < w.deadline {
                return true;
            }
            let reason = match w.awaiting {
                Awaiting::Biometric { .. } => Reason::BiometricTimeout,
                Awaiting::Escort => Reason::EscortMissing,
                Awaiting::SecondPerson { .. } => Reason::DualCustodyTimeout,
            };
            let mut d = Decision::new(w.door, w.side, reason);
            d.subject = Some(w.subject);
            d.card = Some(w.subject.card);
            ended.push(d);
            false
        });
        ended
    }

    /// When the next wait or escort offer runs out, so the controller knows when to call `expire`.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let waits = self.waiting.iter().map(|w| w.deadline);
        let offers = self.escorts.iter().map(|o| o.until);
        waits.chain(offers).min()
    }
}
