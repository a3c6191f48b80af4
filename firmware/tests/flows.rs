//! Multi-step flows: card + finger, escort either order, dual custody, anti-passback,
//! threat levels, lockdown, fire release, stale policy, and every reason code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tobira_firmware::*;

fn matched(slot: u16) -> BiometricResult {
    BiometricResult::Matched {
        slot: TemplateSlot(slot),
        score: 99,
    }
}

#[test]
fn level_4_is_card_then_finger_for_the_enrolled_slot() {
    let mut w = World::at(workday());
    let d = w.enter(MACHINE_DOOR, SATO);
    assert_eq!(d.reason, Reason::BiometricRequired);
    assert!(!d.is_granted());
    let pending = d.pending.unwrap();
    assert_eq!(
        pending.awaiting,
        Awaiting::Biometric {
            module: MACHINE_IN,
            slot: TemplateSlot(SATO.0 as u16)
        }
    );
    assert_eq!(pending.deadline, w.now.utc.plus_ms(10_000));
    w.advance_ms(3_000);
    let d = w.finger(MACHINE_DOOR, Side::Entry, matched(SATO.0 as u16));
    assert_eq!(d.reason, Reason::Granted);
    assert_eq!(d.level, Some(SecurityLevel::L4));
    assert_eq!(d.subject.unwrap().person, SATO);
    assert!(w.mem.is_inside(MACHINE, SATO));
    // The wait is over: a second finger has no card to go with.
    let d = w.finger(MACHINE_DOOR, Side::Entry, matched(1));
    assert_eq!(d.reason, Reason::BiometricWithoutCard);
}

#[test]
fn level_4_finger_failures_each_say_why() {
    for (result, expect) in [
        (BiometricResult::NoMatch, Reason::BiometricFailed),
        (matched(42), Reason::BiometricFailed),
        (BiometricResult::Timeout, Reason::BiometricTimeout),
        (BiometricResult::Unavailable, Reason::BiometricUnavailable),
        // The module holds no template in the person's slot: their enrollment
        // is missing, the module is fine.
        (BiometricResult::NotEnrolled, Reason::BiometricNotEnrolled),
    ] {
        let mut w = World::at(workday());
        w.enter(MACHINE_DOOR, SATO);
        let d = w.finger(MACHINE_DOOR, Side::Entry, result);
        assert_eq!(d.reason, expect, "{result:?}");
        assert_eq!(d.subject.unwrap().person, SATO);
        assert!(!w.mem.is_inside(MACHINE, SATO));
        assert!(w.mem.waiting().is_empty());
    }
}

#[test]
fn level_4_finger_after_the_deadline_is_a_timeout_to_the_millisecond() {
    let mut w = World::at(workday());
    w.enter(MACHINE_DOOR, SATO);
    w.advance_ms(9_999);
    assert!(w.expire().is_empty());
    let mut late = World::at(workday());
    late.enter(MACHINE_DOOR, SATO);
    late.advance_ms(10_000);
    let d = decide(
        &late.snap,
        &late.mem,
        &Request::Biometric {
            door: MACHINE_DOOR,
            side: Side::Entry,
            result: matched(SATO.0 as u16),
        },
        &late.now,
    );
    assert_eq!(d.reason, Reason::BiometricTimeout);
    let expired = late.expire();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].reason, Reason::BiometricTimeout);
    assert_eq!(expired[0].subject.unwrap().person, SATO);
}

#[test]
fn a_card_lost_between_card_and_finger_is_refused_at_the_finger() {
    let mut w = World::at(workday());
    w.enter(MACHINE_DOOR, SATO);
    let mut data = w.snap.data().clone();
    for c in &mut data.cards {
        if c.uid == card_of(SATO) {
            c.state = CardState::Lost;
        }
    }
    w.snap = Snapshot::new(data).unwrap();
    let d = w.finger(MACHINE_DOOR, Side::Entry, matched(SATO.0 as u16));
    assert_eq!(d.reason, Reason::CardLost);
}

