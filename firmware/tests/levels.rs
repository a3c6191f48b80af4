//! Table-driven: every level × person kind × situation (time of day, card state).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tobira_firmware::*;

struct Case {
    name: &'static str,
    at: fn() -> Moment,
    door: DoorId,
    card: CardUid,
    expect: Reason,
}

fn case(
    name: &'static str,
    at: fn() -> Moment,
    door: DoorId,
    person: PersonId,
    expect: Reason,
) -> Case {
    Case {
        name,
        at,
        door,
        card: card_of(person),
        expect,
    }
}

fn card_case(name: &'static str, door: DoorId, card: u8, expect: Reason) -> Case {
    Case {
        name,
        at: workday,
        door,
        card: uid(card),
        expect,
    }
}

#[rustfmt::skip]
fn table() -> Vec<Case> {
    use Reason::*;
    vec![
        // Level 0: no lock; everyone's passage is counted.
        case("L0 staff", workday, GARDEN_GATE, SUZUKI, NoLock),
        case("L0 contractor", night, GARDEN_GATE, TANAKA, NoLock),
        case("L0 visitor", night, GARDEN_GATE, YAMADA, NoLock),
        case("L0 citizen", night, GARDEN_GATE, WATANABE, NoLock),
        // Level 1 in opening hours: open to all.
        case("L1 open staff", workday, MAIN_ENTRANCE, SUZUKI, OpenHours),
        case("L1 open contractor", workday, MAIN_ENTRANCE, TANAKA, OpenHours),
        case("L1 open visitor", workday, MAIN_ENTRANCE, YAMADA, OpenHours),
        case("L1 open citizen", workday, MAIN_ENTRANCE, KOBAYASHI, OpenHours),
        // Level 1 after hours: a grant (or a booking) is needed.
        case("L1 evening staff", evening, MAIN_ENTRANCE, SUZUKI, Granted),
        case("L1 evening contractor off shift", evening, MAIN_ENTRANCE, TANAKA, OutsideSchedule),
        case("L1 evening visitor with grant", evening, MAIN_ENTRANCE, YAMADA, Granted),
        case("L1 evening citizen with booking", evening, MAIN_ENTRANCE, KOBAYASHI, GrantedByBooking),
        case("L1 night citizen booking over", night, MAIN_ENTRANCE, KOBAYASHI, NoGrant),
        case("L1 holiday closed", holiday, MAIN_ENTRANCE, SUZUKI, Granted),
        case("L1 holiday contractor", holiday, MAIN_ENTRANCE, TANAKA, OutsideSchedule),
        // Level 2: card with grant; visitors and citizens escorted or booked.
        case("L2 staff", workday, MEETING_DOOR, SUZUKI, Granted),
        case("L2 contractor expired grant", workday, MEETING_DOOR, TANAKA, GrantNotValid),
        case("L2 visitor alone waits for escort", workday, MEETING_DOOR, YAMADA, EscortPending),
        case("L2 citizen alone waits for escort", workday, MEETING_DOOR, WATANABE, EscortPending),
        case("L2 citizen booking not yet", workday, MEETING_DOOR, KOBAYASHI, NoGrant),
        case("L2 citizen in booking window", evening, MEETING_DOOR, KOBAYASHI, GrantedByBooking),
        case("L2 staff evening", evening, MEETING_DOOR, SUZUKI, Granted),
        // Level 3: staff and contractors; visitors escorted; citizens never.
        case("L3 staff", workday, OFFICE_GATE, SUZUKI, Granted),
        case("L3 contractor on shift", workday, OFFICE_GATE, TANAKA, Granted),
        case("L3 contractor off shift", evening, OFFICE_GATE, TANAKA, OutsideSchedule),
        case("L3 visitor waits for escort", workday, OFFICE_GATE, YAMADA, EscortPending),
        case("L3 citizen refused", workday, OFFICE_GATE, WATANABE, LevelTooHighForKind),
        case("L3 booked citizen refused", evening, OFFICE_GATE, KOBAYASHI, LevelTooHighForKind),
        // Level 4: card then finger for named staff; others escorted or refused.
        case("L4 staff asks for finger", workday, MACHINE_DOOR, SATO, BiometricRequired),
        case("L4 staff without grant", workday, MACHINE_DOOR, SUZUKI, NoGrant),
        case("L4 staff not enrolled", workday, MACHINE_DOOR, KATO, BiometricNotEnrolled),
        case("L4 staff outside hours", night, MACHINE_DOOR, SATO, OutsideSchedule),
        case("L4 staff on holiday duty", holiday, MACHINE_DOOR, SATO, BiometricRequired),
        case("L4 contractor needs escort", workday, MACHINE_DOOR, TANAKA, EscortPending),
        case("L4 contractor holiday", holiday, MACHINE_DOOR, TANAKA, OutsideSchedule),
        case("L4 visitor needs escort", workday, MACHINE_DOOR, YAMADA, EscortPending),
        case("L4 citizen refused", workday, MACHINE_DOOR, WATANABE, LevelTooHighForKind),
        // Card states, at every locked level.
        card_case("unknown card L3", OFFICE_GATE, UNKNOWN, UnknownCard),
        card_case("suspended L3", OFFICE_GATE, SUSPENDED, CardSuspended),
        card_case("lost L3", OFFICE_GATE, LOST, CardLost),
        card_case("lost L4", MACHINE_DOOR, LOST, CardLost),
        card_case("lost L1 open hours", MAIN_ENTRANCE, LOST, CardLost),
        card_case("lost L0", GARDEN_GATE, LOST, CardLost),
        card_case("revoked L2", MEETING_DOOR, REVOKED, CardRevoked),
        card_case("expired state L3", OFFICE_GATE, EXPIRED_STATE, CardExpired),
        card_case("past validity L3", OFFICE_GATE, PAST_VALIDITY, CardExpired),
        card_case("not yet valid L2", MEETING_DOOR, NOT_YET_VALID, CardNotYetValid),
        card_case("returned L4", MACHINE_DOOR, RETURNED, CardReturned),
    ]
}

#[test]
fn every_level_kind_and_situation_decides_as_the_table_says() {
    let mut failures = Vec::new();
    for case in table() {
        let mut world = World::at((case.at)());
        let d = world.tap(case.door, Side::Entry, case.card);
        if d.reason != case.expect {
            failures.push(format!(
                "{}: expected {}, got {}",
                case.name, case.expect, d.reason
            ));
        }
        // Pending and denied decisions never open the door.
        assert_eq!(
            d.is_granted(),
            case.expect.verdict() == Verdict::Granted,
            "{}",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_level_and_kind() {
    let snap = city_hall();
    let mut seen = std::collections::BTreeSet::new();
    for case in table() {
        let door = snap.door(case.door).unwrap();
        let level = snap.zone(door.inside).unwrap().level;
        if let Some(card) = snap.card(&case.card) {
            let kind = snap.person(card.person).unwrap().kind;
            seen.insert((level, kind));
        }
    }
    for level in SecurityLevel::ALL {
        for kind in PersonKind::ALL {
            assert!(
                seen.contains(&(level, kind)),
                "no case for {level} × {kind:?}"
            );
        }
    }
}
