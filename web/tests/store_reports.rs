//! The reports on a small hand-checked data set, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_firmware::{
    AccessRecord, Chain, ChainEpoch, DoorId, EventKind, HeldStage, PersonId, Reason, SealedEvent,
    Side, Timestamp, Warnings,
};
use tobira_web::store::reports::Period;
use tobira_web::store::{Store, StoreError};

/// Person, door, reason, count.
type Denied<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, i64);

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-11-02T00:00+09:00, a Monday (ISO week 2026-W45).
const MONDAY: i64 = 1_793_545_200_000;
/// The meeting room and its door (controller 1).
const ROOM: i64 = 14;
const ROOM_DOOR: i64 = 23;

/// Local time in Tokyo: day after MONDAY, hour, minute.
fn at(day: i64, hour: i64, minute: i64) -> i64 {
    MONDAY + day * DAY + hour * HOUR + minute * MIN
}

fn access(door: i64, side: Side, person: i64, reason: Reason) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(door as u32),
        side,
        level: None,
        reason,
        person: Some(PersonId(person as u32)),
        card: uid_of(person).parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

async fn meeting_room(store: &Store) {
    let l2 = serde_json::to_string(&tobira_firmware::ZoneSettings::for_level(
        tobira_firmware::SecurityLevel::L2,
    ))
    .unwrap();
    sqlx::query(
        "INSERT INTO zones (id, site_id, name, level, settings) VALUES (14, 1, 'Room A', 2, $1)",
    )
    .bind(l2)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader) VALUES (23, 'Room A door', 'door', 11, 14, 1, '{}')")
        .execute(store.pool())
        .await
        .unwrap();
    // Booked 10:00-12:00 on Monday, and 14:00-15:30 on the next Tuesday
    // (twice, overlapping: counted once).
    for (start, end) in [
        (at(0, 10, 0), at(0, 12, 0)),
        (at(8, 14, 0), at(8, 15, 30)),
        (at(8, 14, 30), at(8, 15, 0)),
    ] {
        sqlx::query("INSERT INTO bookings (person_id, room_zone_id, path, start_at, end_at) VALUES (100, 14, '[23]', $1, $2)")
            .bind(start)
            .bind(end)
            .execute(store.pool())
            .await
            .unwrap();
    }
}

/// The week of 2026-11-02 at city hall, hand-counted in the test below.
async fn a_week(store: &Store) {
    seed(store).await;
    meeting_room(store).await;
    let mut chain = Chain::genesis(C1);
    let door = |d: i64| DoorId(d as u32);
    let kinds = vec![
        // Two entries into the room in the booked 10:00 hour: one used hour.
        (
            at(0, 10, 15),
            access(ROOM_DOOR, Side::Entry, SATO, Reason::Granted),
        ),
        (
            at(0, 10, 40),
            access(ROOM_DOOR, Side::Entry, YAMADA, Reason::Granted),
        ),
        (
            at(0, 11, 30),
            access(ROOM_DOOR, Side::Exit, SATO, Reason::Granted),
        ),
        // Gate entries at 08:xx twice and 17:xx once; an exit does not count.
        (
            at(1, 8, 30),
            access(GATE, Side::Entry, SATO, Reason::Granted),
        ),
        (
            at(1, 9, 0),
            access(MACHINE_DOOR, Side::Entry, YAMADA, Reason::NoGrant),
        ),
        (
            at(1, 9, 1),
            access(MACHINE_DOOR, Side::Entry, YAMADA, Reason::NoGrant),
        ),
        (
            at(1, 9, 2),
            access(MACHINE_DOOR, Side::Entry, YAMADA, Reason::NoGrant),
        ),
        (
            at(1, 9, 3),
            access(MACHINE_DOOR, Side::Entry, YAMADA, Reason::EscortMissing),
        ),
        (
            at(1, 18, 0),
            access(GATE, Side::Exit, SATO, Reason::Granted),
        ),
        (
            at(2, 3, 0),
            EventKind::DoorForced {
                door: door(MACHINE_DOOR),
            },
        ),
        (
            at(2, 8, 45),
            access(GATE, Side::Entry, SATO, Reason::Granted),
        ),
        (
            at(2, 17, 10),
            access(GATE, Side::Entry, SATO, Reason::Granted),
        ),
        (
            at(3, 12, 0),
            EventKind::DoorHeldOpen {
                door: door(MACHINE_DOOR),
                stage: HeldStage::PreAlarm,
            },
        ),
        (
            at(3, 12, 1),
            EventKind::DoorHeldOpen {
                door: door(MACHINE_DOOR),
                stage: HeldStage::Alarm,
            },
        ),
        (
            at(3, 22, 0),
            EventKind::DoorHeldOpen {
                door: door(GATE),
                stage: HeldStage::Alarm,
            },
        ),
        (
            at(4, 12, 0),
            EventKind::DoorHeldOpen {
                door: door(MACHINE_DOOR),
                stage: HeldStage::Alarm,
            },
        ),
    ];
    let batch: Vec<SealedEvent> = kinds
        .into_iter()
        .map(|(t, kind)| chain.seal(Timestamp(t), kind).unwrap())
        .collect();
    let receipt = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(receipt.stored, batch.len() as u64, "{receipt:?}");
    // A card issued yesterday is too new to be "unused".
    sqlx::query("INSERT INTO cards (uid, person_id, state, issued_at, changed_version) VALUES ('04A0FFFF', 102, 'active', $1, 0)")
        .bind(at(27, 0, 0))
        .execute(store.pool())
        .await
        .unwrap();
}