#[test]
fn hard_anti_passback_refuses_a_second_entry_and_exit_is_recorded_with_a_finger() {
    let mut w = World::at(workday());
    assert!(w
        .card_and_finger(MACHINE_DOOR, Side::Entry, SATO)
        .is_granted());
    let again = w.enter(MACHINE_DOOR, SATO);
    assert_eq!(again.reason, Reason::AntiPassback);
    let out = w.leave(MACHINE_DOOR, SATO);
    assert_eq!(out.reason, Reason::BiometricRequired);
    let out = w.finger(MACHINE_DOOR, Side::Exit, matched(SATO.0 as u16));
    assert_eq!(out.reason, Reason::Granted);
    assert_eq!(out.side, Side::Exit);
    assert!(out.warnings.is_empty());
    assert!(!w.mem.is_inside(MACHINE, SATO));
    assert!(w
        .card_and_finger(MACHINE_DOOR, Side::Entry, SATO)
        .is_granted());
}

#[test]
fn leaving_without_a_recorded_entry_is_allowed_with_a_warning() {
    let mut w = World::at(workday());
    let d = w.card_and_finger(MACHINE_DOOR, Side::Exit, ITO);
    assert_eq!(d.reason, Reason::Granted);
    assert!(d.warnings.contains(Warnings::EXIT_WITHOUT_ENTRY));
}

#[test]
fn soft_anti_passback_admits_with_a_warning() {
    let mut w = World::at(workday());
    assert!(w.enter(OFFICE_GATE, SUZUKI).warnings.is_empty());
    let d = w.enter(OFFICE_GATE, SUZUKI);
    assert_eq!(d.reason, Reason::Granted);
    assert!(d.warnings.contains(Warnings::PASSBACK));
}

#[test]
fn escort_works_visitor_first_within_the_window() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(MEETING_DOOR, YAMADA).reason, Reason::EscortPending);
    w.advance_ms(9_999);
    let d = w.enter(MEETING_DOOR, SUZUKI);
    assert_eq!(d.reason, Reason::Granted);
    assert_eq!(d.companions.len(), 1);
    assert_eq!(d.companions[0].subject.person, YAMADA);
    assert_eq!(d.companions[0].reason, Reason::GrantedWithEscort);
    let records = d.access_records();
    assert_eq!(records[1].escort, Some(SUZUKI));
    assert!(w.mem.waiting().is_empty());
}

#[test]
fn escort_works_staff_first_within_the_window() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::Granted);
    w.advance_ms(9_999);
    let d = w.enter(OFFICE_GATE, YAMADA);
    assert_eq!(d.reason, Reason::GrantedWithEscort);
    assert_eq!(d.escort, Some(SUZUKI));
}

#[test]
fn escort_window_is_ten_seconds_either_order() {
    let mut w = World::at(workday());
    w.enter(OFFICE_GATE, SUZUKI);
    w.advance_ms(10_000);
    assert_eq!(w.enter(OFFICE_GATE, YAMADA).reason, Reason::EscortPending);
    w.advance_ms(10_000);
    let d = w.enter(OFFICE_GATE, SUZUKI);
    assert!(d.companions.is_empty(), "the visitor's wait ran out");
    let missing: Vec<_> = w
        .log
        .iter()
        .filter(|d| d.reason == Reason::EscortMissing)
        .collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].subject.unwrap().person, YAMADA);
}

#[test]
fn an_escort_at_one_door_does_not_open_another() {
    let mut w = World::at(workday());
    w.enter(MEETING_DOOR, SUZUKI);
    assert_eq!(w.enter(OFFICE_GATE, YAMADA).reason, Reason::EscortPending);
}

#[test]
fn level_4_visitor_comes_in_with_an_escort_who_passed_card_and_finger() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(MACHINE_DOOR, YAMADA).reason, Reason::EscortPending);
    // A staff member without a level-4 grant cannot escort.
    assert_eq!(w.enter(MACHINE_DOOR, SUZUKI).reason, Reason::NoGrant);
    assert_eq!(
        w.enter(MACHINE_DOOR, SATO).reason,
        Reason::BiometricRequired
    );
    let d = w.finger(MACHINE_DOOR, Side::Entry, matched(SATO.0 as u16));
    assert_eq!(d.reason, Reason::Granted);
    assert_eq!(d.companions[0].subject.person, YAMADA);
    assert!(w.mem.is_inside(MACHINE, YAMADA));
    // Escorted people leave by card: they have no template to prove.
    assert_eq!(w.leave(MACHINE_DOOR, YAMADA).reason, Reason::Granted);
}

#[test]
fn level_4_contractor_after_the_escort() {
    let mut w = World::at(workday());
    assert!(w
        .card_and_finger(MACHINE_DOOR, Side::Entry, SATO)
        .is_granted());
    w.advance_ms(4_000);
    let d = w.enter(MACHINE_DOOR, TANAKA);
    assert_eq!(d.reason, Reason::GrantedWithEscort);
    assert_eq!(d.escort, Some(SATO));
}

