//! One store test suite, run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_firmware::{
    AccessRecord, CardState, Chain, ChainEpoch, ChainLink, DoorId, EventKind, PersonId, Reason,
    SealedEvent, Side, Snapshot, ThreatLevel, Timestamp, Warnings, ZoneId,
};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::store::policy::DeltaAnswer;
use tobira_web::store::resources::access::{BookingInput, GrantInput, GroupInput};
use tobira_web::store::resources::people::PersonInput;
use tobira_web::store::resources::zones::ZoneInput;
use tobira_web::store::resources::{Id, Level, ZoneSettings};
use tobira_web::store::{Backend, ChangeScope, Store, StoreError};

async fn a_snapshot_holds_exactly_the_controllers_doors_and_people(store: Store) {
    seed(&store).await;
    let data = store.snapshot_for(C1).await.unwrap();
    let snap = Snapshot::new(data.clone()).expect("a valid snapshot");
    // Schedules are read in the site's zone, not whatever the board is set to.
    assert_eq!(snap.time_zone(), Some("Asia/Tokyo"));
    let mut doors: Vec<u32> = data.doors.iter().map(|d| d.id.0).collect();
    doors.sort();
    assert_eq!(doors, vec![GATE as u32, MACHINE_DOOR as u32]);
    let mut people: Vec<u32> = data.people.iter().map(|p| p.id.0).collect();
    people.sort();
    assert_eq!(
        people,
        vec![SATO as u32, YAMADA as u32],
        "Ono only has the annex"
    );
    let sato = snap.person(PersonId(SATO as u32)).unwrap();
    assert_eq!(
        sato.enrollments.len(),
        2,
        "only modules 7 and 8 belong to controller 1"
    );
    assert!(snap.card(&uid_of(SATO).parse().unwrap()).is_some());
    assert!(snap.card(&uid_of(ONO).parse().unwrap()).is_none());
    assert_eq!(snap.version(), store.policy_version().version);
    assert!(snap
        .holidays()
        .is_holiday(tobira_firmware::LocalDate::new(2026, 11, 23).unwrap()));
    let other = store.snapshot_for(C2).await.unwrap();
    assert_eq!(other.doors.len(), 1);
    assert_eq!(
        other.people.iter().map(|p| p.id.0).collect::<Vec<_>>(),
        vec![ONO as u32]
    );
}

async fn deltas_apply_in_order_and_match_a_fresh_snapshot(store: Store) {
    seed(&store).await;
    let mut snap = Snapshot::new(store.snapshot_for(C1).await.unwrap()).unwrap();
    assert_eq!(
        store.delta_for(C1, snap.version()).await.unwrap(),
        DeltaAnswer::UpToDate
    );
    set_card_state(&store, &uid_of(SATO), "lost").await;
    set_card_state(&store, &uid_of(YAMADA), "suspended").await;
    // A change to someone this controller does not serve still moves the version.
    set_card_state(&store, &uid_of(ONO), "revoked").await;
    let DeltaAnswer::Delta(delta) = store.delta_for(C1, snap.version()).await.unwrap() else {
        panic!("expected a delta")
    };
    assert_eq!(delta.to, store.policy_version().version);
    assert!(delta
        .cards
        .iter()
        .all(|c| c.uid != uid_of(ONO).parse().unwrap()));
    snap = snap.apply_delta(&delta).unwrap();
    assert_eq!(
        snap.card(&uid_of(SATO).parse().unwrap()).unwrap().state,
        CardState::Lost
    );
    assert_eq!(
        snap.card(&uid_of(YAMADA).parse().unwrap()).unwrap().state,
        CardState::Suspended
    );
    // Then one more, from the new version.
    set_card_state(&store, &uid_of(SATO), "active").await;
    let DeltaAnswer::Delta(next) = store.delta_for(C1, snap.version()).await.unwrap() else {
        panic!("expected a delta")
    };
    snap = snap.apply_delta(&next).unwrap();
    let fresh = Snapshot::new(store.snapshot_for(C1).await.unwrap()).unwrap();
    assert_eq!(snap.version(), fresh.version());
    assert_eq!(snap.data().cards, fresh.data().cards);
    assert_eq!(snap.data().people, fresh.data().people);
}

