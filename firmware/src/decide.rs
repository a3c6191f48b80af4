//! `decide`: the level table of the requirements as one pure function.
//!
//! Order matters and deny wins: the card itself (known, active, valid), then
//! site-wide overrides (lockdown, fire release, stale policy), then the zone's
//! level rules (kinds, grants or bookings, anti-passback, escort, biometric,
//! dual custody). A decision that the threat level alone turned into a denial
//! says `ThreatLevel`, so an admin sees the real cause.

use crate::card::{Card, CardState};
use crate::decision::{
    Awaiting, BiometricResult, Companion, Decision, Passage, Pending, Reason, Request, Subject,
    Verdict, Warnings,
};
use crate::door::{Door, ReaderSide, Side};
use crate::id::{CardUid, DoorId, PersonId};
use crate::level::{SecurityLevel, ThreatLevel};
use crate::memory::Memory;
use crate::person::{KindRule, Person, PersonKind};
use crate::snapshot::Snapshot;
use crate::time::{Moment, Timestamp};
use crate::zone::{AntiPassback, Zone};

/// Decides one request. Pure: the same snapshot, memory, request and moment
/// always give the same decision; apply it with [`Memory::apply`].
pub fn decide(snapshot: &Snapshot, memory: &Memory, request: &Request, now: &Moment) -> Decision {
    let brain = Brain {
        snap: snapshot,
        mem: memory,
        now,
    };
    match *request {
        Request::Card { door, side, uid } => brain.card(door, side, uid, Stage::Card),
        Request::Biometric { door, side, result } => brain.biometric(door, side, result),
        Request::RequestToExit { door } => brain.request_to_exit(door),
    }
}

/// Why a door should stand unlocked without anyone presenting a card: no lock
/// (level 0), opening hours (level 1), or fire release. `None` = keep it locked.
pub fn free_access(
    snapshot: &Snapshot,
    memory: &Memory,
    door: DoorId,
    now: &Moment,
) -> Option<Reason> {
    let door = snapshot.door(door)?;
    let zone = snapshot.zone(door.inside)?;
    let brain = Brain {
        snap: snapshot,
        mem: memory,
        now,
    };
    if brain.fire_released(door) {
        return Some(Reason::FireRelease);
    }
    if snapshot.threat_for(zone) == ThreatLevel::Lockdown {
        return None;
    }
    match snapshot.effective_level(zone) {
        SecurityLevel::L0 => Some(Reason::NoLock),
        SecurityLevel::L1 if brain.open_hours(zone) => Some(Reason::OpenHours),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Only the card has been presented.
    Card,
    /// The card's holder has just matched their template.
    FingerMatched,
}

/// What entitles a person to a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    Grant,
    Booking,
}

impl Basis {
    /// The reason an admission on this basis is recorded with.
    fn reason(self) -> Reason {
        match self {
            Basis::Grant => Reason::Granted,
            Basis::Booking => Reason::GrantedByBooking,
        }
    }
}

struct Brain<'a> {
    snap: &'a Snapshot,
    mem: &'a Memory,
    now: &'a Moment,
}

/// Whether a card may be used at all right now.
fn card_usable(card: &Card, now: Timestamp) -> Result<(), Reason> {
    match card.state {
        CardState::Active => {}
        CardState::Suspended => return Err(Reason::CardSuspended),
        CardState::Lost => return Err(Reason::CardLost),
        CardState::Revoked => return Err(Reason::CardRevoked),
        CardState::Expired => return Err(Reason::CardExpired),
        CardState::Returned => return Err(Reason::CardReturned),
    }
    if card.valid_from.is_some_and(|from| now < from) {
        return Err(Reason::CardNotYetValid);
    }
    if card.valid_until.is_some_and(|until| now >= until) {
        return Err(Reason::CardExpired);
    }
    Ok(())
}

/// Whether a zone's occupancy is tracked (for anti-passback, dual custody, "who is inside").
fn tracked(zone: &Zone) -> bool {
    zone.settings.anti_passback != AntiPassback::Off
        || zone.settings.dual_custody
        || zone.level == SecurityLevel::L4
}

/// Whether hard anti-passback keeps `person` out of `zone`: they are
/// recorded inside it already.
fn passback_refuses(mem: &Memory, zone: &Zone, person: PersonId) -> bool {
    zone.settings.anti_passback == AntiPassback::Hard
        && tracked(zone)
        && mem.is_inside(zone.id, person)
}

impl Decision {
    fn with(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }

    /// Records a passage through the door for occupancy.
    fn pass(&mut self, snap: &Snapshot, door: &Door, side: Side, person: &Person) {
        let (from, to) = match side {
            Side::Entry => (door.outside, door.inside),
            Side::Exit => (door.inside, door.outside),
        };
        let is_tracked = |z| snap.zone(z).is_some_and(tracked);
        if is_tracked(from) || is_tracked(to) {
            self.effects.passages.push(Passage {
                person: person.id,
                from,
                to,
            });
        }
        // Anything this person waited for at this door is settled.
        self.effects.ended.push((door.id, side, Some(person.id)));
    }
}