#[test]
fn dual_custody_needs_two_authorised_people_into_an_empty_zone() {
    let mut w = World::at(workday());
    assert!(w
        .card_and_finger(MACHINE_DOOR, Side::Entry, SATO)
        .is_granted());
    assert!(w
        .card_and_finger(MACHINE_DOOR, Side::Entry, ITO)
        .is_granted());
    let first = w.card_and_finger(CAGE_DOOR, Side::Entry, SATO);
    assert_eq!(first.reason, Reason::DualCustodyPending);
    assert!(!w.mem.is_inside(CAGE, SATO));
    // The same person again is still one person.
    assert_eq!(
        w.card_and_finger(CAGE_DOOR, Side::Entry, SATO).reason,
        Reason::DualCustodyPending
    );
    w.advance_ms(9_000);
    let second = w.card_and_finger(CAGE_DOOR, Side::Entry, ITO);
    assert_eq!(second.reason, Reason::Granted);
    assert_eq!(second.companions[0].subject.person, SATO);
    assert!(w.mem.is_inside(CAGE, SATO) && w.mem.is_inside(CAGE, ITO));
}

#[test]
fn dual_custody_times_out_and_applies_only_to_an_empty_zone() {
    let mut w = World::at(workday());
    w.card_and_finger(MACHINE_DOOR, Side::Entry, SATO);
    assert_eq!(
        w.card_and_finger(CAGE_DOOR, Side::Entry, SATO).reason,
        Reason::DualCustodyPending
    );
    w.advance_ms(10_000);
    let ended = w.expire();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].reason, Reason::DualCustodyTimeout);
    let mut w = World::at(workday());
    w.mem.set_inside(CAGE, ITO, true);
    assert_eq!(
        w.card_and_finger(CAGE_DOOR, Side::Entry, SATO).reason,
        Reason::Granted
    );
}

#[test]
fn request_to_exit_is_refused_at_level_4_except_in_fire_release() {
    let mut w = World::at(workday());
    assert_eq!(
        w.ask(Request::RequestToExit { door: OFFICE_GATE }).reason,
        Reason::RequestToExit
    );
    assert_eq!(
        w.ask(Request::RequestToExit { door: MACHINE_DOOR }).reason,
        Reason::RexNotAllowed
    );
    w.mem.set_fire_alarm(MACHINE, true);
    assert_eq!(
        w.ask(Request::RequestToExit { door: MACHINE_DOOR }).reason,
        Reason::FireRelease
    );
}

#[test]
fn fire_release_opens_fire_egress_doors_but_never_for_a_lost_card() {
    let mut w = World::at(night());
    w.mem.set_fire_alarm(RECEPTION, true);
    assert_eq!(w.enter(MAIN_ENTRANCE, TANAKA).reason, Reason::FireRelease);
    assert_eq!(
        w.tap(MAIN_ENTRANCE, Side::Entry, uid(LOST)).reason,
        Reason::CardLost
    );
    // Doors not configured for fire egress keep their rules.
    assert_eq!(w.enter(MEETING_DOOR, TANAKA).reason, Reason::GrantNotValid);
    assert_eq!(
        free_access(&w.snap, &w.mem, MAIN_ENTRANCE, &w.now),
        Some(Reason::FireRelease)
    );
    w.mem.set_fire_alarm(RECEPTION, false);
    assert_eq!(free_access(&w.snap, &w.mem, MAIN_ENTRANCE, &w.now), None);
}

#[test]
fn free_access_follows_level_schedule_and_lockdown() {
    let w = World::at(workday());
    assert_eq!(
        free_access(&w.snap, &w.mem, GARDEN_GATE, &w.now),
        Some(Reason::NoLock)
    );
    assert_eq!(
        free_access(&w.snap, &w.mem, MAIN_ENTRANCE, &w.now),
        Some(Reason::OpenHours)
    );
    assert_eq!(free_access(&w.snap, &w.mem, OFFICE_GATE, &w.now), None);
    let w = World::at(holiday());
    assert_eq!(free_access(&w.snap, &w.mem, MAIN_ENTRANCE, &w.now), None);
    let mut data = city_hall_data();
    data.threat = ThreatLevel::Lockdown;
    let w = World::new(Snapshot::new(data).unwrap(), workday());
    assert_eq!(free_access(&w.snap, &w.mem, MAIN_ENTRANCE, &w.now), None);
    assert_eq!(free_access(&w.snap, &w.mem, DoorId(99), &w.now), None);
}