async fn structural_changes_and_stale_versions_need_a_snapshot(store: Store) {
    seed(&store).await;
    let v = store.policy_version().version;
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE zones SET name = 'Server room' WHERE id = 12")
        .execute(&mut *tx)
        .await
        .unwrap();
    let nv = store
        .record_change(&mut tx, ChangeScope::Structure, "zone:12", false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(nv, false);
    assert!(matches!(
        store.delta_for(C1, v).await.unwrap(),
        DeltaAnswer::SnapshotNeeded(_)
    ));
    assert!(matches!(
        store.delta_for(C1, nv + 10).await.unwrap(),
        DeltaAnswer::SnapshotNeeded(_)
    ));
}

async fn threat_levels_travel_in_deltas(store: Store) {
    seed(&store).await;
    let snap = Snapshot::new(store.snapshot_for(C1).await.unwrap()).unwrap();
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE sites SET threat = 'lockdown' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    let v = store
        .record_change(&mut tx, ChangeScope::Threat, "site:1", true)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(v, true);
    assert_eq!(store.policy_version().last_urgent, v);
    let DeltaAnswer::Delta(delta) = store.delta_for(C1, snap.version()).await.unwrap() else {
        panic!("expected a delta")
    };
    let next = snap.apply_delta(&delta).unwrap();
    assert_eq!(next.data().threat, ThreatLevel::Lockdown);
}

/// A booking can bring someone with no grant (a citizen) into a controller's
/// concern: the delta carries that person and their card, so it applies.
async fn a_booking_delta_carries_the_booked_person(store: Store) {
    seed(&store).await;
    let citizen = citizen(&store).await;
    let card = "04C17123";
    store
        .create_card(
            "t",
            &input(serde_json::json!({"uid": card, "person_id": citizen})),
        )
        .await
        .unwrap();
    // The citizen and the card are older than the controller's policy.
    let snap = Snapshot::new(store.snapshot_for(C2).await.unwrap()).unwrap();
    assert!(snap.card(&card.parse().unwrap()).is_none());
    store
        .create_booking("t", &booking(citizen, ANNEX, &[]))
        .await
        .unwrap();
    let DeltaAnswer::Delta(delta) = store.delta_for(C2, snap.version()).await.unwrap() else {
        panic!("expected a delta")
    };
    let next = snap
        .apply_delta(&delta)
        .expect("the booking's delta applies");
    let person = PersonId(u32::try_from(citizen).unwrap());
    assert!(next.person(person).is_some());
    assert_eq!(next.card(&card.parse().unwrap()).unwrap().person, person);
    assert_eq!(next.bookings_of(person).len(), 1);
}

async fn the_same_batch_twice_is_stored_once(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let batch = events(&mut chain, 20, 1_763_000_000_000);
    let first = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(
        (first.stored, first.duplicates, first.stored_through),
        (20, 0, 20)
    );
    assert!(first.breaks.is_empty());
    let again = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(
        (again.stored, again.duplicates, again.stored_through),
        (0, 20, 20)
    );
    // Overlapping retry plus new events.
    let more = events(&mut chain, 5, 1_763_000_100_000);
    let mut overlap = batch[15..].to_vec();
    overlap.extend(more);
    let third = store.ingest(C1, ChainEpoch::FIRST, &overlap).await.unwrap();
    assert_eq!(
        (third.stored, third.duplicates, third.stored_through),
        (5, 5, 25)
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 25);
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alarms")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(open, 0);
    let (next, _) = store.controller_chain(C1, ChainEpoch::FIRST).await.unwrap();
    assert_eq!(next, 26);
}

async fn a_broken_chain_is_stored_and_raises_an_alarm(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let mut batch = events(&mut chain, 6, 1_763_000_000_000);
    // Someone deletes event 3 and re-links the rest: the link of 4 no longer
    // follows 2, as stored.
    let removed = batch.remove(2);
    assert_eq!(removed.event.seq, 3);
    let receipt = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(receipt.stored, 5, "nothing is dropped");
    assert!(!receipt.breaks.is_empty());
    assert!(
        receipt.breaks[0].contains("events 3 to 3 are missing"),
        "{:?}",
        receipt.breaks
    );
    let alarms: Vec<(String, String)> = sqlx::query_as("SELECT kind, message FROM alarms")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(alarms.iter().any(|(k, _)| k == "chain_break"), "{alarms:?}");
    // An altered event that was re-linked by the forger is caught by the link to its predecessor.
    let mut chain2 = Chain::genesis(C2);
    let mut b2 = events(&mut chain2, 3, 1_763_000_000_000);
    b2[1].event.at = tobira_firmware::Timestamp(0);
    let prev = b2[0].link;
    relink(prev, &mut b2[1]);
    let r2 = store.ingest(C2, ChainEpoch::FIRST, &b2).await.unwrap();
    assert!(
        r2.breaks.iter().any(|b| b.contains("event 3")),
        "{:?}",
        r2.breaks
    );
    // Sending a stored event again with other content is an alarm too.
    let mut forged = batch[0].clone();
    forged.event.at = tobira_firmware::Timestamp(42);
    relink(ChainLink::GENESIS, &mut forged);
    let r3 = store
        .ingest(C1, ChainEpoch::FIRST, &[forged])
        .await
        .unwrap();
    assert!(
        r3.breaks[0].contains("different content"),
        "{:?}",
        r3.breaks
    );
}

async fn batches_from_another_controller_or_out_of_order_are_refused(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C2);
    let batch = events(&mut chain, 3, 0);
    // Each refusal for its own reason, not just "some error".
    assert!(matches!(
        store.ingest(C1, ChainEpoch::FIRST, &batch).await,
        Err(StoreError::Invalid(m)) if m.contains("is from controller 2, not 1")
    ));
    let mut reversed = batch.clone();
    reversed.reverse();
    assert!(matches!(
        store.ingest(C2, ChainEpoch::FIRST, &reversed).await,
        Err(StoreError::Invalid(m)) if m.contains("increasing sequence order")
    ));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// An access record as a controller seals it, for hand-made forgeries.
fn access(door: i64, side: Side, person: Option<i64>, card: &str) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(door as u32),
        side,
        level: Some(tobira_firmware::SecurityLevel::L4),
        reason: Reason::Granted,
        person: person.map(|p| PersonId(p as u32)),
        card: card.parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

async fn alarms_of(store: &Store, kind: &str) -> Vec<(Option<i64>, String)> {
    sqlx::query_as("SELECT controller_id, message FROM alarms WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn forged_events_are_kept_out_of_occupancy_and_passages_and_raise_alarms(store: Store) {
    seed(&store).await;
    let now = tobira_web::store::now_ms();
    let t = now - 3_600_000;
    let mut chain = Chain::genesis(C1);
    let kinds = [
        // Genuine: Sato goes into the machine room and out again.
        (
            t,
            access(MACHINE_DOOR, Side::Entry, Some(SATO), &uid_of(SATO)),
        ),
        (
            t + 1_000,
            access(MACHINE_DOOR, Side::Exit, Some(SATO), &uid_of(SATO)),
        ),
        // Nobody central knows, with a card central never issued.
        (
            t + 2_000,
            access(MACHINE_DOOR, Side::Entry, Some(999), "04A0FFFF"),
        ),
        // Yamada, with Sato's card.
        (
            t + 3_000,
            access(MACHINE_DOOR, Side::Entry, Some(YAMADA), &uid_of(SATO)),
        ),
        // Sato, a day from now: would stay "the latest" passage for a day.
        (
            now + 86_400_000,
            access(MACHINE_DOOR, Side::Entry, Some(SATO), &uid_of(SATO)),
        ),
        // Ono into the annex, a door of controller 2.
        (
            t + 5_000,
            access(ANNEX_DOOR, Side::Entry, Some(ONO), &uid_of(ONO)),
        ),
    ];
    let batch: Vec<SealedEvent> = kinds
        .into_iter()
        .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
        .collect();
    let receipt = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(
        (receipt.stored, receipt.stored_through),
        (6, 6),
        "nothing is lost"
    );
    let machine = store
        .occupancy()
        .await
        .unwrap()
        .into_iter()
        .find(|z| z.zone_id.get() == MACHINE)
        .unwrap();
    assert!(machine.people.is_empty(), "{:?}", machine.people);
    // Controller 2 is not told that Ono is in the annex.
    let feed = store
        .passages_at(C2, None, now + 2 * 86_400_000)
        .await
        .unwrap();
    assert!(
        feed.passages.iter().all(|p| p.person.0 != ONO as u32),
        "{:?}",
        feed.passages
    );
    let alarms = alarms_of(&store, "ingest_suspect").await;
    assert_eq!(alarms.len(), 4, "{alarms:?}");
    assert!(alarms.iter().all(|(c, _)| *c == Some(1)), "{alarms:?}");
    for (alarm, words) in alarms.iter().zip([
        ["person 999", "card 04A0FFFF"],
        ["card 04A00064", "person 100"],
        ["future", "event 5"],
        ["door 22", "controller 2"],
    ]) {
        for w in words {
            assert!(alarm.1.contains(w), "{w:?} not in {:?}", alarm.1);
        }
    }
    // A clock that goes back by an hour within one controller's chain is an
    // alarm, but its events count: clocks get corrected.
    let mut chain2 = Chain::genesis(C2);
    let back = vec![
        chain2
            .seal(
                Timestamp(t),
                access(ANNEX_DOOR, Side::Entry, Some(ONO), &uid_of(ONO)),
            )
            .unwrap(),
        chain2
            .seal(
                Timestamp(t - 3_600_000),
                access(ANNEX_DOOR, Side::Exit, Some(ONO), &uid_of(ONO)),
            )
            .unwrap(),
    ];
    let r = store.ingest(C2, ChainEpoch::FIRST, &back).await.unwrap();
    assert_eq!(r.stored, 2);
    let clock = alarms_of(&store, "ingest_clock").await;
    assert_eq!(clock.len(), 1, "{clock:?}");
    assert_eq!(clock[0].0, Some(2));
    assert!(clock[0].1.contains("event 2"), "{clock:?}");
}

async fn a_late_fill_of_a_gap_is_checked_and_raises_its_alarms(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let mut all = events(&mut chain, 3, 1_763_000_000_000);
    all.push(
        chain
            .seal(
                Timestamp(1_763_000_010_000),
                EventKind::DoorForced {
                    door: DoorId(MACHINE_DOOR as u32),
                },
            )
            .unwrap(),
    );
    all.extend(events(&mut chain, 2, 1_763_000_020_000));
    // 1, 2, then 5 and 6: 3 and 4 are missing for now.
    let first = store
        .ingest(
            C1,
            ChainEpoch::FIRST,
            &[
                all[0].clone(),
                all[1].clone(),
                all[4].clone(),
                all[5].clone(),
            ],
        )
        .await
        .unwrap();
    assert!(
        first.breaks[0].contains("events 3 to 4 are missing"),
        "{:?}",
        first.breaks
    );
    // The door-forced event 4 arrives late: it fits and still raises its alarm.
    let late = store
        .ingest(C1, ChainEpoch::FIRST, &[all[3].clone()])
        .await
        .unwrap();
    assert_eq!(late.stored, 1);
    assert!(late.breaks.is_empty(), "{:?}", late.breaks);
    let forced = alarms_of(&store, "door_forced").await;
    assert_eq!(forced.len(), 1, "{forced:?}");
    // A forged event 3, linked to itself but to neither neighbour: kept, and named.
    let mut forged = all[2].clone();
    forged.event.at = Timestamp(1_763_000_001_234);
    relink(ChainLink([7; 32]), &mut forged);
    let r = store
        .ingest(C1, ChainEpoch::FIRST, &[forged])
        .await
        .unwrap();
    assert_eq!(r.stored, 1, "nothing is dropped");
    assert!(
        r.breaks
            .iter()
            .any(|b| b.contains("event 3") && b.contains("event 2")),
        "{:?}",
        r.breaks
    );
    assert!(
        r.breaks
            .iter()
            .any(|b| b.contains("event 3") && b.contains("event 4")),
        "{:?}",
        r.breaks
    );
    // Garbage for a link (that does not recompute from the content): named too.
    let mut chain2 = Chain::genesis(C2);
    let c2: Vec<SealedEvent> = (0..3)
        .map(|i| {
            chain2
                .seal(
                    Timestamp(1_763_000_000_000 + i),
                    access(ANNEX_DOOR, Side::Entry, Some(ONO), &uid_of(ONO)),
                )
                .unwrap()
        })
        .collect();
    store
        .ingest(C2, ChainEpoch::FIRST, &[c2[0].clone(), c2[2].clone()])
        .await
        .unwrap();
    let mut garbage = c2[1].clone();
    garbage.link = ChainLink([9; 32]);
    let r = store
        .ingest(C2, ChainEpoch::FIRST, &[garbage])
        .await
        .unwrap();
    assert!(
        r.breaks
            .iter()
            .any(|b| b.contains("event 2") && b.contains("altered")),
        "{:?}",
        r.breaks
    );
}

async fn a_conflicting_resend_is_never_covered_by_stored_through(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let batch = events(&mut chain, 5, 1_763_000_000_000);
    assert_eq!(
        store
            .ingest(C1, ChainEpoch::FIRST, &batch)
            .await
            .unwrap()
            .stored_through,
        5
    );
    // A board that numbers from 1 again after losing its data: other events
    // under numbers central already holds.
    let mut again = Chain::genesis(C1);
    let other = events(&mut again, 5, 1_763_100_000_000);
    let r = store
        .ingest(C1, ChainEpoch::FIRST, &other[2..])
        .await
        .unwrap();
    assert_eq!(r.stored_through, 2, "{r:?}");
    assert_eq!(r.conflicts, vec![3, 4, 5]);
    // The board retries (with back-off): the conflicts are named again, but
    // the open alarms are not raised a second time.
    let breaks = alarms_of(&store, "chain_break").await;
    assert_eq!(breaks.len(), 3, "{breaks:?}");
    let r = store
        .ingest(C1, ChainEpoch::FIRST, &other[2..])
        .await
        .unwrap();
    assert_eq!(r.conflicts, vec![3, 4, 5]);
    assert_eq!(alarms_of(&store, "chain_break").await, breaks);
    // The same exact events again are no conflict.
    let r = store
        .ingest(C1, ChainEpoch::FIRST, &batch[3..])
        .await
        .unwrap();
    assert_eq!((r.stored_through, r.duplicates), (5, 2));
    assert!(r.conflicts.is_empty());
}

async fn the_admin_audit_chain_shows_edits(store: Store) {
    seed(&store).await;
    store
        .create_token("alice", "hr-sync", Role::Facilities, 30)
        .await
        .unwrap();
    store
        .create_user("alice", "bob", "correct horse battery", Role::Security)
        .await
        .unwrap();
    let n = store.verify_audit().await.unwrap().unwrap();
    assert!(n >= 4, "controller adds, token, user: {n}");
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE admin_audit SET actor = 'mallory' WHERE seq = 2")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap(), Err(2));
}

async fn credentials_are_checked_and_stored_hashed(store: Store) {
    let (secret, _) = seed(&store).await;
    assert!(store.verify_controller(C1, &secret).await.unwrap());
    assert!(!store.verify_controller(C1, "wrong").await.unwrap());
    assert!(!store.verify_controller(C2, &secret).await.unwrap());
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM controllers WHERE id = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_ne!(stored, secret);
    let token = store
        .create_token("cli", "report", Role::Security, 1)
        .await
        .unwrap();
    let p = store.verify_token(&token).await.unwrap().unwrap();
    assert_eq!((p.actor.as_str(), p.role), ("token:report", Role::Security));
    assert!(store.verify_token("tbr_nope").await.unwrap().is_none());
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = 0")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        store.verify_token(&token).await.unwrap().is_none(),
        "expired"
    );
    store
        .create_user("cli", "carol", "a long enough secret", Role::Operator)
        .await
        .unwrap();
    assert!(store
        .verify_user("carol", "a long enough secret")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .verify_user("carol", "wrong password!!")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store
            .create_user("cli", "carol", "another long one!", Role::Admin)
            .await,
        Err(StoreError::Conflict(m)) if m.contains("exists")
    ));
    assert!(matches!(
        store.create_user("cli", "dave", "short", Role::Admin).await,
        Err(StoreError::Invalid(m)) if m.contains("at least 12 characters")
    ));
}

