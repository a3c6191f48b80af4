//! Snapshot validation, lookup and serialisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tobira_firmware::*;

#[test]
fn the_city_hall_round_trips_through_json() {
    let snap = city_hall();
    let json = serde_json::to_string_pretty(&snap).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.version(), 7);
    assert_eq!(back.card(&card_of(SATO)).unwrap().person, SATO);
    assert!(back.card(&uid(UNKNOWN)).is_none());
    assert_eq!(back.bookings_of(KOBAYASHI).len(), 1);
    assert!(back.bookings_of(SATO).is_empty());
}

#[test]
fn lookups_work_whatever_order_the_data_came_in() {
    let mut data = city_hall_data();
    data.cards.reverse();
    data.people.reverse();
    data.doors.reverse();
    let snap = Snapshot::new(data).unwrap();
    for c in &city_hall_data().cards {
        assert_eq!(snap.card(&c.uid).unwrap().uid, c.uid);
    }
    assert_eq!(snap.door(MACHINE_DOOR).unwrap().inside, MACHINE);
}

#[test]
fn broken_snapshots_are_refused_with_what_is_wrong() {
    let mut dup = city_hall_data();
    dup.cards.push(dup.cards[0]);
    assert!(matches!(
        Snapshot::new(dup),
        Err(SnapshotError::Duplicate { what: "card", .. })
    ));

    let mut dangling = city_hall_data();
    dangling.cards[0].person = PersonId(999);
    let err = Snapshot::new(dangling).unwrap_err();
    assert_eq!(
        err.to_string(),
        "card 04A00001 refers to unknown person 999"
    );

    let mut door = city_hall_data();
    door.doors[0].inside = ZoneId(42);
    assert!(matches!(
        Snapshot::new(door),
        Err(SnapshotError::Dangling { what: "zone", .. })
    ));

    let mut grant = city_hall_data();
    grant.people[0].grants.push(GrantId(77));
    assert!(matches!(
        Snapshot::new(grant),
        Err(SnapshotError::Dangling { what: "grant", .. })
    ));

    let mut window = city_hall_data();
    window.schedules[0].windows[0].end = 0;
    assert!(matches!(
        Snapshot::new(window),
        Err(SnapshotError::Schedule(_))
    ));

    let mut booking = city_hall_data();
    booking.bookings[0].end = booking.bookings[0].start;
    assert!(matches!(
        Snapshot::new(booking),
        Err(SnapshotError::Booking(_))
    ));

    let mut path = city_hall_data();
    path.bookings[0].path.push(DoorId(600));
    assert!(matches!(
        Snapshot::new(path),
        Err(SnapshotError::Dangling { what: "door", .. })
    ));
}

#[test]
fn hostile_json_is_an_error_not_a_crash() {
    let good = serde_json::to_value(city_hall()).unwrap();
    let mut unknown_field = good.clone();
    unknown_field["surprise"] = serde_json::json!(1);
    assert!(serde_json::from_value::<Snapshot>(unknown_field).is_err());
    let mut bad_level = good.clone();
    bad_level["zones"][0]["level"] = serde_json::json!(9);
    assert!(serde_json::from_value::<Snapshot>(bad_level).is_err());
    let mut bad_uid = good.clone();
    bad_uid["cards"][0]["uid"] = serde_json::json!("04A0");
    assert!(serde_json::from_value::<Snapshot>(bad_uid).is_err());
    for junk in ["", "{", "[]", "null", "{\"version\":-1}"] {
        assert!(serde_json::from_str::<Snapshot>(junk).is_err(), "{junk}");
    }
}

#[test]
fn threat_levels_raise_zones_but_not_grounds() {
    let mut data = city_hall_data();
    data.threat = ThreatLevel::High;
    let snap = Snapshot::new(data).unwrap();
    let level = |z| snap.effective_level(snap.zone(z).unwrap());
    assert_eq!(level(GROUNDS), SecurityLevel::L0);
    assert_eq!(level(RECEPTION), SecurityLevel::L3);
    assert_eq!(level(OFFICE), SecurityLevel::L4);
    assert_eq!(level(MACHINE), SecurityLevel::L4);
}

#[test]
fn a_delta_marks_a_card_lost_and_moves_the_version() {
    let snap = city_hall();
    let mut lost = *snap.card(&card_of(SUZUKI)).unwrap();
    lost.state = CardState::Lost;
    let delta = SnapshotDelta {
        from: 7,
        to: 8,
        issued_at: Timestamp(snap.issued_at().0 + 1_000),
        cards: vec![lost],
        ..SnapshotDelta::default()
    };
    let next = snap.apply_delta(&delta).unwrap();
    assert_eq!(next.version(), 8);
    assert_eq!(next.card(&card_of(SUZUKI)).unwrap().state, CardState::Lost);
    assert_eq!(
        snap.card(&card_of(SUZUKI)).unwrap().state,
        CardState::Active
    );
    // The same delta twice, or one from another version, does not apply.
    assert!(matches!(
        next.apply_delta(&delta),
        Err(DeltaError::Version {
            held: 8,
            delta_from: 7
        })
    ));
    let backwards = SnapshotDelta {
        from: 8,
        to: 8,
        ..delta.clone()
    };
    assert!(matches!(
        next.apply_delta(&backwards),
        Err(DeltaError::Backwards { .. })
    ));
}

#[test]
fn a_delta_removes_people_with_their_cards_and_bookings_and_sets_threats() {
    let snap = city_hall();
    let delta = SnapshotDelta {
        from: 7,
        to: 9,
        removed_people: vec![KOBAYASHI],
        threat: Some(ThreatLevel::Elevated),
        zone_threats: vec![(MACHINE, ThreatLevel::Lockdown)],
        ..SnapshotDelta::default()
    };
    let next = snap.apply_delta(&delta).unwrap();
    assert!(next.person(KOBAYASHI).is_none());
    assert!(next.card(&card_of(KOBAYASHI)).is_none());
    assert!(next.bookings_of(KOBAYASHI).is_empty());
    assert_eq!(
        next.threat_for(next.zone(OFFICE).unwrap()),
        ThreatLevel::Elevated
    );
    assert_eq!(
        next.threat_for(next.zone(MACHINE).unwrap()),
        ThreatLevel::Lockdown
    );
    // A delta whose result is inconsistent is refused, and the old snapshot stays usable.
    let dangling = SnapshotDelta {
        from: 7,
        to: 10,
        cards: vec![Card {
            uid: uid(150),
            person: PersonId(4040),
            state: CardState::Active,
            valid_from: None,
            valid_until: None,
        }],
        ..SnapshotDelta::default()
    };
    assert!(matches!(
        snap.apply_delta(&dangling),
        Err(DeltaError::Snapshot(_))
    ));
}