fn period(from: &str, to: &str) -> Period {
    Period::resolve(Some(from), Some(to), "Asia/Tokyo", at(28, 0, 0)).unwrap()
}

async fn each_report_counts_the_hand_checked_week(store: Store) {
    a_week(&store).await;
    let now = at(28, 0, 0); // 2026-11-30
    let week = period("2026-11-02", "2026-11-15");

    // Unused for 90 days: only Ono's card, never used (the new card is too new).
    let unused = store.unused_cards(Some(90), now).await.unwrap();
    let cards: Vec<(&str, Option<i64>)> = unused
        .cards
        .iter()
        .map(|c| (c.card.as_str(), c.last_used_at))
        .collect();
    assert_eq!(cards, vec![("04A00066", None)], "{unused:#?}");
    assert_eq!(unused.cards[0].person_name, "Ono");
    // Unused for 20 days: all three, never first, then the longest unused
    // (a denial is a use too).
    let unused = store.unused_cards(Some(20), now).await.unwrap();
    let cards: Vec<(&str, Option<i64>)> = unused
        .cards
        .iter()
        .map(|c| (c.card.as_str(), c.last_used_at))
        .collect();
    assert_eq!(
        cards,
        vec![
            ("04A00066", None),
            ("04A00065", Some(at(1, 9, 3))),
            ("04A00064", Some(at(2, 17, 10))),
        ]
    );
    assert!(matches!(
        store.unused_cards(Some(0), now).await,
        Err(StoreError::Invalid(_))
    ));

    // Denials: by card, door and reason, most first.
    let denials = store.denials(&week).await.unwrap();
    let rows: Vec<Denied> = denials
        .rows
        .iter()
        .map(|d| {
            (
                d.person_name.as_deref(),
                d.door_name.as_deref(),
                d.reason.as_deref(),
                d.count,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some("Yamada"), Some("Machine room"), Some("no_grant"), 3),
            (
                Some("Yamada"),
                Some("Machine room"),
                Some("escort_missing"),
                1
            ),
        ]
    );
    assert_eq!(denials.rows[0].last_at, at(1, 9, 2));
    assert_eq!(denials.rows[0].card.as_deref(), Some("04A00065"));
    // A period without them.
    assert!(store
        .denials(&period("2026-11-05", "2026-11-06"))
        .await
        .unwrap()
        .rows
        .is_empty());

    // Door alarms: forced 1 and held 2 (the pre-alarm not counted) at the
    // machine room, held 1 at the gate.
    let alarms = store.door_alarms(&week).await.unwrap();
    let doors: Vec<(i64, Option<&str>, i64, i64, i64)> = alarms
        .doors
        .iter()
        .map(|d| {
            (
                d.door_id,
                d.zone_name.as_deref(),
                d.forced,
                d.held_open,
                d.last_at,
            )
        })
        .collect();
    assert_eq!(
        doors,
        vec![
            (MACHINE_DOOR, Some("Machine room"), 1, 2, at(4, 12, 0)),
            (GATE, Some("Office"), 0, 1, at(3, 22, 0)),
        ]
    );

    // Room utilisation: W45 booked 2 h, used 1 h; W46 booked 1.5 h, used 0.
    let rooms = store.room_utilisation(&week).await.unwrap();
    assert_eq!(rooms.weeks, vec!["2026-W45", "2026-W46"]);
    assert_eq!(rooms.rooms.len(), 1, "{rooms:#?}");
    let room = &rooms.rooms[0];
    assert_eq!((room.zone_id, room.zone_name.as_str()), (ROOM, "Room A"));
    let weeks: Vec<(&str, i64, f64, i64)> = room
        .weeks
        .iter()
        .map(|w| {
            (
                w.week.as_str(),
                w.booked_minutes,
                w.booked_hours,
                w.used_hours,
            )
        })
        .collect();
    assert_eq!(
        weeks,
        vec![("2026-W45", 120, 2.0, 1), ("2026-W46", 90, 1.5, 0)]
    );
    // A period cutting the first booking at its start: only what is inside counts.
    let cut = store
        .room_utilisation(&period("2026-11-03", "2026-11-09"))
        .await
        .unwrap();
    assert_eq!(cut.rooms[0].weeks[0].booked_minutes, 0);
    assert_eq!(cut.rooms[0].weeks[0].used_hours, 0);

    // Busiest doors: the gate 3 entries (08h twice, 17h once), the room 2 (10h).
    let busiest = store.busiest_doors(&week).await.unwrap();
    let doors: Vec<(i64, i64)> = busiest.doors.iter().map(|d| (d.door_id, d.total)).collect();
    assert_eq!(doors, vec![(GATE, 3), (ROOM_DOOR, 2)]);
    assert_eq!(busiest.doors[0].hours[8], 2);
    assert_eq!(busiest.doors[0].hours[17], 1);
    assert_eq!(busiest.doors[1].hours[10], 2);
    assert_eq!(busiest.doors[0].hours.iter().sum::<i64>(), 3);
    assert_eq!(busiest.doors[0].door_name.as_deref(), Some("Office gate"));
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

suite!(each_report_counts_the_hand_checked_week);
