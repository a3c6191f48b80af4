//! One store test suite, run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_firmware::{CardState, Chain, ChainLink, PersonId, Snapshot, ThreatLevel};
use tobira_web::store::auth::Role;
use tobira_web::store::policy::DeltaAnswer;
use tobira_web::store::{ChangeScope, Store};

async fn a_snapshot_holds_exactly_the_controllers_doors_and_people(store: Store) {
    seed(&store).await;
    let data = store.snapshot_for(C1).await.unwrap();
    let snap = Snapshot::new(data.clone()).expect("a valid snapshot");
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

async fn the_same_batch_twice_is_stored_once(store: Store) {
    seed(&store).await;
    let mut chain = Chain::genesis(C1);
    let batch = events(&mut chain, 20, 1_763_000_000_000);
    let first = store.ingest(C1, &batch).await.unwrap();
    assert_eq!(
        (first.stored, first.duplicates, first.stored_through),
        (20, 0, 20)
    );
    assert!(first.breaks.is_empty());
    let again = store.ingest(C1, &batch).await.unwrap();
    assert_eq!(
        (again.stored, again.duplicates, again.stored_through),
        (0, 20, 20)
    );
    // Overlapping retry plus new events.
    let more = events(&mut chain, 5, 1_763_000_100_000);
    let mut overlap = batch[15..].to_vec();
    overlap.extend(more);
    let third = store.ingest(C1, &overlap).await.unwrap();
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
    let (next, _) = store.controller_chain(C1).await.unwrap();
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
    let receipt = store.ingest(C1, &batch).await.unwrap();
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
    let r2 = store.ingest(C2, &b2).await.unwrap();
    assert!(
        r2.breaks.iter().any(|b| b.contains("event 3")),
        "{:?}",
        r2.breaks
    );
    // Sending a stored event again with other content is an alarm too.
    let mut forged = batch[0].clone();
    forged.event.at = tobira_firmware::Timestamp(42);
    relink(ChainLink::GENESIS, &mut forged);
    let r3 = store.ingest(C1, &[forged]).await.unwrap();
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
    assert!(store.ingest(C1, &batch).await.is_err());
    let mut reversed = batch.clone();
    reversed.reverse();
    assert!(store.ingest(C2, &reversed).await.is_err());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
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
    assert!(store
        .create_user("cli", "carol", "another long one!", Role::Admin)
        .await
        .is_err());
    assert!(store
        .create_user("cli", "dave", "short", Role::Admin)
        .await
        .is_err());
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
    the_same_batch_twice_is_stored_once,
    a_broken_chain_is_stored_and_raises_an_alarm,
    batches_from_another_controller_or_out_of_order_are_refused,
    the_admin_audit_chain_shows_edits,
    credentials_are_checked_and_stored_hashed,
    concurrent_changes_get_distinct_versions,
    enrollment_jobs_go_to_the_modules_controller_and_record_the_slot_it_reports,
);
