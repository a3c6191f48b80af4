//! Invariants of the level rules, checked over random buildings and random
//! sequences of taps, fingers, buttons, fire alarms and time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use tobira_firmware::*;

#[derive(Debug, Clone)]
enum Step {
    Tap {
        door: usize,
        exit: bool,
        card: usize,
    },
    Finger {
        door: usize,
        exit: bool,
        outcome: u8,
    },
    Rex {
        door: usize,
    },
    Advance {
        ms: u64,
    },
    Fire {
        zone: usize,
        on: bool,
    },
}

#[derive(Debug, Clone)]
struct Variation {
    card_states: Vec<u8>,
    kinds: Vec<u8>,
    site_threat: u8,
    zone_threats: Vec<u8>,
    anti_passback: Vec<u8>,
    dual_custody: Vec<bool>,
    start: u8,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..6usize, any::<bool>(), 0..16usize).prop_map(|(door, exit, card)| Step::Tap { door, exit, card }),
        4 => (0..6usize, any::<bool>(), 0..6u8).prop_map(|(door, exit, outcome)| Step::Finger { door, exit, outcome }),
        1 => (0..6usize).prop_map(|door| Step::Rex { door }),
        3 => (0..15_000u64).prop_map(|ms| Step::Advance { ms }),
        1 => (0..7usize, any::<bool>()).prop_map(|(zone, on)| Step::Fire { zone, on }),
    ]
}

fn variation() -> impl Strategy<Value = Variation> {
    (
        prop::collection::vec(0..8u8, 16),
        prop::collection::vec(0..6u8, 8),
        0..6u8,
        prop::collection::vec(0..8u8, 7),
        prop::collection::vec(0..3u8, 7),
        prop::collection::vec(any::<bool>(), 7),
        0..4u8,
    )
        .prop_map(
            |(
                card_states,
                kinds,
                site_threat,
                zone_threats,
                anti_passback,
                dual_custody,
                start,
            )| Variation {
                card_states,
                kinds,
                site_threat,
                zone_threats,
                anti_passback,
                dual_custody,
                start,
            },
        )
}

fn threat(n: u8) -> ThreatLevel {
    // Mostly normal, so that the other rules get exercised too.
    match n {
        3 => ThreatLevel::Elevated,
        4 => ThreatLevel::High,
        5 => ThreatLevel::Lockdown,
        _ => ThreatLevel::Normal,
    }
}

fn build(v: &Variation) -> World {
    let mut data = city_hall_data();
    let states = [
        CardState::Active,
        CardState::Suspended,
        CardState::Lost,
        CardState::Revoked,
        CardState::Expired,
        CardState::Returned,
    ];
    for (card, &s) in data.cards.iter_mut().zip(&v.card_states) {
        // Values past the list stay active, so that grants happen often enough.
        card.state = states
            .get(usize::from(s))
            .copied()
            .unwrap_or(CardState::Active);
    }
    for (person, &k) in data.people.iter_mut().zip(&v.kinds) {
        if let Some(&kind) = PersonKind::ALL.get(usize::from(k)) {
            person.kind = kind;
        }
    }
    data.threat = threat(v.site_threat);
    for (i, zone) in data.zones.iter_mut().enumerate() {
        zone.settings.threat = threat(v.zone_threats[i]);
        zone.settings.anti_passback = [AntiPassback::Off, AntiPassback::Soft, AntiPassback::Hard]
            [usize::from(v.anti_passback[i])];
        zone.settings.dual_custody = v.dual_custody[i];
    }
    let start = [workday, evening, night, holiday][usize::from(v.start)]();
    World::new(Snapshot::new(data).unwrap(), start)
}

const DOORS: [DoorId; 6] = [
    MAIN_ENTRANCE,
    MEETING_DOOR,
    OFFICE_GATE,
    MACHINE_DOOR,
    CAGE_DOOR,
    GARDEN_GATE,
];
const ZONES: [ZoneId; 7] = [GROUNDS, RECEPTION, MEETING, OFFICE, MACHINE, CAGE, GARDEN];

fn all_cards(snap: &Snapshot) -> Vec<CardUid> {
    let mut cards: Vec<CardUid> = snap.data().cards.iter().map(|c| c.uid).collect();
    cards.push(uid(UNKNOWN));
    cards
}