async fn user_and_token_names_refuse_invisible_characters(store: Store) {
    assert!(matches!(
        store.create_token("cli", "hr\u{202e}sync", Role::Security, 1).await,
        Err(StoreError::Invalid(m)) if m.contains("U+202E") && m.contains("token name")
    ));
    assert!(matches!(
        store
            .create_user("cli", "ali\u{200b}ce", "Vq8#mT2!rLp9@kZw", Role::Security)
            .await,
        Err(StoreError::Invalid(m)) if m.contains("U+200B") && m.contains("user name")
    ));
}

async fn obvious_passwords_are_refused(store: Store) {
    for obvious in [
        "aaaaaaaaaaaaaaaa",
        "password12345678",
        "qwertyuiopasdf",
        "tanakatanaka2026",
    ] {
        let refused = store
            .create_user("cli", "tanaka", obvious, Role::Security)
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(m)) if m.starts_with("password is too easy to guess")),
            "{obvious}: {refused:?}"
        );
    }
    store
        .create_user("cli", "tanaka", "Vq8#mT2!rLp9@kZw", Role::Security)
        .await
        .unwrap();
}

async fn concurrent_changes_get_distinct_versions(store: Store) {
    seed(&store).await;
    let start = store.policy_version().version;
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let v = store
                .record_change(&mut tx, ChangeScope::Booking, &format!("b{i}"), false)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            store.publish(v, false);
            v
        }));
    }
    let mut versions = Vec::new();
    for h in handles {
        versions.push(h.await.unwrap());
    }
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 8);
    assert_eq!(store.policy_version().version, start + 8);
}

fn input<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// The refusal of a meaningless combination, with its message.
fn meaningless<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Meaningless(m)) => m,
        other => panic!("expected a meaningless combination, got {other:?}"),
    }
}

/// A booking window far in the future: live whatever the clock says.
fn booking(person: i64, room: i64, path: &[i64]) -> BookingInput {
    input(
        serde_json::json!({"person_id": person, "room_zone_id": room, "path": path,
        "start_at": 4_000_000_000_000_i64, "end_at": 4_000_003_600_000_i64}),
    )
}

async fn citizen(store: &Store) -> i64 {
    store
        .create_person(
            "t",
            &input(serde_json::json!({"kind": "citizen", "name": "Citizen"})),
        )
        .await
        .unwrap()
        .id
        .get()
}

async fn an_opening_schedule_is_refused_below_and_above_level_1(store: Store) {
    seed(&store).await;
    for level in [0, 2, 3, 4] {
        let m = meaningless(
            store
                .create_zone(
                    "t",
                    &input(serde_json::json!({"site_id": SITE, "name": "x", "level": level, "opening_schedule_id": 40})),
                )
                .await,
        );
        assert!(m.contains("only at level 1"), "{m}");
    }
    // Raising the lobby to level 2 with its opening schedule kept is refused too.
    let m = meaningless(
        store
            .update_zone(
                "t",
                Id::new(LOBBY).unwrap(),
                &input(serde_json::json!({"site_id": SITE, "name": "Lobby", "level": 2, "opening_schedule_id": 40})),
            )
            .await,
    );
    assert!(m.contains("not at level 2"), "{m}");
    store
        .update_zone(
            "t",
            Id::new(LOBBY).unwrap(),
            &input(serde_json::json!({"site_id": SITE, "name": "Lobby", "level": 1, "opening_schedule_id": 40})),
        )
        .await
        .unwrap();
}

async fn level_0_refuses_settings_that_need_a_lock(store: Store) {
    seed(&store).await;
    let defaults = serde_json::to_value(ZoneSettings::for_level(Level::new(0).unwrap())).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut s = defaults.clone();
        s[key] = value;
        serde_json::json!({"site_id": SITE, "name": "Garden", "level": 0, "settings": s})
    };
    for (key, value, says) in [
        ("dual_custody", serde_json::json!(true), "dual custody"),
        (
            "anti_passback",
            serde_json::json!("hard"),
            "hard anti-passback",
        ),
        (
            "max_offline_age_ms",
            serde_json::json!(60_000),
            "maximum offline age",
        ),
        (
            "kinds",
            serde_json::json!({"staff": "alone", "contractor": "alone", "visitor": "alone", "citizen": "refused"}),
            "not citizen refused",
        ),
    ] {
        let m = meaningless(store.create_zone("t", &input(with(key, value))).await);
        assert!(m.contains(says), "{key}: {m}");
    }
    // Soft anti-passback still warns at an open door: allowed.
    let garden = store
        .create_zone(
            "t",
            &input(with("anti_passback", serde_json::json!("soft"))),
        )
        .await
        .unwrap();
    // Lowering a zone to level 0 with its level-4 settings is refused.
    let l4 = serde_json::to_value(ZoneSettings::for_level(Level::new(4).unwrap())).unwrap();
    meaningless(
        store
            .update_zone(
                "t",
                garden.id,
                &input(serde_json::json!({"site_id": SITE, "name": "Garden", "level": 0, "settings": l4})),
            )
            .await,
    );
}

async fn escorted_kinds_need_a_kind_that_enters_alone(store: Store) {
    seed(&store).await;
    let mut s = serde_json::to_value(ZoneSettings::for_level(Level::new(3).unwrap())).unwrap();
    s["kinds"] = serde_json::json!({"staff": "escorted", "contractor": "refused", "visitor": "escorted", "citizen": "refused"});
    let m = meaningless(
        store
            .update_zone(
                "t",
                Id::new(OFFICE).unwrap(),
                &input(serde_json::json!({"site_id": SITE, "name": "Office", "level": 3, "settings": s})),
            )
            .await,
    );
    assert!(
        m.contains("staff is escorted, but no kind enters alone"),
        "{m}"
    );
}

async fn bookings_open_level_1_and_2_rooms_only(store: Store) {
    seed(&store).await;
    let citizen = citizen(&store).await;
    for room in [OFFICE, MACHINE] {
        let m = meaningless(
            store
                .create_booking("t", &booking(citizen, room, &[]))
                .await,
        );
        assert!(m.contains("bookings open level 1 and 2 zones only"), "{m}");
    }
    let room = store
        .create_zone(
            "t",
            &input(serde_json::json!({"site_id": SITE, "name": "Meeting room", "level": 2})),
        )
        .await
        .unwrap()
        .id;
    let b = store
        .create_booking("t", &booking(citizen, room.get(), &[]))
        .await
        .unwrap();
    // Pointing the booking at the machine room, or raising its room to level 3, is refused.
    meaningless(
        store
            .update_booking("t", b.id, &booking(citizen, MACHINE, &[]))
            .await,
    );
    let m = meaningless(
        store
            .update_zone(
                "t",
                room,
                &input(serde_json::json!({"site_id": SITE, "name": "Meeting room", "level": 3})),
            )
            .await,
    );
    assert!(m.contains(&format!("booking {}", b.id)), "{m}");
    assert_eq!(
        store.zone(room).await.unwrap().level.get(),
        2,
        "rolled back"
    );
}

async fn booking_paths_lead_into_level_2_zones_at_most(store: Store) {
    seed(&store).await;
    let citizen = citizen(&store).await;
    // The office gate leads into the level-3 office.
    let m = meaningless(
        store
            .create_booking("t", &booking(citizen, ANNEX, &[GATE]))
            .await,
    );
    assert!(
        m.contains(&format!("door {GATE} leads into zone {OFFICE}")),
        "{m}"
    );
    store
        .create_booking("t", &booking(citizen, ANNEX, &[ANNEX_DOOR]))
        .await
        .unwrap();
    // Turning the annex door into a door to the office is refused while the booking uses it.
    let m = meaningless(
        store
            .update_door(
                "t",
                Id::new(ANNEX_DOOR).unwrap(),
                &input(serde_json::json!({"name": "Annex", "kind": "door", "outside_zone_id": LOBBY, "inside_zone_id": OFFICE})),
            )
            .await,
    );
    assert!(
        m.contains(&format!("door {ANNEX_DOOR} leads into zone {OFFICE}")),
        "{m}"
    );
}