fn with_threat(site: ThreatLevel) -> World {
    let mut data = city_hall_data();
    data.threat = site;
    World::new(Snapshot::new(data).unwrap(), workday())
}

#[test]
fn lockdown_locks_everything_but_fire_egress() {
    let mut w = with_threat(ThreatLevel::Lockdown);
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::Lockdown);
    assert_eq!(w.enter(MAIN_ENTRANCE, SUZUKI).reason, Reason::Lockdown);
    assert_eq!(w.enter(GARDEN_GATE, SUZUKI).reason, Reason::Lockdown);
    assert_eq!(
        w.ask(Request::RequestToExit { door: OFFICE_GATE }).reason,
        Reason::Lockdown
    );
    w.mem.set_fire_alarm(RECEPTION, true);
    assert_eq!(w.enter(MAIN_ENTRANCE, SUZUKI).reason, Reason::FireRelease);
    assert_eq!(
        w.ask(Request::RequestToExit {
            door: MAIN_ENTRANCE
        })
        .reason,
        Reason::FireRelease
    );
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::Lockdown);
}

#[test]
fn a_zone_in_lockdown_does_not_lock_the_rest_of_the_site() {
    let mut data = city_hall_data();
    for z in &mut data.zones {
        if z.id == MACHINE {
            z.settings.threat = ThreatLevel::Lockdown;
        }
    }
    let mut w = World::new(Snapshot::new(data).unwrap(), workday());
    assert_eq!(w.enter(MACHINE_DOOR, SATO).reason, Reason::Lockdown);
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::Granted);
}

#[test]
fn threat_levels_raise_zones_and_say_so_when_that_is_why() {
    let mut w = with_threat(ThreatLevel::Elevated);
    // L3 office decides as L4: the gate has no finger reader, so staff are refused
    // because of the threat level, not because of the reader.
    let d = w.enter(OFFICE_GATE, SUZUKI);
    assert_eq!(
        (d.reason, d.level),
        (Reason::ThreatLevel, Some(SecurityLevel::L4))
    );
    // L1 reception in opening hours decides as L2: no more open door.
    assert_eq!(
        w.enter(MAIN_ENTRANCE, WATANABE).reason,
        Reason::EscortPending
    );
    let d = w.enter(MAIN_ENTRANCE, SUZUKI);
    assert_eq!(d.reason, Reason::Granted);
    assert_eq!(d.companions[0].reason, Reason::GrantedWithEscort);
    assert_eq!(
        w.ask(Request::RequestToExit { door: OFFICE_GATE }).reason,
        Reason::ThreatLevel
    );
    // Grounds stay unlocked: there is no lock to raise.
    assert_eq!(w.enter(GARDEN_GATE, YAMADA).reason, Reason::NoLock);
    let mut w = World::new(
        {
            let mut data = city_hall_data();
            data.threat = ThreatLevel::High;
            Snapshot::new(data).unwrap()
        },
        evening(),
    );
    // A booked citizen at L2 raised to L4 is refused for the threat level.
    assert_eq!(w.enter(MEETING_DOOR, KOBAYASHI).reason, Reason::ThreatLevel);
}

#[test]
fn a_stale_policy_denies_level_4_and_raises_an_alarm_but_not_elsewhere() {
    let mut w = World::at(workday());
    w.mem = Memory::new();
    w.mem.confirm_policy(w.now.utc.plus_ms(0));
    w.now.utc = w.now.utc.plus_ms(24 * 60 * 60 * 1000);
    assert_eq!(
        w.enter(MACHINE_DOOR, SATO).reason,
        Reason::BiometricRequired
    );
    w.now.utc = w.now.utc.plus_ms(1);
    let d = w.enter(MACHINE_DOOR, SATO);
    assert_eq!(d.reason, Reason::CacheTooOld);
    assert!(d.reason.is_alarm());
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::Granted);
    // A fresh confirmation from the central service cures it.
    w.mem.confirm_policy(w.now.utc);
    assert_eq!(
        w.enter(MACHINE_DOOR, SATO).reason,
        Reason::BiometricRequired
    );
}