/// What the run has seen, to check each decision against.
#[derive(Default)]
struct Trail {
    /// (door, side, person) → when they were granted after their own matched finger.
    finger_grants: BTreeMap<(DoorId, Side, PersonId), Timestamp>,
    /// (door, person) → grants that admitted them alone (possible escorts).
    alone_grants: BTreeMap<(DoorId, PersonId), Timestamp>,
    /// People whose finger matched while waiting for dual custody, and when:
    /// it excuses their admission as the first of the pair only within the
    /// zone's dual-custody window, and only once.
    fingered_waiting: BTreeMap<(DoorId, PersonId), Timestamp>,
    /// Our own occupancy model.
    inside: BTreeSet<(ZoneId, PersonId)>,
}

fn check(
    w: &World,
    request: &Request,
    d: &Decision,
    trail: &mut Trail,
) -> Result<(), TestCaseError> {
    let snap = &w.snap;
    let now = w.now.utc;
    let by_finger = matches!(
        request,
        Request::Biometric {
            result: BiometricResult::Matched { .. },
            ..
        }
    );
    if d.reason == Reason::DualCustodyPending && by_finger {
        if let Some(s) = d.subject {
            trail.fingered_waiting.insert((d.door, s.person), now);
        }
    }
    let Some(door) = snap.door(d.door) else {
        prop_assert!(!d.is_granted());
        return Ok(());
    };
    let zone = snap.zone(door.inside).unwrap();
    let level = snap.effective_level(zone);
    let lockdown = snap.threat_for(zone) == ThreatLevel::Lockdown;
    for (i, record) in d.access_records().iter().enumerate() {
        if record.reason.verdict() != Verdict::Granted {
            continue;
        }
        let fire = record.reason == Reason::FireRelease;
        // Lockdown grants nothing but fire egress.
        if lockdown {
            prop_assert!(fire, "granted {:?} in lockdown", record);
        }
        let Some(person) = record.person else {
            continue;
        };
        let kind = snap.person(person).unwrap().kind;
        // A lost, revoked, expired (or otherwise unusable) card is never granted.
        let card = snap.card(&record.card.unwrap()).unwrap();
        prop_assert_eq!(
            card.state,
            CardState::Active,
            "granted a {:?} card",
            card.state
        );
        prop_assert!(
            card.valid_until.is_none_or(|t| now < t) && card.valid_from.is_none_or(|t| now >= t)
        );
        if fire {
            // Fire release opens only a fire-egress door, and only while a
            // fire alarm is active in one of the zones it joins.
            prop_assert!(
                door.fire_egress,
                "fire release at a door that is not fire egress: {:?}",
                record
            );
            prop_assert!(
                w.mem.fire_alarm(door.inside) || w.mem.fire_alarm(door.outside),
                "fire release without a fire alarm: {:?}",
                record
            );
            continue;
        }
        let entering = record.side == Side::Entry;
        // No level-4 grant without a biometric match: the person's own — the
        // slot they enrolled on this side's module, not any match — or their escort's.
        if level == SecurityLevel::L4 {
            let matched_slot = match request {
                Request::Biometric {
                    result: BiometricResult::Matched { slot, .. },
                    ..
                } => Some(*slot),
                _ => None,
            };
            let enrolled_slot = door
                .reader(record.side)
                .and_then(|r| r.biometric)
                .and_then(|m| snap.person(person).unwrap().slot_on(m));
            let own = i == 0 && matched_slot.is_some() && matched_slot == enrolled_slot;
            let window = u64::from(zone.settings.dual_custody_window_ms);
            let partner = i > 0
                && record.reason == Reason::Granted
                && trail
                    .fingered_waiting
                    .remove(&(d.door, person))
                    .is_some_and(|t| now.ms_since(t) <= window);
            let escorted = record.reason == Reason::GrantedWithEscort && {
                let escort = record.escort.unwrap();
                trail
                    .finger_grants
                    .get(&(d.door, Side::Entry, escort))
                    .is_some_and(|&t| now.ms_since(t) <= 10_000)
                    || (i > 0 && by_finger)
            };
            let escorted_leaving =
                !entering && snap.kind_rules(zone, level).rule(kind) != KindRule::Alone;
            prop_assert!(
                own || partner || escorted || escorted_leaving,
                "L4 grant without a finger: {:?}",
                record
            );
        }
        // A visitor never passes into level 2+ without an escort; citizens need an escort or a booking.
        if entering
            && level >= SecurityLevel::L2
            && matches!(kind, PersonKind::Visitor | PersonKind::Citizen)
        {
            let ok = match record.reason {
                Reason::GrantedWithEscort => {
                    let escort = record.escort.unwrap();
                    let escort_kind = snap.person(escort).unwrap().kind;
                    let recent = trail
                        .alone_grants
                        .get(&(d.door, escort))
                        .is_some_and(|&t| now.ms_since(t) <= 10_000)
                        || i > 0;
                    recent && !matches!(escort_kind, PersonKind::Visitor | PersonKind::Citizen)
                }
                Reason::GrantedByBooking => {
                    kind == PersonKind::Citizen && level == SecurityLevel::L2
                }
                _ => false,
            };
            prop_assert!(
                ok,
                "{:?} admitted at {} without escort: {:?}",
                kind,
                level,
                record
            );
        }
        // Hard anti-passback never admits someone already inside.
        let (from, to) = if entering {
            (door.outside, door.inside)
        } else {
            (door.inside, door.outside)
        };
        // (A door with no lock or open for opening hours admits nobody: people just walk through.)
        let free = matches!(record.reason, Reason::NoLock | Reason::OpenHours);
        if entering && !free && zone.settings.anti_passback == AntiPassback::Hard {
            prop_assert!(
                !trail.inside.contains(&(door.inside, person)),
                "{} admitted twice into {}",
                person,
                door.inside
            );
        }
        trail.inside.remove(&(from, person));
        trail.inside.insert((to, person));
        if i == 0 && record.reason == Reason::Granted {
            trail.alone_grants.insert((d.door, person), now);
            if by_finger {
                trail
                    .finger_grants
                    .insert((d.door, record.side, person), now);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_level_invariants_hold(v in variation(), steps in prop::collection::vec(step(), 1..60)) {
        let mut w = build(&v);
        let cards = all_cards(&w.snap);
        let mut trail = Trail::default();
        for step in steps {
            let request = match step {
                Step::Advance { ms } => { w.advance_ms(ms); continue; }
                Step::Fire { zone, on } => { w.mem.set_fire_alarm(ZONES[zone], on); continue; }
                Step::Tap { door, exit, card } => Request::Card {
                    door: DOORS[door],
                    side: if exit { Side::Exit } else { Side::Entry },
                    uid: cards[card % cards.len()],
                },
                Step::Finger { door, exit, outcome } => {
                    let side = if exit { Side::Exit } else { Side::Entry };
                    let waiting_slot = w.mem.waiting().iter().find_map(|x| match x.awaiting {
                        Awaiting::Biometric { slot, .. } if x.door == DOORS[door] && x.side == side => Some(slot),
                        _ => None,
                    });
                    let result = match outcome {
                        0 | 1 => BiometricResult::Matched { slot: waiting_slot.unwrap_or(TemplateSlot(1)), score: 80 },
                        2 => BiometricResult::NoMatch,
                        3 => BiometricResult::Timeout,
                        4 => BiometricResult::Unavailable,
                        _ => BiometricResult::Matched { slot: TemplateSlot(999), score: 80 },
                    };
                    Request::Biometric { door: DOORS[door], side, result }
                }
                Step::Rex { door } => Request::RequestToExit { door: DOORS[door] },
            };
            for expired in w.mem.expire(w.now.utc) {
                prop_assert_eq!(expired.verdict(), Verdict::Denied);
            }
            let d = decide(&w.snap, &w.mem, &request, &w.now);
            check(&w, &request, &d, &mut trail)?;
            w.mem.apply(&d);
        }
    }

    #[test]
    fn decisions_never_panic_on_arbitrary_requests(door in any::<u32>(), bytes in prop::collection::vec(any::<u8>(), 4..=4), slot in any::<u16>(), exit in any::<bool>()) {
        let w = World::at(workday());
        let uid = CardUid::new(&bytes).unwrap();
        let side = if exit { Side::Exit } else { Side::Entry };
        for request in [
            Request::Card { door: DoorId(door), side, uid },
            Request::Biometric { door: DoorId(door), side, result: BiometricResult::Matched { slot: TemplateSlot(slot), score: 1 } },
            Request::RequestToExit { door: DoorId(door) },
        ] {
            let _ = decide(&w.snap, &w.mem, &request, &w.now);
        }
    }
}