impl Brain<'_> {
    fn fire_released(&self, door: &Door) -> bool {
        door.fire_egress && (self.mem.fire_alarm(door.inside) || self.mem.fire_alarm(door.outside))
    }

    fn open_hours(&self, zone: &Zone) -> bool {
        zone.opening_schedule
            .and_then(|s| self.snap.schedule(s))
            .is_some_and(|s| s.is_active(&self.now.local, self.snap.holidays()))
    }

    fn cache_too_old(&self, zone: &Zone) -> bool {
        let Some(max) = zone.settings.max_offline_age_ms else {
            return false;
        };
        let confirmed = self
            .mem
            .policy_confirmed_at()
            .unwrap_or(self.snap.issued_at());
        self.now.utc.ms_since(confirmed) > max
    }

    fn card(&self, door_id: DoorId, side: Side, uid: CardUid, stage: Stage) -> Decision {
        let mut d = Decision::new(door_id, side, Reason::Granted);
        d.card = Some(uid);
        let Some((door, zone)) = self
            .snap
            .door(door_id)
            .and_then(|door| Some((door, self.snap.zone(door.inside)?)))
        else {
            return d.with(Reason::UnknownDoor);
        };
        d.level = Some(self.snap.effective_level(zone));
        let Some(reader) = door.reader(side) else {
            return d.with(Reason::ReaderNotConfigured);
        };
        let Some((card, person)) = self
            .snap
            .card(&uid)
            .and_then(|card| Some((card, self.snap.person(card.person)?)))
        else {
            return d.with(Reason::UnknownCard);
        };
        d.subject = Some(Subject {
            person: person.id,
            card: uid,
        });
        if let Err(reason) = card_usable(card, self.now.utc) {
            return d.with(reason);
        }
        let released = self.fire_released(door);
        if self.snap.threat_for(zone) == ThreatLevel::Lockdown && !released {
            return d.with(Reason::Lockdown);
        }
        if released {
            d.pass(self.snap, door, side, person);
            return d.with(Reason::FireRelease);
        }
        if self.cache_too_old(zone) {
            return d.with(Reason::CacheTooOld);
        }
        let level = self.snap.effective_level(zone);
        let at = Situation {
            door,
            zone,
            reader,
            person,
            side,
            stage,
        };
        let decided = self.evaluate(&at, level, d.clone());
        if decided.verdict() == Verdict::Denied && level != zone.level {
            let normally = self.evaluate(&at, zone.level, d.clone());
            if normally.verdict() != Verdict::Denied {
                return d.with(Reason::ThreatLevel);
            }
        }
        decided
    }

    fn evaluate(&self, at: &Situation<'_>, level: SecurityLevel, d: Decision) -> Decision {
        match at.side {
            Side::Entry => self.entry(at, level, d),
            Side::Exit => self.exit(at, level, d),
        }
    }

    fn entry(&self, at: &Situation<'_>, level: SecurityLevel, mut d: Decision) -> Decision {
        let Situation {
            door, zone, person, ..
        } = *at;
        let free = match level {
            SecurityLevel::L0 => Some(Reason::NoLock),
            SecurityLevel::L1 if self.open_hours(zone) => Some(Reason::OpenHours),
            _ => None,
        };
        if let Some(reason) = free {
            // An unlocked door cannot refuse anyone; it can still notice a shared card.
            if tracked(zone) && self.mem.is_inside(zone.id, person.id) {
                d.warnings.insert(Warnings::PASSBACK);
            }
            d.pass(self.snap, door, Side::Entry, person);
            return d.with(reason);
        }
        let rules = self.snap.kind_rules(zone, level);
        let rule = rules.rule(person.kind);
        if rule == KindRule::Refused {
            return d.with(Reason::LevelTooHighForKind);
        }
        let basis = match self.basis(person, door, zone, level) {
            Ok(basis) => basis,
            Err(reason) => return d.with(reason),
        };
        if tracked(zone) && self.mem.is_inside(zone.id, person.id) {
            match zone.settings.anti_passback {
                AntiPassback::Hard => return d.with(Reason::AntiPassback),
                AntiPassback::Soft => d.warnings.insert(Warnings::PASSBACK),
                AntiPassback::Off => {}
            }
        }
        let booked_citizen = basis == Basis::Booking && person.kind == PersonKind::Citizen;
        if rule == KindRule::Escorted && !booked_citizen {
            return self.escorted(at, d);
        }
        if level == SecurityLevel::L4 && at.stage == Stage::Card {
            return self.ask_finger(at, d);
        }
        if zone.settings.dual_custody && self.mem.is_empty(zone.id) {
            // The partner comes in on their own basis (a grant, or a booked
            // room), as it holds now: a booking that ended meanwhile does
            // not admit them, and a booked citizen is recorded as admitted
            // by booking, not by a grant they do not hold.
            let partner = self.mem.waiting().iter().find_map(|w| {
                let waits_here = w.side == Side::Entry
                    && w.awaiting == (Awaiting::SecondPerson { zone: zone.id })
                    && w.subject.person != person.id
                    && self.now.utc < w.deadline
                    // Recorded inside since they began to wait (through
                    // another door): hard anti-passback keeps them out.
                    && !passback_refuses(self.mem, zone, w.subject.person);
                if !waits_here {
                    return None;
                }
                let first = self.snap.person(w.subject.person)?;
                let partner_door = self.snap.door(w.door).unwrap_or(door);
                let basis = self.basis(first, partner_door, zone, level).ok()?;
                Some((w, first, partner_door, basis))
            });
            let Some((partner, first, partner_door, partner_basis)) = partner else {
                d.pending = Some(Pending {
                    awaiting: Awaiting::SecondPerson { zone: zone.id },
                    deadline: self
                        .now
                        .utc
                        .plus_ms(u64::from(zone.settings.dual_custody_window_ms)),
                });
                return d.with(Reason::DualCustodyPending);
            };
            d.companions.push(Companion {
                subject: partner.subject,
                reason: partner_basis.reason(),
            });
            d.pass(self.snap, partner_door, Side::Entry, first);
        }
        d.pass(self.snap, door, Side::Entry, person);
        if rule == KindRule::Alone
            && [rules.staff, rules.contractor, rules.visitor, rules.citizen]
                .contains(&KindRule::Escorted)
        {
            d.effects.escort_until = Some(
                self.now
                    .utc
                    .plus_ms(u64::from(zone.settings.escort_window_ms)),
            );
            self.admit_waiting_escorted(door, &mut d);
        }
        d.with(basis.reason())
    }

    /// People waiting at this door for an escort come in with the one just admitted,
    /// if their card is still good.
    fn admit_waiting_escorted(&self, door: &Door, d: &mut Decision) {
        for w in self.mem.waiting() {
            let waiting_here = w.door == door.id
                && w.side == Side::Entry
                && w.awaiting == Awaiting::Escort
                && self.now.utc < w.deadline;
            if !waiting_here {
                continue;
            }
            let still_good = self.snap.card(&w.subject.card).is_some_and(|c| {
                c.person == w.subject.person && card_usable(c, self.now.utc).is_ok()
            });
            // Recorded inside since they began to wait (through another
            // door): under hard anti-passback they do not come in again.
            let kept_out = self
                .snap
                .zone(door.inside)
                .is_some_and(|zone| passback_refuses(self.mem, zone, w.subject.person));
            if kept_out {
                continue;
            }
            if let (true, Some(person)) = (still_good, self.snap.person(w.subject.person)) {
                d.companions.push(Companion {
                    subject: w.subject,
                    reason: Reason::GrantedWithEscort,
                });
                d.pass(self.snap, door, Side::Entry, person);
            }
        }
    }

    fn escorted(&self, at: &Situation<'_>, mut d: Decision) -> Decision {
        if let Some(escort) = self.mem.escort_offer(at.door.id, self.now.utc) {
            d.escort = Some(escort);
            d.pass(self.snap, at.door, Side::Entry, at.person);
            return d.with(Reason::GrantedWithEscort);
        }
        d.pending = Some(Pending {
            awaiting: Awaiting::Escort,
            deadline: self
                .now
                .utc
                .plus_ms(u64::from(at.zone.settings.escort_window_ms)),
        });
        d.with(Reason::EscortPending)
    }

    fn exit(&self, at: &Situation<'_>, level: SecurityLevel, mut d: Decision) -> Decision {
        let Situation {
            door, zone, person, ..
        } = *at;
        // People admitted on their own biometric prove it again on the way out;
        // escorted people (no template) are recorded by card.
        let alone = self.snap.kind_rules(zone, level).rule(person.kind) == KindRule::Alone;
        if level == SecurityLevel::L4 && alone && at.stage == Stage::Card {
            return self.ask_finger(at, d);
        }
        // Never trap someone inside: leaving without a recorded entry is a warning.
        if tracked(zone) && !self.mem.is_inside(zone.id, person.id) {
            d.warnings.insert(Warnings::EXIT_WITHOUT_ENTRY);
        }
        d.pass(self.snap, door, Side::Exit, person);
        d.with(Reason::Granted)
    }

    fn ask_finger(&self, at: &Situation<'_>, mut d: Decision) -> Decision {
        let Some(module) = at.reader.biometric else {
            return d.with(Reason::BiometricUnavailable);
        };
        let Some(slot) = at.person.slot_on(module) else {
            return d.with(Reason::BiometricNotEnrolled);
        };
        d.pending = Some(Pending {
            awaiting: Awaiting::Biometric { module, slot },
            deadline: self
                .now
                .utc
                .plus_ms(u64::from(at.zone.settings.biometric_timeout_ms)),
        });
        d.with(Reason::BiometricRequired)
    }

    /// A valid grant on schedule, else a booking (up to level 2), else the most
    /// telling denial.
    fn basis(
        &self,
        person: &Person,
        door: &Door,
        zone: &Zone,
        level: SecurityLevel,
    ) -> Result<Basis, Reason> {
        let mut refusal = Reason::NoGrant;
        for grant in person.grants.iter().filter_map(|&g| self.snap.grant(g)) {
            if !grant.covers(zone.id) {
                continue;
            }
            if !grant.is_valid_at(self.now.utc) {
                if refusal == Reason::NoGrant {
                    refusal = Reason::GrantNotValid;
                }
                continue;
            }
            let on_schedule = match grant.schedule {
                None => true,
                Some(s) => self
                    .snap
                    .schedule(s)
                    .is_some_and(|s| s.is_active(&self.now.local, self.snap.holidays())),
            };
            if on_schedule {
                return Ok(Basis::Grant);
            }
            refusal = Reason::OutsideSchedule;
        }
        let booked = level <= SecurityLevel::L2
            && self
                .snap
                .bookings_of(person.id)
                .iter()
                .any(|b| b.opens(door.id, zone.id, self.now.utc));
        if booked {
            return Ok(Basis::Booking);
        }
        Err(refusal)
    }

    fn biometric(&self, door: DoorId, side: Side, result: BiometricResult) -> Decision {
        let wait = self.mem.waiting().iter().find(|w| {
            w.door == door && w.side == side && matches!(w.awaiting, Awaiting::Biometric { .. })
        });
        let mut d = match wait {
            None => Decision::new(door, side, Reason::BiometricWithoutCard),
            Some(w) => {
                let mut d = Decision::new(door, side, Reason::BiometricFailed);
                d.subject = Some(w.subject);
                d.card = Some(w.subject.card);
                let expected = match w.awaiting {
                    Awaiting::Biometric { slot, .. } => Some(slot),
                    _ => None,
                };
                if self.now.utc >= w.deadline {
                    d.with(Reason::BiometricTimeout)
                } else {
                    match result {
                        BiometricResult::Matched { slot, .. } if Some(slot) == expected => {
                            let decided =
                                self.card(door, side, w.subject.card, Stage::FingerMatched);
                            // The card now belongs to someone else: the finger was not theirs.
                            if decided
                                .subject
                                .is_some_and(|s| s.person != w.subject.person)
                            {
                                d
                            } else {
                                decided
                            }
                        }
                        BiometricResult::Matched { .. } | BiometricResult::NoMatch => d,
                        BiometricResult::Timeout => d.with(Reason::BiometricTimeout),
                        BiometricResult::Unavailable => d.with(Reason::BiometricUnavailable),
                        BiometricResult::NotEnrolled => d.with(Reason::BiometricNotEnrolled),
                    }
                }
            }
        };
        if d.level.is_none() {
            d.level = self
                .snap
                .door(door)
                .and_then(|door| self.snap.zone(door.inside))
                .map(|z| self.snap.effective_level(z));
        }
        // Whatever happened, this side no longer waits for a finger.
        d.effects.ended.push((door, side, None));
        d
    }

    fn request_to_exit(&self, door_id: DoorId) -> Decision {
        let d = Decision::new(door_id, Side::Exit, Reason::RequestToExit);
        let Some((door, zone)) = self
            .snap
            .door(door_id)
            .and_then(|door| Some((door, self.snap.zone(door.inside)?)))
        else {
            return d.with(Reason::UnknownDoor);
        };
        let level = self.snap.effective_level(zone);
        let d = Decision {
            level: Some(level),
            ..d
        };
        if self.fire_released(door) {
            return d.with(Reason::FireRelease);
        }
        if self.snap.threat_for(zone) == ThreatLevel::Lockdown {
            return d.with(Reason::Lockdown);
        }
        if level == SecurityLevel::L4 {
            let reason = if zone.level == SecurityLevel::L4 {
                Reason::RexNotAllowed
            } else {
                Reason::ThreatLevel
            };
            return d.with(reason);
        }
        d
    }
}

/// Everything about one presentation that the level rules look at.
#[derive(Clone, Copy)]
struct Situation<'a> {
    door: &'a Door,
    zone: &'a Zone,
    reader: ReaderSide,
    person: &'a Person,
    side: Side,
    stage: Stage,
}