#[test]
fn a_new_snapshot_with_a_lost_card_applies_at_the_next_tap() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::Granted);
    let mut data = w.snap.data().clone();
    data.version += 1;
    for c in &mut data.cards {
        if c.person == SUZUKI {
            c.state = CardState::Lost;
        }
    }
    w.snap = Snapshot::new(data).unwrap();
    assert_eq!(w.enter(OFFICE_GATE, SUZUKI).reason, Reason::CardLost);
}

#[test]
fn unknown_doors_and_missing_readers_are_refused() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(DoorId(404), SUZUKI).reason, Reason::UnknownDoor);
    assert_eq!(
        w.ask(Request::RequestToExit { door: DoorId(404) }).reason,
        Reason::UnknownDoor
    );
    assert_eq!(
        w.leave(MEETING_DOOR, SUZUKI).reason,
        Reason::ReaderNotConfigured
    );
}

#[test]
fn deciding_is_pure() {
    let w = World::at(workday());
    let request = Request::Card {
        door: MACHINE_DOOR,
        side: Side::Entry,
        uid: card_of(SATO),
    };
    let a = decide(&w.snap, &w.mem, &request, &w.now);
    let b = decide(&w.snap, &w.mem, &request, &w.now);
    assert_eq!(a, b);
}

/// One scenario per reason code; together they must produce every code there is.
#[test]
fn every_reason_code_is_produced() {
    use Reason::*;
    type Scenario = fn() -> Decision;
    let catalogue: Vec<(Reason, Scenario)> = vec![
        (Granted, || World::at(workday()).enter(OFFICE_GATE, SUZUKI)),
        (GrantedWithEscort, || {
            let mut w = World::at(workday());
            w.enter(OFFICE_GATE, SUZUKI);
            w.enter(OFFICE_GATE, YAMADA)
        }),
        (GrantedByBooking, || {
            World::at(evening()).enter(MEETING_DOOR, KOBAYASHI)
        }),
        (OpenHours, || {
            World::at(workday()).enter(MAIN_ENTRANCE, WATANABE)
        }),
        (NoLock, || World::at(night()).enter(GARDEN_GATE, YAMADA)),
        (FireRelease, || {
            let mut w = World::at(night());
            w.mem.set_fire_alarm(MACHINE, true);
            w.enter(MACHINE_DOOR, SUZUKI)
        }),
        (RequestToExit, || {
            World::at(night()).ask(Request::RequestToExit { door: MEETING_DOOR })
        }),
        (BiometricRequired, || {
            World::at(workday()).enter(MACHINE_DOOR, ITO)
        }),
        (EscortPending, || {
            World::at(workday()).enter(MEETING_DOOR, YAMADA)
        }),
        (DualCustodyPending, || {
            let mut w = World::at(workday());
            w.card_and_finger(CAGE_DOOR, Side::Entry, ITO)
        }),
        (UnknownDoor, || World::at(workday()).enter(DoorId(77), SATO)),
        (ReaderNotConfigured, || {
            World::at(workday()).leave(GARDEN_GATE, SATO)
        }),
        (UnknownCard, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(UNKNOWN))
        }),
        (CardSuspended, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(SUSPENDED))
        }),
        (CardLost, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(LOST))
        }),
        (CardRevoked, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(REVOKED))
        }),
        (CardExpired, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(PAST_VALIDITY))
        }),
        (CardReturned, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(RETURNED))
        }),
        (CardNotYetValid, || {
            World::at(workday()).tap(OFFICE_GATE, Side::Entry, uid(NOT_YET_VALID))
        }),
        (NoGrant, || World::at(workday()).enter(MACHINE_DOOR, SUZUKI)),
        (OutsideSchedule, || {
            World::at(night()).enter(MACHINE_DOOR, SATO)
        }),
        (GrantNotValid, || {
            World::at(workday()).enter(MEETING_DOOR, TANAKA)
        }),
        (LevelTooHighForKind, || {
            World::at(workday()).enter(OFFICE_GATE, WATANABE)
        }),
        (EscortMissing, || {
            let mut w = World::at(workday());
            w.enter(MEETING_DOOR, YAMADA);
            w.advance_ms(10_000);
            w.expire().remove(0)
        }),
        (BiometricFailed, || {
            let mut w = World::at(workday());
            w.enter(MACHINE_DOOR, SATO);
            w.finger(MACHINE_DOOR, Side::Entry, BiometricResult::NoMatch)
        }),
        (BiometricTimeout, || {
            let mut w = World::at(workday());
            w.enter(MACHINE_DOOR, SATO);
            w.finger(MACHINE_DOOR, Side::Entry, BiometricResult::Timeout)
        }),
        (BiometricNotEnrolled, || {
            World::at(workday()).enter(MACHINE_DOOR, KATO)
        }),
        (BiometricUnavailable, || {
            let mut w = World::at(workday());
            w.enter(MACHINE_DOOR, SATO);
            w.finger(MACHINE_DOOR, Side::Entry, BiometricResult::Unavailable)
        }),
        (BiometricWithoutCard, || {
            World::at(workday()).finger(MACHINE_DOOR, Side::Entry, BiometricResult::NoMatch)
        }),
        (AntiPassback, || {
            let mut w = World::at(workday());
            w.card_and_finger(MACHINE_DOOR, Side::Entry, SATO);
            w.enter(MACHINE_DOOR, SATO)
        }),
        (DualCustodyTimeout, || {
            let mut w = World::at(workday());
            w.card_and_finger(CAGE_DOOR, Side::Entry, ITO);
            w.advance_ms(10_000);
            w.expire().remove(0)
        }),
        (CacheTooOld, || {
            let mut w = World::at(workday());
            w.now.utc = w.now.utc.plus_ms(25 * 60 * 60 * 1000);
            w.enter(MACHINE_DOOR, SATO)
        }),
        (ThreatLevel, || {
            with_threat(tobira_firmware::ThreatLevel::Elevated).enter(OFFICE_GATE, SUZUKI)
        }),
        (Lockdown, || {
            with_threat(tobira_firmware::ThreatLevel::Lockdown).enter(OFFICE_GATE, SUZUKI)
        }),
        (RexNotAllowed, || {
            World::at(workday()).ask(Request::RequestToExit { door: MACHINE_DOOR })
        }),
    ];
    let mut produced = std::collections::BTreeSet::new();
    for (expect, scenario) in &catalogue {
        let d = scenario();
        assert_eq!(d.reason, *expect, "scenario for {expect}");
        assert_eq!(Reason::from_code(expect.code()), Some(*expect));
        produced.insert(d.reason);
    }
    let missing: Vec<_> = Reason::ALL
        .iter()
        .filter(|r| !produced.contains(r))
        .collect();
    assert!(missing.is_empty(), "reasons no test produces: {missing:?}");
}