async fn a_booked_room_must_admit_the_persons_kind(store: Store) {
    seed(&store).await;
    let citizen = citizen(&store).await;
    let mut s = serde_json::to_value(ZoneSettings::for_level(Level::new(2).unwrap())).unwrap();
    s["kinds"]["citizen"] = serde_json::json!("refused");
    let staff_room = store
        .create_zone(
            "t",
            &input(serde_json::json!({"site_id": SITE, "name": "Staff room", "level": 2, "settings": s})),
        )
        .await
        .unwrap()
        .id;
    let m = meaningless(
        store
            .create_booking("t", &booking(citizen, staff_room.get(), &[]))
            .await,
    );
    assert!(m.contains("refuses citizens"), "{m}");
    // A visitor's booking there is fine; the visitor then becoming a citizen is not.
    store
        .create_booking("t", &booking(YAMADA, staff_room.get(), &[]))
        .await
        .unwrap();
    meaningless(
        store
            .update_person(
                "t",
                Id::new(YAMADA).unwrap(),
                &input(serde_json::json!({"kind": "citizen", "name": "Yamada"})),
            )
            .await,
    );
    // Nor may the room start refusing visitors.
    s["kinds"]["visitor"] = serde_json::json!("refused");
    meaningless(
        store
            .update_zone(
                "t",
                staff_room,
                &input(serde_json::json!({"site_id": SITE, "name": "Staff room", "level": 2, "settings": s})),
            )
            .await,
    );
}

async fn ids_are_never_reused_after_a_delete(store: Store) {
    seed(&store).await;
    // The newest row of each kind is deleted; the next one gets a new id.
    let person =
        |name: &str| input::<PersonInput>(serde_json::json!({"kind": "staff", "name": name}));
    let a = store.create_person("t", &person("A")).await.unwrap().id;
    store.delete_person("t", a).await.unwrap();
    let b = store.create_person("t", &person("B")).await.unwrap().id;
    assert!(b > a, "person {b} after deleted {a}");

    let zone = input::<ZoneInput>(serde_json::json!({"site_id": SITE, "name": "Room", "level": 2}));
    let a = store.create_zone("t", &zone).await.unwrap().id;
    store.delete_zone("t", a).await.unwrap();
    assert!(store.create_zone("t", &zone).await.unwrap().id > a);

    let group = input::<GroupInput>(serde_json::json!({"name": "G"}));
    let a = store.create_group("t", &group).await.unwrap().id;
    store.delete_group("t", a).await.unwrap();
    let g = store.create_group("t", &group).await.unwrap().id;
    assert!(g > a);

    let grant = input::<GrantInput>(serde_json::json!({"group_id": g, "zones": [OFFICE]}));
    let a = store.create_grant("t", &grant).await.unwrap().id;
    store.delete_grant("t", a).await.unwrap();
    assert!(store.create_grant("t", &grant).await.unwrap().id > a);

    let a = store
        .create_booking("t", &booking(b.get(), ANNEX, &[]))
        .await
        .unwrap()
        .id;
    store.delete_booking("t", a).await.unwrap();
    assert!(
        store
            .create_booking("t", &booking(b.get(), ANNEX, &[]))
            .await
            .unwrap()
            .id
            > a
    );

    // Every table with an id column is covered, not only those above.
    match store.backend() {
        Backend::Sqlite => {
            let reusing: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND upper(sql) LIKE '%INTEGER PRIMARY KEY%' AND upper(sql) NOT LIKE '%AUTOINCREMENT%'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            assert!(reusing.is_empty(), "{reusing:?}");
        }
        Backend::Postgres => {
            let reusing: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'id' AND is_identity = 'NO'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            assert!(reusing.is_empty(), "{reusing:?}");
        }
    }
    // Nothing was lost on the way: the seeded city hall is all there.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 3);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM enrollments")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn the_sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (store, dir) = support::sqlite().await;
    seed(&store).await;
    for file in ["central.db", "central.db-wal", "central.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
}

async fn an_existing_sqlite_database_keeps_its_rows_and_stops_reusing_ids() {
    // A database written before the fix: people 1..3, person 3 deleted.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    sqlx::any::install_default_drivers();
    {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut m = sqlx::migrate!("../migrations/sqlite");
        m.migrations = m
            .migrations
            .iter()
            .filter(|m| m.version == 1)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        m.run(&mut *conn).await.unwrap();
        for sql in [
            "INSERT INTO people (id, kind, name, created_at, changed_version) VALUES (1, 'staff', 'A', 0, 0), (2, 'staff', 'B', 0, 0), (3, 'staff', 'C', 0, 0)",
            "INSERT INTO access_groups (id, name) VALUES (1, 'g')",
            "INSERT INTO group_members (group_id, person_id) VALUES (1, 1), (1, 2)",
            "INSERT INTO enrollments (person_id, module_id, slot, enrolled_at) VALUES (2, 7, 1, 0)",
            "DELETE FROM people WHERE id = 3",
        ] {
            sqlx::query(sql).execute(&mut *conn).await.unwrap();
        }
        // Without the fix, SQLite would now give id 3 again.
        drop(conn);
        pool.close().await;
    }
    let store = Store::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 2, "memberships survive the rebuild of people");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM enrollments")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let c = store
        .create_person(
            "t",
            &input(serde_json::json!({"kind": "staff", "name": "D"})),
        )
        .await
        .unwrap();
    assert_eq!(
        c.id.get(),
        3,
        "the rebuild cannot know of ids deleted before it"
    );
    store.delete_person("t", c.id).await.unwrap();
    let d = store
        .create_person(
            "t",
            &input(serde_json::json!({"kind": "staff", "name": "E"})),
        )
        .await
        .unwrap();
    assert_eq!(d.id.get(), 4, "but from now on no id comes back");
    // Foreign keys are enforced again on the store's connections.
    let orphan = sqlx::query("INSERT INTO group_members (group_id, person_id) VALUES (1, 99)")
        .execute(store.pool())
        .await;
    assert!(orphan.is_err());
}

#[tokio::test]
async fn an_existing_sqlite_database_is_rebuilt_in_place() {
    an_existing_sqlite_database_keeps_its_rows_and_stops_reusing_ids().await;
}

