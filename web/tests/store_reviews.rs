//! The monthly machine-room review, its sign-off and access
//! re-certification, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_firmware::{
    AccessRecord, Chain, ChainEpoch, DoorId, EventKind, HeldStage, PersonId, Reason, SealedEvent,
    Side, Timestamp, Warnings,
};
use tobira_web::store::recertification::{RecertificationInput, RouteKind};
use tobira_web::store::resources::access::{BookingInput, GrantInput};
use tobira_web::store::resources::{Id, Millis};
use tobira_web::store::reviews::Month;
use tobira_web::store::{now_ms, Store, StoreError};

const TZ: &str = "Asia/Tokyo";
const HOUR: i64 = 3_600_000;

/// A Tokyo local time as ms since epoch.
fn tokyo(date: &str, hour: i8, minute: i8) -> i64 {
    let date: jiff::civil::Date = date.parse().unwrap();
    date.at(hour, minute, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get(TZ).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn access(door: i64, side: Side, person: i64, reason: Reason) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(door as u32),
        side,
        level: Some(tobira_firmware::SecurityLevel::L4),
        reason,
        person: Some(PersonId(person as u32)),
        card: uid_of(person).parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

async fn ingest(store: &Store, kinds: Vec<(i64, EventKind)>) {
    let mut chain = Chain::genesis(C1);
    let batch: Vec<SealedEvent> = kinds
        .into_iter()
        .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
        .collect();
    let receipt = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(receipt.stored, batch.len() as u64, "{receipt:?}");
}

/// November 2026 in the machine room (Tokyo): four entries (one in hours,
/// one at night, one on a Saturday, one on the site's holiday), two denied
/// attempts, the door forced once and held open to the alarm once (and a
/// pre-alarm, and a forced office gate, that do not count); one entry just
/// before and one just after the month in Tokyo time.
async fn november(store: &Store) {
    let m = MACHINE_DOOR;
    ingest(
        store,
        vec![
            (
                tokyo("2026-10-31", 23, 0),
                access(m, Side::Entry, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-01", 1, 0),
                access(m, Side::Exit, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-18", 10, 0),
                access(m, Side::Entry, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-18", 11, 0),
                access(m, Side::Exit, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-18", 12, 0),
                access(m, Side::Entry, YAMADA, Reason::EscortMissing),
            ),
            (
                tokyo("2026-11-18", 22, 0),
                access(m, Side::Entry, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-18", 22, 30),
                access(m, Side::Exit, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-19", 9, 0),
                EventKind::DoorForced {
                    door: DoorId(m as u32),
                },
            ),
            (
                tokyo("2026-11-19", 9, 5),
                EventKind::DoorForced {
                    door: DoorId(GATE as u32),
                },
            ),
            (
                tokyo("2026-11-20", 9, 0),
                EventKind::DoorHeldOpen {
                    door: DoorId(m as u32),
                    stage: HeldStage::PreAlarm,
                },
            ),
            (
                tokyo("2026-11-20", 9, 1),
                EventKind::DoorHeldOpen {
                    door: DoorId(m as u32),
                    stage: HeldStage::Alarm,
                },
            ),
            (
                tokyo("2026-11-21", 10, 0),
                access(m, Side::Entry, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-21", 10, 30),
                access(m, Side::Exit, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-23", 10, 0),
                access(m, Side::Entry, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-11-23", 10, 5),
                access(m, Side::Entry, YAMADA, Reason::EscortMissing),
            ),
            (
                tokyo("2026-11-23", 11, 0),
                access(m, Side::Exit, SATO, Reason::Granted),
            ),
            (
                tokyo("2026-12-01", 0, 30),
                access(m, Side::Entry, SATO, Reason::Granted),
            ),
        ],
    )
    .await;
}

async fn a_month_is_prepared_with_every_section_counted(store: Store) {
    seed(&store).await;
    november(&store).await;
    let month = Month::parse("2026-11").unwrap();
    let review = store
        .prepare_review(month, TZ, tokyo("2026-12-02", 9, 0))
        .await
        .unwrap();
    assert_eq!(review.zone_ids, vec![MACHINE]);
    assert_eq!(review.from, tokyo("2026-11-01", 0, 0));
    assert_eq!(review.to, tokyo("2026-12-01", 0, 0));
    assert!(review.ended);
    let c = review.counts;
    assert_eq!(c.entries, 4, "{review:#?}");
    assert_eq!(c.denied, 2);
    assert_eq!(c.doors, 2, "forced once and held to the alarm once");
    assert_eq!(c.out_of_hours, 3, "night, Saturday and holiday");
    // The entry of 31 October ends in November: the visit overlaps the month.
    assert_eq!(review.visits.len(), 5, "{:#?}", review.visits);
    assert_eq!(review.denied.len(), 2);
    assert!(review.denied.iter().all(|e| e.person_id == Some(YAMADA)));
    let kinds: Vec<&str> = review.doors.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["door_held_open", "door_forced"]);
    let late: Vec<i64> = review.out_of_hours.iter().map(|e| e.at).collect();
    assert_eq!(
        late,
        [
            tokyo("2026-11-23", 10, 0),
            tokyo("2026-11-21", 10, 0),
            tokyo("2026-11-18", 22, 0)
        ]
    );
    assert_eq!(
        c.access_changes, 0,
        "the seed's rows are not audited changes"
    );
    assert!(review.sign_off.is_none());
    // In UTC the month starts nine hours later: the Tokyo 1 December entry is
    // a November one there.
    let utc = store.prepare_review(month, "UTC", now_ms()).await.unwrap();
    assert_eq!(utc.counts.entries, 5);
}

async fn sign_off_needs_a_comment_an_ended_month_and_happens_once(store: Store) {
    seed(&store).await;
    let now = now_ms();
    let month = Month::containing(now, TZ).unwrap();
    let (_, month_end) = month.period(TZ).unwrap();
    // Grants and memberships changed this month.
    let grant = store
        .create_grant(
            "facilities",
            &GrantInput {
                group_id: Id::new(VISITORS).unwrap(),
                zones: vec![Id::new(LOBBY).unwrap()],
                schedule_id: None,
                valid_from: None,
                valid_until: None,
            },
        )
        .await
        .unwrap();
    store
        .add_member(
            "facilities",
            Id::new(VISITORS).unwrap(),
            Id::new(ONO).unwrap(),
        )
        .await
        .unwrap();
    store
        .remove_member(
            "facilities",
            Id::new(VISITORS).unwrap(),
            Id::new(ONO).unwrap(),
        )
        .await
        .unwrap();
    let review = store.prepare_review(month, TZ, now).await.unwrap();
    assert_eq!(
        review.counts.access_changes, 3,
        "{:#?}",
        review.access_changes
    );
    assert_eq!(review.access_changes[0].action, "group.remove_member");
    assert!(!review.ended);

    // Not before the month is over.
    let early = store
        .sign_off_review("reviewer", month, "all checked", TZ, now)
        .await;
    assert!(matches!(early, Err(StoreError::Conflict(_))), "{early:?}");
    // Not without a comment.
    let bare = store
        .sign_off_review("reviewer", month, "   ", TZ, month_end)
        .await;
    assert!(matches!(bare, Err(StoreError::Invalid(_))), "{bare:?}");
    let signed = store
        .sign_off_review("reviewer", month, "  all checked  ", TZ, month_end)
        .await
        .unwrap();
    assert_eq!(signed.month, month.to_string());
    assert_eq!(signed.signed_by, "reviewer");
    assert_eq!(signed.signed_at, month_end);
    assert_eq!(signed.comment, "all checked");
    assert_eq!(signed.counts, review.counts);
    // Once only.
    let again = store
        .sign_off_review("other", month, "again", TZ, month_end)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // Listed, and shown with the month; a later change shows as a difference.
    let list = store.review_list(TZ, month_end).await.unwrap();
    assert_eq!(list.default_month, month.to_string());
    assert_eq!(list.months.len(), 13);
    assert_eq!(list.months[1].month, month.to_string());
    assert!(list.months[1].ended && !list.months[0].ended);
    assert_eq!(list.months[1].sign_off.as_ref(), Some(&signed));
    assert_eq!(list.sign_offs, vec![signed.clone()]);
    store.delete_grant("facilities", grant.id).await.unwrap();
    let later = store.prepare_review(month, TZ, month_end).await.unwrap();
    assert_eq!(later.sign_off.as_ref(), Some(&signed));
    assert_eq!(later.counts.access_changes, 4);
    assert_eq!(later.sign_off.unwrap().counts.access_changes, 3);
    let audit = store.audit_entries(None, 10).await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "review.sign_off")
        .expect("the sign-off is audited");
    assert_eq!(entry.actor, "reviewer");
    assert_eq!(entry.target, format!("review:{month}"));
    assert!(entry.detail.contains("all checked"), "{}", entry.detail);
}

async fn recertification_revokes_memberships_and_bookings_and_confirms_the_rest(store: Store) {
    seed(&store).await;
    let now = now_ms();
    let machine = Id::new(MACHINE).unwrap();
    let lobby = Id::new(LOBBY).unwrap();
    // Ono joins the staff group (office + machine room); Yamada books the
    // lobby (bookings name a person directly; they open level 1 and 2 only).
    store
        .add_member("facilities", Id::new(STAFF).unwrap(), Id::new(ONO).unwrap())
        .await
        .unwrap();
    let booking = store
        .create_booking(
            "facilities",
            &BookingInput {
                person_id: Id::new(YAMADA).unwrap(),
                room_zone_id: lobby,
                path: vec![],
                start_at: Millis::new(now + HOUR).unwrap(),
                end_at: Millis::new(now + 2 * HOUR).unwrap(),
            },
        )
        .await
        .unwrap();
    let access = store.zone_access(machine, now).await.unwrap();
    assert_eq!(access.zone_name, "Machine room");
    assert_eq!(access.zone_level, 4);
    let names: Vec<&str> = access.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Ono", "Sato"]);
    let sato = &access.people[1];
    assert_eq!(sato.kind.as_str(), "staff");
    assert_eq!(sato.cards[0].uid, uid_of(SATO));
    assert_eq!(sato.routes.len(), 1);
    assert_eq!(sato.routes[0].kind, RouteKind::Group);
    assert_eq!(sato.routes[0].group_name.as_deref(), Some("staff"));
    assert_eq!(sato.routes[0].grant_ids, vec![50]);
    // Revoking the membership takes the office too: the page says so.
    let others: Vec<&str> = sato.routes[0]
        .other_zones
        .iter()
        .map(|z| z.name.as_str())
        .collect();
    assert_eq!(others, ["Office"]);
    let booked = store.zone_access(lobby, now).await.unwrap();
    assert_eq!(booked.people.len(), 1);
    let yamada = &booked.people[0];
    assert_eq!(yamada.name, "Yamada");
    assert_eq!(yamada.routes.len(), 1);
    assert_eq!(yamada.routes[0].kind, RouteKind::Booking);
    assert_eq!(yamada.routes[0].booking_id, Some(booking.id.get()));

    // Someone who cannot enter cannot be revoked; an unknown zone is not found.
    let stranger = store
        .recertify(
            "facilities",
            &RecertificationInput {
                zone_id: lobby,
                revoke: vec![Id::new(ONO).unwrap()],
                comment: String::new(),
            },
            now,
        )
        .await;
    assert!(
        matches!(stranger, Err(StoreError::Invalid(_))),
        "{stranger:?}"
    );
    let nowhere = store
        .recertify(
            "facilities",
            &RecertificationInput {
                zone_id: Id::new(999).unwrap(),
                revoke: vec![],
                comment: String::new(),
            },
            now,
        )
        .await;
    assert!(
        matches!(nowhere, Err(StoreError::NotFound(_))),
        "{nowhere:?}"
    );

    // The machine room: Ono's membership goes, Sato is confirmed.
    let before = store.policy_version();
    let done = store
        .recertify(
            "facilities",
            &RecertificationInput {
                zone_id: machine,
                revoke: vec![Id::new(ONO).unwrap()],
                comment: "quarterly pass".into(),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((done.confirmed, done.revoked), (1, 1));
    assert_eq!(done.zone_name, "Machine room");
    assert_eq!(done.comment, "quarterly pass");
    let decisions: Vec<(&str, &str, &str)> = done
        .people
        .iter()
        .map(|p| {
            (
                p.person_name.as_str(),
                p.decision.as_str(),
                p.through.as_str(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("Ono", "revoke", "group:staff"),
            ("Sato", "confirm", "group:staff")
        ]
    );
    assert!(
        store.policy_version().version > before.version,
        "controllers hear of it"
    );
    let after = store.zone_access(machine, now).await.unwrap();
    let names: Vec<&str> = after.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Sato"]);
    let annex = store
        .list_members(Id::new(ANNEX_STAFF).unwrap(), None, None)
        .await
        .unwrap();
    assert_eq!(annex.items.len(), 1, "Ono stays in the annex staff");

    // The lobby: Yamada's booking goes.
    let lobby_pass = store
        .recertify(
            "facilities",
            &RecertificationInput {
                zone_id: lobby,
                revoke: vec![Id::new(YAMADA).unwrap()],
                comment: String::new(),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((lobby_pass.confirmed, lobby_pass.revoked), (0, 1));
    assert_eq!(
        lobby_pass.people[0].through,
        format!("booking:{}", booking.id)
    );
    assert!(matches!(
        store.booking(booking.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .zone_access(lobby, now)
        .await
        .unwrap()
        .people
        .is_empty());

    // The compiled policy: Ono is no longer controller 1's concern, Yamada
    // keeps the visitors' office grant and the booking is gone, Sato keeps
    // the staff grant.
    let snapshot = store.snapshot_for(C1).await.unwrap();
    let grants_of = |id: i64| {
        snapshot
            .people
            .iter()
            .find(|p| i64::from(p.id.0) == id)
            .map(|p| p.grants.iter().map(|g| g.0).collect::<Vec<_>>())
    };
    assert_eq!(grants_of(ONO), None);
    assert_eq!(grants_of(YAMADA), Some(vec![51]));
    assert_eq!(grants_of(SATO), Some(vec![50]));
    assert!(snapshot.bookings.is_empty());

    // Recorded and listed, and each removal audited.
    let list = store.recertifications(None).await.unwrap();
    assert_eq!(list, vec![lobby_pass.clone(), done.clone()]);
    assert_eq!(
        store.recertifications(Some(machine)).await.unwrap(),
        vec![done.clone()]
    );
    let audit = store.audit_entries(None, 10).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions[..4],
        [
            "recertification.record",
            "booking.delete",
            "recertification.record",
            "group.remove_member"
        ]
    );

    // Confirming everyone keeps them.
    let all = store
        .recertify(
            "facilities",
            &RecertificationInput {
                zone_id: machine,
                revoke: vec![],
                comment: String::new(),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((all.confirmed, all.revoked), (1, 0));
    assert_eq!(
        store.zone_access(machine, now).await.unwrap().people.len(),
        1
    );
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
    a_month_is_prepared_with_every_section_counted,
    sign_off_needs_a_comment_an_ended_month_and_happens_once,
    recertification_revokes_memberships_and_bookings_and_confirms_the_rest,
);