/// Found by the level-invariants property: a visitor waiting for an escort
/// who is recorded inside meanwhile (here through another controller's
/// passage; in the property through another door) must not come in again
/// with the escort under hard anti-passback.
#[test]
fn hard_anti_passback_keeps_out_a_waiting_visitor_recorded_inside_meanwhile() {
    let mut w = World::at(workday());
    assert_eq!(w.enter(MACHINE_DOOR, YAMADA).reason, Reason::EscortPending);
    w.mem.set_inside(MACHINE, YAMADA, true);
    let d = w.card_and_finger(MACHINE_DOOR, Side::Entry, SATO);
    assert_eq!(d.reason, Reason::Granted);
    assert!(
        d.companions.is_empty(),
        "admitted again: {:?}",
        d.companions
    );
}

#[test]
fn a_booked_citizen_in_a_dual_custody_room_comes_in_by_booking_with_the_second_person() {
    // Found by the level-invariant property test: the first of the two was
    // recorded as `granted`, a grant a booked citizen does not hold.
    let mut data = city_hall_data();
    let meeting = data
        .doors
        .iter()
        .find(|d| d.id == MEETING_DOOR)
        .unwrap()
        .inside;
    for zone in data.zones.iter_mut().filter(|z| z.id == meeting) {
        zone.settings.dual_custody = true;
    }
    let mut w = World::new(Snapshot::new(data).unwrap(), evening());
    let first = w.enter(MEETING_DOOR, KOBAYASHI);
    assert_eq!(first.reason, Reason::DualCustodyPending);
    let second = w.enter(MEETING_DOOR, SATO);
    assert!(second.is_granted(), "{second:?}");
    assert_eq!(second.companions[0].subject.person, KOBAYASHI);
    assert_eq!(second.companions[0].reason, Reason::GrantedByBooking);
    let records = second.access_records();
    let citizen = records
        .iter()
        .find(|r| r.person == Some(KOBAYASHI))
        .unwrap();
    assert_eq!(citizen.reason, Reason::GrantedByBooking);
}