async fn enrollment_jobs_go_to_the_modules_controller_and_record_the_slot_it_reports(store: Store) {
    use tobira_protocol::{EnrollmentFailure, EnrollmentOutcome, EnrollmentTask};
    use tobira_web::store::resources::enrollment_jobs::{EnrollmentRequest, JobKind, JobState};
    use tobira_web::store::resources::Id;
    use tobira_web::store::StoreError;
    seed(&store).await;
    let id = |v: i64| Id::new(v).unwrap();
    let ask = |person: i64, module: i64| EnrollmentRequest {
        person_id: id(person),
        module_id: id(module),
    };
    // No such person; a module no controller's door has; already enrolled.
    assert!(matches!(
        store.request_enrollment("admin", &ask(999, 7)).await,
        Err(StoreError::NotFound(m)) if m.contains("999")
    ));
    assert!(matches!(
        store.request_enrollment("admin", &ask(YAMADA, 42)).await,
        Err(StoreError::Invalid(m)) if m.contains("module 42")
    ));
    assert!(matches!(
        store.request_enrollment("admin", &ask(SATO, 7)).await,
        Err(StoreError::Conflict(m)) if m.contains("already enrolled")
    ));

    let job = store
        .request_enrollment("admin", &ask(YAMADA, 7))
        .await
        .unwrap();
    assert_eq!((job.kind, job.state), (JobKind::Enroll, JobState::Pending));
    assert_eq!(job.controller_id.get(), 1);
    assert!(matches!(
        store.request_enrollment("admin", &ask(YAMADA, 7)).await,
        Err(StoreError::Conflict(m)) if m.contains("pending")
    ));
    // Controller 1 drives module 7 and gets the job, with the slots central
    // has recorded there; controller 2 gets nothing.
    assert!(store
        .pending_enrollment_jobs(C2)
        .await
        .unwrap()
        .jobs
        .is_empty());
    let jobs = store.pending_enrollment_jobs(C1).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].task,
        EnrollmentTask::Enroll {
            person: PersonId(YAMADA as u32),
            taken: vec![3]
        }
    );
    let wire_id = jobs[0].id;
    // Not controller 2's job to report; a delete outcome does not fit.
    assert!(matches!(
        store
            .finish_enrollment_job(C2, wire_id, &EnrollmentOutcome::Enrolled { slot: 4 })
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .finish_enrollment_job(C1, wire_id, &EnrollmentOutcome::Deleted)
            .await,
        Err(StoreError::Invalid(_))
    ));
    let before = store.policy_version().version;
    store
        .finish_enrollment_job(C1, wire_id, &EnrollmentOutcome::Enrolled { slot: 4 })
        .await
        .unwrap();
    assert!(
        store.policy_version().version > before,
        "the enrollment is a policy change"
    );
    let done = store.enrollment_job(job.id).await.unwrap();
    assert_eq!((done.state, done.slot), (JobState::Done, Some(4)));
    let recorded = store
        .list_enrollments(Some(id(YAMADA)), Some(id(7)), None, None)
        .await
        .unwrap();
    assert_eq!(recorded.items.len(), 1);
    assert_eq!(recorded.items[0].slot, 4);
    assert!(matches!(
        store
            .finish_enrollment_job(C1, wire_id, &EnrollmentOutcome::Deleted)
            .await,
        Err(StoreError::Conflict(m)) if m.contains("already done")
    ));
    assert!(store
        .pending_enrollment_jobs(C1)
        .await
        .unwrap()
        .jobs
        .is_empty());

    // A failure is recorded with its reason.
    let again = store
        .request_enrollment("admin", &ask(YAMADA, 8))
        .await
        .unwrap();
    let wire = store.pending_enrollment_jobs(C1).await.unwrap().jobs[0].id;
    let failure = EnrollmentOutcome::Failed {
        reason: EnrollmentFailure::Mismatch,
        detail: "two fingers".into(),
    };
    store
        .finish_enrollment_job(C1, wire, &failure)
        .await
        .unwrap();
    let failed = store.enrollment_job(again.id).await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("mismatch"));

    // Deleting the enrollment queues the clearing of its slot for controller 1.
    store.delete_enrollment("admin", id(7), 4).await.unwrap();
    let jobs = store.pending_enrollment_jobs(C1).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].task, EnrollmentTask::Delete { slot: 4 });
    store
        .finish_enrollment_job(C1, jobs[0].id, &EnrollmentOutcome::Deleted)
        .await
        .unwrap();
    let all = store
        .list_enrollment_jobs(Some(id(YAMADA)), None, None, None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 3);
    assert!(all.items.iter().all(|j| j.state != JobState::Pending));

    // Every step is in the admin audit log.
    let audit = store.audit_entries(None, 500).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in [
        "enrollment.request",
        "enrollment.create",
        "enrollment.fail",
        "enrollment.delete",
        "enrollment.clear",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn passages_of_other_controllers_reach_the_controllers_of_the_same_zones(store: Store) {
    use tobira_web::store::passages::{PassageCursor, SETTLE_MS};
    seed(&store).await;
    // Controller 2 records Sato entering the machine room and leaving it
    // again, through a second door of the zone that it drives.
    sqlx::query("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader) VALUES (23, 'Machine room back', 'door', 11, 12, 2, '{}')")
        .execute(store.pool())
        .await
        .unwrap();
    let mut chain = Chain::genesis(C2);
    let batch: Vec<SealedEvent> = (0..4)
        .map(|i| {
            let side = if i % 2 == 0 { Side::Entry } else { Side::Exit };
            chain
                .seal(
                    Timestamp(1_763_000_000_000 + i * 1000),
                    access(23, side, Some(SATO), &uid_of(SATO)),
                )
                .unwrap()
        })
        .collect();
    store
        .ingest(C2, ChainEpoch::FIRST, &batch[..3])
        .await
        .unwrap();
    let later = tobira_web::store::now_ms() + 10 * SETTLE_MS;
    let machine = ZoneId(MACHINE as u32);
    let office = ZoneId(OFFICE as u32);
    let sato = PersonId(SATO as u32);

    // A controller starting afresh gets the latest passage per person and zone.
    let first = store.passages_at(C1, None, later).await.unwrap();
    assert_eq!(first.passages.len(), 1, "{first:?}");
    assert_eq!(
        (
            first.passages[0].zone,
            first.passages[0].person,
            first.passages[0].inside
        ),
        (machine, sato, true),
        "entry, exit, entry: inside"
    );
    // Its own passages are not handed back to the controller that recorded them.
    assert!(store
        .passages_at(C2, None, later)
        .await
        .unwrap()
        .passages
        .is_empty());

    // Then only what arrives after the cursor, with both zones of the door.
    let cursor = PassageCursor::parse(&first.next).unwrap();
    assert!(store
        .passages_at(C1, Some(cursor), later)
        .await
        .unwrap()
        .passages
        .is_empty());
    // Sato leaves through controller 2's reader.
    store
        .ingest(C2, ChainEpoch::FIRST, &batch[3..])
        .await
        .unwrap();
    let now = tobira_web::store::now_ms();
    assert!(
        store
            .passages_at(C1, Some(cursor), now)
            .await
            .unwrap()
            .passages
            .is_empty(),
        "nothing is handed out before it has settled"
    );
    let next = store
        .passages_at(C1, Some(cursor), now + 10 * SETTLE_MS)
        .await
        .unwrap();
    let got: Vec<(ZoneId, PersonId, bool)> = next
        .passages
        .iter()
        .map(|p| (p.zone, p.person, p.inside))
        .collect();
    assert_eq!(got, vec![(machine, sato, false), (office, sato, true)]);
    assert!(!next.more);
    assert!(PassageCursor::parse(&next.next).unwrap() > cursor);
    assert!(PassageCursor::parse("nonsense").is_err());
}

async fn siem_sources_hand_out_rows_after_a_durable_cursor(store: Store) {
    use tobira_web::store::now_ms;
    use tobira_web::store::passages::SETTLE_MS;
    use tobira_web::store::siem::{Position, SOURCES};
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(
            C1,
            ChainEpoch::FIRST,
            &events(&mut chain, 5, 1_763_000_000_000),
        )
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    store
        .raise_alarm(
            &mut tx,
            1_763_000_000_000,
            "door_forced",
            Some(1),
            Some(GATE),
            "forced",
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let event = SOURCES.iter().find(|s| s.name == "event").unwrap();
    let alarm = SOURCES.iter().find(|s| s.name == "alarm").unwrap();
    let audit = SOURCES.iter().find(|s| s.name == "audit").unwrap();
    let now = now_ms();
    // Events are handed out only once settled.
    assert!(store
        .siem_rows(event, Position::Start, 10, now)
        .await
        .unwrap()
        .is_empty());
    let later = now + 2 * SETTLE_MS;
    let first = store
        .siem_rows(event, Position::Start, 3, later)
        .await
        .unwrap();
    let ids: Vec<&str> = first.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids, ["1.1", "1.2", "1.3"]);
    assert!(first
        .iter()
        .all(|r| r.record.fields.iter().all(|(name, _)| *name != "card")));
    // The cursor survives a restart of the forwarder (it is in the database).
    assert_eq!(
        store.siem_cursor("tcp://siem:6514", event).await.unwrap(),
        Position::Start
    );
    store
        .set_siem_cursor("tcp://siem:6514", event, first[2].position)
        .await
        .unwrap();
    let cursor = store.siem_cursor("tcp://siem:6514", event).await.unwrap();
    assert_eq!(cursor, first[2].position);
    assert_eq!(
        store.siem_cursor("file:/other", event).await.unwrap(),
        Position::Start,
        "each target has its own cursor"
    );
    let rest = store.siem_rows(event, cursor, 10, later).await.unwrap();
    let ids: Vec<&str> = rest.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids, ["1.4", "1.5"]);
    // Sources with ascending ids.
    let alarms = store
        .siem_rows(alarm, Position::Start, 10, now)
        .await
        .unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].record.message, "forced");
    assert!(alarms[0]
        .record
        .fields
        .contains(&("alarm", "door_forced".into())));
    store
        .set_siem_cursor("tcp://siem:6514", alarm, alarms[0].position)
        .await
        .unwrap();
    let after = store.siem_cursor("tcp://siem:6514", alarm).await.unwrap();
    assert!(store
        .siem_rows(alarm, after, 10, now)
        .await
        .unwrap()
        .is_empty());
    let entries = store
        .siem_rows(audit, Position::Start, 1000, now)
        .await
        .unwrap();
    let seqs: Vec<String> = entries.iter().map(|r| r.record.id.clone()).collect();
    let expected: Vec<String> = (1..=entries.len()).map(|n| n.to_string()).collect();
    assert_eq!(seqs, expected);
    // Signed checkpoints go whole, signature included: the off-site copy is
    // what shows a rewrite by someone who holds the key.
    let checkpoint = SOURCES.iter().find(|s| s.name == "checkpoint").unwrap();
    let run = store
        .make_checkpoints(&PolicySigner::generate(), now)
        .await
        .unwrap();
    let sent = store
        .siem_rows(checkpoint, Position::Start, 100, now)
        .await
        .unwrap();
    assert_eq!(sent.len(), run.made.len());
    assert!(!sent.is_empty());
    for (row, made) in sent.iter().zip(&run.made) {
        assert_eq!(row.record.id, made.id.to_string());
        let field = |name: &str| {
            row.record
                .fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(field("chain"), Some(made.chain.clone()));
        assert_eq!(field("head"), Some(made.head.clone()));
        assert_eq!(field("count"), Some(made.count.to_string()));
        assert!(field("signature").is_some_and(|s| s.len() == 128));
    }
}

// --- Tamper evidence (issue 11, section 2) ---------------------------------

/// The admin audit link, as a forger with the database recomputes it.
fn forged_audit_link(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"tobira-audit-v1");
    for part in [
        prev,
        &seq.to_string(),
        &at.to_string(),
        actor,
        action,
        target,
        detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

async fn exec(store: &Store, sql: &str) {
    let mut tx = store.begin().await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Some admin history: controller adds (seed), three tokens.
async fn admin_history(store: &Store) {
    for name in ["hr-sync", "badge-printer", "siem"] {
        store
            .create_token("alice", name, Role::Security, 30)
            .await
            .unwrap();
    }
}

const T0: i64 = 1_764_000_000_000;

async fn deleting_the_newest_admin_audit_rows_after_a_checkpoint_is_detected(store: Store) {
    seed(&store).await;
    admin_history(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let run = store.make_checkpoints(&signer, T0).await.unwrap();
    let cp = run
        .made
        .iter()
        .find(|c| c.chain == "admin_audit")
        .unwrap()
        .clone();
    assert_eq!(cp.count, 5, "two controllers and three tokens");
    assert!(store.verify_chains(&key).await.unwrap().ok);

    exec(&store, "DELETE FROM admin_audit WHERE seq >= 4").await;
    // What main had: the unkeyed chain alone still checks out.
    assert_eq!(store.verify_audit().await.unwrap(), Ok(3));
    let v = store.verify_chains(&key).await.unwrap();
    assert!(!v.ok);
    let p = &v.problems[0];
    assert_eq!(
        (p.chain.as_str(), p.seq, p.checkpoint),
        ("admin_audit", Some(5), Some(cp.id))
    );
    assert!(p.what.contains("ends at record 3"), "{p}");
    // And the damage is not signed over by the next checkpoint.
    store
        .create_token("mallory", "cover", Role::Admin, 1)
        .await
        .unwrap();
    let run = store.make_checkpoints(&signer, T0 + 1).await.unwrap();
    assert!(run.made.iter().all(|c| c.chain != "admin_audit"), "{run:?}");
    assert_eq!(run.refused.len(), 1, "{run:?}");
    let alarms: Vec<String> =
        sqlx::query_scalar("SELECT message FROM alarms WHERE kind = 'checkpoint_refused'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert!(alarms[0].contains("admin_audit"), "{alarms:?}");
}

async fn deleting_admin_audit_rows_and_recomputing_the_chain_is_detected(store: Store) {
    seed(&store).await;
    admin_history(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let cp = store.make_checkpoints(&signer, T0).await.unwrap().made[0].clone();
    assert_eq!((cp.chain.as_str(), cp.count), ("admin_audit", 5));

    // The forger removes entry 3, renumbers and re-links the rest, and adds
    // one harmless-looking entry so that the count matches the checkpoint.
    let entries = {
        let mut e = store.audit_entries(None, 500).await.unwrap();
        e.reverse();
        e
    };
    let mut tx = store.begin().await.unwrap();
    sqlx::query("DELETE FROM admin_audit")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut prev = tobira_web::store::audit::GENESIS.to_string();
    for (i, e) in entries.iter().filter(|e| e.seq != 3).enumerate() {
        let seq = i as i64 + 1;
        let link = forged_audit_link(&prev, seq, e.at, &e.actor, &e.action, &e.target, &e.detail);
        sqlx::query("INSERT INTO admin_audit (seq, at, actor, action, target, detail, prev, link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(seq).bind(e.at).bind(e.actor.clone()).bind(e.action.clone())
            .bind(e.target.clone()).bind(e.detail.clone()).bind(prev.clone()).bind(link.clone())
            .execute(&mut *tx).await.unwrap();
        prev = link;
    }
    tx.commit().await.unwrap();
    store
        .create_token("alice", "filler", Role::Security, 1)
        .await
        .unwrap();
    // What main had: the recomputed unkeyed chain checks out.
    assert_eq!(store.verify_audit().await.unwrap(), Ok(5));
    let v = store.verify_chains(&key).await.unwrap();
    assert!(!v.ok);
    let p = &v.problems[0];
    assert_eq!(
        (p.chain.as_str(), p.seq, p.checkpoint),
        ("admin_audit", Some(5), Some(cp.id))
    );
    assert!(p.what.contains("rewritten"), "{p}");
}

async fn an_event_rows_person_card_and_door_that_disagree_with_its_body_are_named(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 10, T0))
        .await
        .unwrap();
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    store.make_checkpoints(&signer, T0).await.unwrap();
    assert!(store.verify_chains(&key).await.unwrap().ok);

    let edits = [
        ("person_id = 101", "person_id is 101, but its body says 100"),
        (
            "card = '04A00065'",
            "card is 04A00065, but its body says 04A00064",
        ),
        ("door_id = 20", "door_id is 20, but its body says 21"),
    ];
    for (set, named) in edits {
        exec(
            &store,
            &format!("UPDATE events SET {set} WHERE controller_id = 1 AND seq = 4"),
        )
        .await;
        // What main had: no check of stored events at all; the audit check passes.
        assert!(store.verify_audit().await.unwrap().is_ok());
        let v = store.verify_chains(&key).await.unwrap();
        assert!(!v.ok, "{set}");
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        let p = &v.problems[0];
        assert_eq!((p.chain.as_str(), p.seq), ("controller:1", Some(4)));
        assert_eq!(p.what, named);
        // Put it back for the next edit.
        exec(&store, "UPDATE events SET person_id = 100, card = '04A00064', door_id = 21 WHERE controller_id = 1 AND seq = 4").await;
    }
    assert!(store.verify_chains(&key).await.unwrap().ok);
}

async fn deleting_a_controllers_newest_events_after_a_checkpoint_is_detected(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 10, T0))
        .await
        .unwrap();
    let mut other = Chain::genesis(C2);
    store
        .ingest(C2, ChainEpoch::FIRST, &events(&mut other, 3, T0))
        .await
        .unwrap();
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let run = store.make_checkpoints(&signer, T0).await.unwrap();
    let cp = run
        .made
        .iter()
        .find(|c| c.chain == "controller:1")
        .unwrap()
        .clone();
    assert_eq!(cp.count, 10);

    exec(
        &store,
        "DELETE FROM events WHERE controller_id = 1 AND seq > 7",
    )
    .await;
    // What main had: nothing looked at stored events; the audit check passes.
    assert!(store.verify_audit().await.unwrap().is_ok());
    let v = store.verify_chains(&key).await.unwrap();
    assert!(!v.ok);
    assert_eq!(
        v.problems.len(),
        1,
        "controller 2 is intact: {:?}",
        v.problems
    );
    let p = &v.problems[0];
    assert_eq!(
        (p.chain.as_str(), p.seq, p.checkpoint),
        ("controller:1", Some(10), Some(cp.id))
    );
    assert!(p.what.contains("ends at record 7"), "{p}");
    // Every row gone: the checkpoint still names the chain.
    exec(&store, "DELETE FROM events WHERE controller_id = 1").await;
    let v = store.verify_chains(&key).await.unwrap();
    assert!(
        v.problems[0].what.contains("has no records"),
        "{:?}",
        v.problems
    );
}

async fn a_forged_checkpoint_is_detected(store: Store) {
    seed(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let made = store.make_checkpoints(&signer, T0).await.unwrap().made;
    assert_eq!(made.len(), 1);
    // Someone with the database but not the key signs the head with their own key.
    let forger = PolicySigner::generate();
    let (count, head) = (made[0].count, made[0].head.clone());
    let claim = tobira_protocol::CheckpointClaim {
        chain: "admin_audit".into(),
        count: count as u64,
        head: head.clone(),
        at: T0 + 5,
    };
    let signature = forger.sign_checkpoint(&claim).unwrap();
    let mut tx = store.begin().await.unwrap();
    sqlx::query("INSERT INTO checkpoints (chain, count, head, at, signature) VALUES ('admin_audit', $1, $2, $3, $4)")
        .bind(count)
        .bind(head)
        .bind(T0 + 5)
        .bind(signature)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let forged: i64 = sqlx::query_scalar("SELECT MAX(id) FROM checkpoints")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(store.verify_audit().await.unwrap().is_ok());
    let v = store.verify_chains(&key).await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.problems[0].checkpoint, Some(forged));
    assert!(
        v.problems[0].what.contains("does not verify"),
        "{:?}",
        v.problems
    );
    // A checkpoint for a chain that does not exist is named too.
    exec(
        &store,
        "UPDATE checkpoints SET chain = 'door:9' WHERE id = (SELECT MAX(id) FROM checkpoints)",
    )
    .await;
    let v = store.verify_chains(&key).await.unwrap();
    assert_eq!(v.problems[0].chain, "door:9", "{:?}", v.problems);
}

async fn recorded_gaps_pass_unrecorded_ones_fail_and_unmoved_heads_get_no_checkpoint(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let mut batch = events(&mut chain, 8, T0);
    // Event 3 never reaches central: ingest records the gap.
    batch.remove(2);
    store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let first = store.make_checkpoints(&signer, T0).await.unwrap();
    assert_eq!(first.made.len(), 2, "{first:?}");
    let again = store.make_checkpoints(&signer, T0 + 600_000).await.unwrap();
    assert!(again.made.is_empty(), "no head moved: {again:?}");
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 1, T0 + 60_000))
        .await
        .unwrap();
    let moved = store
        .make_checkpoints(&signer, T0 + 1_200_000)
        .await
        .unwrap();
    assert_eq!(
        moved
            .made
            .iter()
            .map(|c| (c.chain.as_str(), c.count))
            .collect::<Vec<_>>(),
        vec![("controller:1", 9)]
    );
    let listed = store.list_checkpoints(None, 100).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id));

    let v = store.verify_chains(&key).await.unwrap();
    assert!(v.ok, "{:?}", v.problems);
    let c1 = v.chains.iter().find(|c| c.chain == "controller:1").unwrap();
    assert_eq!(c1.records, 8);
    assert_eq!(c1.head, Some(9));
    assert_eq!(
        c1.gaps,
        vec![tobira_web::store::verify::Gap { from: 3, to: 3 }]
    );
    assert_eq!(c1.reaches_checkpoint, Some(listed[2].id));

    // A row deleted from the middle is a gap no alarm recorded: tampering.
    exec(
        &store,
        "DELETE FROM events WHERE controller_id = 1 AND seq = 6",
    )
    .await;
    let v = store.verify_chains(&key).await.unwrap();
    let p = &v.problems[0];
    assert_eq!((p.chain.as_str(), p.seq), ("controller:1", Some(7)));
    assert!(p.what.contains("records 6 to 6 are missing"), "{p}");
}

const DAY: i64 = 86_400_000;

/// Who is in the machine room, by person id.
async fn in_machine_room(store: &Store) -> Vec<i64> {
    store
        .occupancy()
        .await
        .unwrap()
        .into_iter()
        .find(|z| z.zone_id.get() == MACHINE)
        .unwrap()
        .people
        .iter()
        .map(|p| p.person_id)
        .collect()
}

async fn seqs_of(store: &Store, controller: i64) -> Vec<i64> {
    sqlx::query_scalar("SELECT seq FROM events WHERE controller_id = $1 ORDER BY seq")
        .bind(controller)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn retention_archives_old_events_and_verify_passes_across_the_cut(store: Store) {
    use tobira_web::store::queries::EventFilter;
    use tobira_web::store::retention::verify_archive_file;
    seed(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let old = T0 - 400 * DAY;
    let mut chain = Chain::genesis(C1);
    // Records 1-30 a year and more ago, a checkpoint at 20 between them;
    // records 31-41 recent (the last one an entry: Sato is inside).
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 20, old))
        .await
        .unwrap();
    let early = store.make_checkpoints(&signer, old + DAY).await.unwrap();
    let early = early
        .made
        .iter()
        .find(|c| c.chain == "controller:1")
        .unwrap()
        .clone();
    assert_eq!(early.count, 20);
    store
        .ingest(
            C1,
            ChainEpoch::FIRST,
            &events(&mut chain, 10, old + 2 * DAY),
        )
        .await
        .unwrap();
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 11, T0 - DAY))
        .await
        .unwrap();
    let mut other = Chain::genesis(C2);
    store
        .ingest(C2, ChainEpoch::FIRST, &events(&mut other, 5, old))
        .await
        .unwrap();
    let occupied = in_machine_room(&store).await;
    assert_eq!(occupied, vec![SATO]);

    let dir = tempfile::tempdir().unwrap();
    let archives = dir.path().join("archive");
    let run = store
        .apply_retention(&signer, &archives, T0 - 365 * DAY, T0)
        .await
        .unwrap();
    assert!(run.refused.is_empty(), "{run:?}");
    let cuts: Vec<(&str, i64, i64, i64)> = run
        .cuts
        .iter()
        .map(|c| (c.chain.as_str(), c.first_seq, c.through_seq, c.count))
        .collect();
    // Controller 2's newest event stays, old as it is.
    assert_eq!(
        cuts,
        vec![("controller:1", 1, 30, 30), ("controller:2", 1, 4, 4)]
    );
    assert_eq!(seqs_of(&store, 1).await, (31..=41).collect::<Vec<_>>());
    assert_eq!(seqs_of(&store, 2).await, vec![5]);

    // The archive is whole, owner-only, and checks out on its own.
    let file = archives.join(&run.cuts[0].archive);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let report = verify_archive_file(&file, &key).unwrap();
    assert_eq!(
        (
            report.manifest.first,
            report.manifest.last,
            report.manifest.count
        ),
        (1, 30, 30)
    );
    assert!(verify_archive_file(&file, &PolicySigner::generate().public_key()).is_err());

    // Verify passes across the cut; the checkpoint at 20 is covered by it.
    let v = store.verify_chains(&key).await.unwrap();
    assert!(v.ok, "{:?}", v.problems);
    let c1 = v.chains.iter().find(|c| c.chain == "controller:1").unwrap();
    assert_eq!((c1.archived, c1.records, c1.head), (30, 11, Some(41)));
    assert!(store.check_archives(&archives).await.unwrap().is_empty());
    // New checkpoints are made past the cut, none refused; a second run cuts nothing.
    let run2 = store.make_checkpoints(&signer, T0).await.unwrap();
    assert!(run2.refused.is_empty(), "{run2:?}");
    assert!(run2
        .made
        .iter()
        .any(|c| c.chain == "controller:1" && c.count == 41));
    let again = store
        .apply_retention(&signer, &archives, T0 - 365 * DAY, T0 + 1)
        .await
        .unwrap();
    assert!(
        again.cuts.is_empty() && again.refused.is_empty(),
        "{again:?}"
    );
    assert!(store.verify_chains(&key).await.unwrap().ok);

    // Occupancy and event search keep working on what stays.
    assert_eq!(in_machine_room(&store).await, occupied);
    let found = store
        .search_events(&EventFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(
        found.items.len(),
        12,
        "11 of controller 1, 1 of controller 2"
    );

    // A tampered archive line fails its check; the cut notices it too.
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = text.replacen("\"received_at\":", "\"received_at\":1", 1);
    assert_ne!(tampered, text);
    std::fs::write(&file, &tampered).unwrap();
    let err = verify_archive_file(&file, &key).unwrap_err().to_string();
    assert!(err.contains("SHA-256"), "{err}");
    let problems = store.check_archives(&archives).await.unwrap();
    assert!(problems[0].what.contains("altered"), "{problems:?}");
    // A deleted archive is named.
    std::fs::remove_file(&file).unwrap();
    let problems = store.check_archives(&archives).await.unwrap();
    assert!(problems[0].what.contains("is missing"), "{problems:?}");
}

async fn deleting_the_first_row_after_a_cut_is_detected(store: Store) {
    seed(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let old = T0 - 400 * DAY;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 10, old))
        .await
        .unwrap();
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 5, T0 - DAY))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = store
        .apply_retention(&signer, dir.path(), T0 - 365 * DAY, T0)
        .await
        .unwrap();
    assert_eq!(run.cuts.len(), 1, "{run:?}");
    assert!(store.verify_chains(&key).await.unwrap().ok);

    // The first row after the cut is deleted.
    exec(
        &store,
        "DELETE FROM events WHERE controller_id = 1 AND seq = 11",
    )
    .await;
    let v = store.verify_chains(&key).await.unwrap();
    let p = &v.problems[0];
    assert_eq!((p.chain.as_str(), p.seq), ("controller:1", Some(12)));
    assert!(p.what.contains("records 11 to 11 are missing"), "{p}");
}

async fn a_removed_or_forged_cut_is_detected(store: Store) {
    seed(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let old = T0 - 400 * DAY;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 10, old))
        .await
        .unwrap();
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 5, T0 - DAY))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    store
        .apply_retention(&signer, dir.path(), T0 - 365 * DAY, T0)
        .await
        .unwrap();
    // A cut moved further than it was signed for hides rows 11 and 12.
    exec(&store, "UPDATE chain_cuts SET through_seq = 12").await;
    let v = store.verify_chains(&key).await.unwrap();
    assert!(
        v.problems[0].what.contains("signature of cut"),
        "{:?}",
        v.problems
    );
    // Without its cut the chain no longer starts at the genesis link.
    exec(&store, "DELETE FROM chain_cuts").await;
    let v = store.verify_chains(&key).await.unwrap();
    let p = &v.problems[0];
    assert_eq!(p.seq, Some(11));
    assert!(p.what.contains("records 1 to 10 are missing"), "{p}");
}

async fn a_chain_that_does_not_verify_is_not_cut(store: Store) {
    seed(&store).await;
    let signer = PolicySigner::generate();
    let old = T0 - 400 * DAY;
    let mut chain = Chain::genesis(C1);
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 10, old))
        .await
        .unwrap();
    store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut chain, 2, T0 - DAY))
        .await
        .unwrap();
    exec(
        &store,
        "UPDATE events SET person_id = 101 WHERE controller_id = 1 AND seq = 4",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = store
        .apply_retention(&signer, dir.path(), T0 - 365 * DAY, T0)
        .await
        .unwrap();
    assert!(run.cuts.is_empty(), "{run:?}");
    assert!(run.refused[0].contains("person_id is 101"), "{run:?}");
    // The evidence stays in place, no archive is left, and the alarm is raised once.
    assert_eq!(seqs_of(&store, 1).await.len(), 12);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    store
        .apply_retention(&signer, dir.path(), T0 - 365 * DAY, T0 + 1)
        .await
        .unwrap();
    assert_eq!(alarms_of(&store, "retention_refused").await.len(), 1);
}

/// The epoch a re-imaged board draws (any value but the first).
fn new_epoch() -> ChainEpoch {
    ChainEpoch::new(0x5eed).unwrap()
}

async fn a_reimaged_board_starts_a_new_epoch_and_central_keeps_both(store: Store) {
    use tobira_web::store::queries::{EventFilter, Order};
    seed(&store).await;
    let mut old = Chain::genesis(C1);
    let held = events(&mut old, 5, T0);
    store.ingest(C1, ChainEpoch::FIRST, &held).await.unwrap();
    // Re-imaged: numbering from 1 again, under a new epoch. The same numbers,
    // other content: stored beside the old chain, nothing refused or lost.
    let mut fresh = Chain::start(C1, new_epoch());
    let batch = events(&mut fresh, 3, T0 + 60_000);
    let r = store.ingest(C1, new_epoch(), &batch).await.unwrap();
    assert_eq!((r.stored_through, r.stored), (3, 3), "{r:?}");
    assert!(r.conflicts.is_empty() && r.breaks.is_empty(), "{r:?}");
    // A reviewer learns that the board's state was created afresh.
    let raised = alarms_of(&store, "chain_epoch").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(
        raised[0].1.contains("0000000000005eed") && raised[0].1.contains("0000000000000000"),
        "{raised:?}"
    );
    // A retry is a duplicate; the old board's chain still moves on its own
    // (it came back), and no second epoch alarm is raised for either.
    let again = store.ingest(C1, new_epoch(), &batch).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 3), "{again:?}");
    let more = store
        .ingest(C1, ChainEpoch::FIRST, &events(&mut old, 1, T0 + 120_000))
        .await
        .unwrap();
    assert_eq!(more.stored_through, 6, "{more:?}");
    assert_eq!(alarms_of(&store, "chain_epoch").await.len(), 1);
    assert!(alarms_of(&store, "chain_break").await.is_empty());
    assert_eq!(
        store.controller_chain(C1, new_epoch()).await.unwrap(),
        (4, batch[2].link.to_string())
    );

    // Pages walk both epochs exactly once, even where times tie.
    let filter = EventFilter {
        order: Some(Order::Asc),
        ..EventFilter::default()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .search_events(&filter, 2, cursor.as_deref())
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|e| (e.epoch.clone(), e.seq)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9, "{seen:?}");
    let firsts = seen.iter().filter(|(e, _)| e == "0000000000000000").count();
    assert_eq!(firsts, 6, "{seen:?}");

    // Each epoch is its own chain for checkpoints and verification.
    let signer = PolicySigner::generate();
    let run = store.make_checkpoints(&signer, T0 + 600_000).await.unwrap();
    let mut names: Vec<(String, i64)> = run
        .made
        .iter()
        .filter(|c| c.chain.starts_with("controller:"))
        .map(|c| (c.chain.clone(), c.count))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("controller:1".to_string(), 6),
            ("controller:1@0000000000005eed".to_string(), 3)
        ]
    );
    let v = store.verify_chains(&signer.public_key()).await.unwrap();
    assert!(v.ok, "{:?}", v.problems);
}

async fn an_event_cannot_be_moved_from_one_epoch_to_another(store: Store) {
    seed(&store).await;
    // Events sealed in the first epoch, uploaded as if they began another:
    // the epoch's first event must follow that epoch's own genesis link.
    let mut first = Chain::genesis(C1);
    let moved = events(&mut first, 2, T0);
    let r = store.ingest(C1, new_epoch(), &moved).await.unwrap();
    assert!(
        r.breaks
            .iter()
            .any(|b| b.contains("event 1") && b.contains("does not follow")),
        "{r:?}"
    );
    let breaks: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT controller_id, event_epoch FROM alarms WHERE kind = 'chain_break'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(breaks, vec![(1, Some(0x5eed))]);

    // Rows moved to another epoch in the database: that chain's first row
    // does not follow its genesis, and verify names it.
    let signer = PolicySigner::generate();
    let mut fresh = Chain::start(C1, ChainEpoch::new(77).unwrap());
    store
        .ingest(C1, ChainEpoch::new(77).unwrap(), &events(&mut fresh, 3, T0))
        .await
        .unwrap();
    assert!(store
        .verify_chains(&signer.public_key())
        .await
        .unwrap()
        .problems
        .iter()
        .all(|p| p.chain != "controller:1@000000000000004d"));
    exec(&store, "UPDATE events SET epoch = 78 WHERE epoch = 77").await;
    let v = store.verify_chains(&signer.public_key()).await.unwrap();
    let problem = v
        .problems
        .iter()
        .find(|p| p.chain == "controller:1@000000000000004e")
        .unwrap_or_else(|| panic!("{:?}", v.problems));
    assert_eq!(problem.seq, Some(1), "{problem:?}");
}

async fn retention_cuts_each_epoch_as_its_own_chain(store: Store) {
    use tobira_web::store::retention::verify_archive_file;
    seed(&store).await;
    let signer = PolicySigner::generate();
    let key = signer.public_key();
    let old = T0 - 400 * DAY;
    let mut first = Chain::genesis(C1);
    let mut fresh = Chain::start(C1, new_epoch());
    for (epoch, chain) in [(ChainEpoch::FIRST, &mut first), (new_epoch(), &mut fresh)] {
        store
            .ingest(C1, epoch, &events(chain, 6, old))
            .await
            .unwrap();
        store
            .ingest(C1, epoch, &events(chain, 2, T0 - DAY))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let run = store
        .apply_retention(&signer, dir.path(), T0 - 365 * DAY, T0)
        .await
        .unwrap();
    assert!(run.refused.is_empty(), "{run:?}");
    let mut cuts: Vec<(String, i64, i64)> = run
        .cuts
        .iter()
        .map(|c| (c.chain.clone(), c.first_seq, c.through_seq))
        .collect();
    cuts.sort();
    assert_eq!(
        cuts,
        vec![
            ("controller:1".to_string(), 1, 6),
            ("controller:1@0000000000005eed".to_string(), 1, 6)
        ]
    );
    let v = store.verify_chains(&key).await.unwrap();
    assert!(v.ok, "{:?}", v.problems);
    for cut in &run.cuts {
        let report = verify_archive_file(&dir.path().join(&cut.archive), &key).unwrap();
        assert_eq!(report.manifest.chain, cut.chain, "{report:?}");
    }
    assert!(store.check_archives(dir.path()).await.unwrap().is_empty());
}

/// What the admin's pages read: members, references, names, sorted and
/// searched pages, on both databases.
async fn the_admin_pages_reads_work_on_both_backends(store: Store) {
    use tobira_web::store::browse::{BrowseQuery, BrowseTable, FilterValue, Search};
    seed(&store).await;
    let members = store
        .list_members(Id::new(STAFF).unwrap(), Some(500), None)
        .await
        .unwrap();
    assert_eq!(
        members.items.iter().map(|p| p.id.get()).collect::<Vec<_>>(),
        vec![SATO]
    );
    for (kind, id, expected) in [
        ("site", SITE, "zone"),
        ("zone", OFFICE, "door"),
        ("schedule", 40, "zone"),
        ("controller", 1, "door"),
        ("person", SATO, "card"),
        ("group", STAFF, "grant"),
    ] {
        let refs = store.references(kind, id).await.unwrap();
        assert!(
            refs.iter().any(|r| r.kind == expected),
            "{kind} {id}: {refs:?}"
        );
    }
    let cards = store.references("person", SATO).await.unwrap();
    assert!(cards
        .iter()
        .any(|r| r.kind == "card" && r.key == uid_of(SATO)));
    for table in [
        "sites",
        "zones",
        "schedules",
        "controllers",
        "access_groups",
        "doors",
    ] {
        assert!(!store.names(table).await.unwrap().is_empty(), "{table}");
    }
    assert_eq!(
        store.people_names(&[SATO]).await.unwrap(),
        vec![(SATO, "Sato".to_string())]
    );
    let cards = BrowseTable {
        table: "cards",
        key: "uid",
        sortable: &["uid", "state", "person_id"],
        filterable: &["state", "person_id"],
        searchable: &[Search::HexPrefix("uid")],
    };
    let query = |sort: &str, search: Option<&str>| BrowseQuery {
        sort: Some(sort.to_string()),
        descending: true,
        filters: vec![("state".into(), FilterValue::Text("active".into()))],
        search: search.map(str::to_string),
        offset: 0,
        limit: 2,
    };
    let page = store.browse(&cards, &query("uid", None)).await.unwrap();
    assert_eq!((page.keys.len(), page.total), (2, 3));
    assert_eq!(page.keys[0], uid_of(ONO));
    let page = store
        .browse(&cards, &query("state", Some("04a0:0065")))
        .await
        .unwrap();
    assert_eq!((page.keys, page.total), (vec![uid_of(YAMADA)], 1));
    let people = BrowseTable {
        table: "people",
        key: "id",
        sortable: &["id", "name"],
        filterable: &["kind"],
        searchable: &[Search::Contains("name"), Search::Contains("organisation")],
    };
    let mut q = BrowseQuery {
        sort: Some("name".into()),
        search: Some("A".into()),
        limit: 1,
        ..BrowseQuery::default()
    };
    let page = store.browse(&people, &q).await.unwrap();
    assert_eq!(
        (page.keys, page.total),
        (vec![SATO.to_string()], 2),
        "Sato and Yamada"
    );
    q.offset = 5;
    let page = store.browse(&people, &q).await.unwrap();
    assert_eq!(
        (page.keys.len(), page.total),
        (0, 2),
        "past the end, still counted"
    );
    // Ids sort as numbers (the key read as text must not sort as text).
    let mut tx = store.begin().await.unwrap();
    sqlx::query("INSERT INTO access_groups (id, name) VALUES (4, 'cleaners')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let groups = BrowseTable {
        table: "access_groups",
        key: "id",
        sortable: &["id"],
        filterable: &[],
        searchable: &[Search::Contains("name")],
    };
    for search in [None, Some("e")] {
        let page = store
            .browse(
                &groups,
                &BrowseQuery {
                    search: search.map(str::to_string),
                    limit: 10,
                    ..BrowseQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.keys[0], "4", "{search:?}: {:?}", page.keys);
    }
    q.sort = Some("name; DROP TABLE people".into());
    assert!(matches!(
        store.browse(&people, &q).await,
        Err(StoreError::Invalid(_))
    ));
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = crate::support::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = crate::support::postgres().await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

suite!(
    a_snapshot_holds_exactly_the_controllers_doors_and_people,
    deltas_apply_in_order_and_match_a_fresh_snapshot,
    structural_changes_and_stale_versions_need_a_snapshot,
    threat_levels_travel_in_deltas,
    a_booking_delta_carries_the_booked_person,
    the_same_batch_twice_is_stored_once,
    a_broken_chain_is_stored_and_raises_an_alarm,
    batches_from_another_controller_or_out_of_order_are_refused,
    the_admin_audit_chain_shows_edits,
    credentials_are_checked_and_stored_hashed,
    concurrent_changes_get_distinct_versions,
    an_opening_schedule_is_refused_below_and_above_level_1,
    level_0_refuses_settings_that_need_a_lock,
    escorted_kinds_need_a_kind_that_enters_alone,
    bookings_open_level_1_and_2_rooms_only,
    booking_paths_lead_into_level_2_zones_at_most,
    a_booked_room_must_admit_the_persons_kind,
    ids_are_never_reused_after_a_delete,
    enrollment_jobs_go_to_the_modules_controller_and_record_the_slot_it_reports,
    passages_of_other_controllers_reach_the_controllers_of_the_same_zones,
    siem_sources_hand_out_rows_after_a_durable_cursor,
    deleting_the_newest_admin_audit_rows_after_a_checkpoint_is_detected,
    deleting_admin_audit_rows_and_recomputing_the_chain_is_detected,
    an_event_rows_person_card_and_door_that_disagree_with_its_body_are_named,
    deleting_a_controllers_newest_events_after_a_checkpoint_is_detected,
    a_forged_checkpoint_is_detected,
    recorded_gaps_pass_unrecorded_ones_fail_and_unmoved_heads_get_no_checkpoint,
    forged_events_are_kept_out_of_occupancy_and_passages_and_raise_alarms,
    a_late_fill_of_a_gap_is_checked_and_raises_its_alarms,
    a_conflicting_resend_is_never_covered_by_stored_through,
    user_and_token_names_refuse_invisible_characters,
    obvious_passwords_are_refused,
    retention_archives_old_events_and_verify_passes_across_the_cut,
    deleting_the_first_row_after_a_cut_is_detected,
    a_removed_or_forged_cut_is_detected,
    a_chain_that_does_not_verify_is_not_cut,
    a_reimaged_board_starts_a_new_epoch_and_central_keeps_both,
    an_event_cannot_be_moved_from_one_epoch_to_another,
    retention_cuts_each_epoch_as_its_own_chain,
    the_admin_pages_reads_work_on_both_backends,
);
