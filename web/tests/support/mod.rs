//! Test support: fresh stores on SQLite and PostgreSQL, a small city hall seeded by SQL.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::Executor;
use tobira_firmware::{
    chain_link, AccessRecord, Chain, ControllerId, DoorId, EventKind, PersonId, Reason,
    SealedEvent, Side, Timestamp, Warnings,
};
use tobira_web::store::{ChangeScope, Store};

/// A store on a fresh SQLite file; keep the TempDir alive.
pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/central.db", dir.path().display());
    (Store::connect(&url).await.unwrap(), dir)
}

/// The environment variable that knowingly skips the PostgreSQL part of the
/// tests (never allowed in CI).
pub const SKIP_POSTGRES: &str = "TOBIRA_TEST_SKIP_POSTGRES";

/// A store on a fresh database in the throwaway PostgreSQL cluster that
/// `scripts/with-postgres` starts (`scripts/test` runs everything through it).
///
/// The PostgreSQL part of a test is mandatory: without
/// `TOBIRA_TEST_POSTGRES_URL` the test fails, unless the caller opted out with
/// `TOBIRA_TEST_SKIP_POSTGRES=1` outside CI; then it is `None`, and says so loudly.
pub async fn postgres() -> Option<Store> {
    let Ok(base) = std::env::var("TOBIRA_TEST_POSTGRES_URL") else {
        let opted_out = std::env::var(SKIP_POSTGRES).is_ok_and(|v| v == "1");
        let ci = std::env::var_os("CI").is_some();
        assert!(
            opted_out && !ci,
            "this test has a PostgreSQL part and TOBIRA_TEST_POSTGRES_URL is not set: \
             run it through scripts/with-postgres (e.g. `scripts/with-postgres cargo test -p tobira-web`) \
             or scripts/test; to skip the PostgreSQL part knowingly, set {SKIP_POSTGRES}=1 (not in CI)"
        );
        warn_postgres_skipped();
        return None;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    let name = format!("t_{}", uuidish());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    admin.close().await;
    let url = match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("bad postgres url"),
    };
    Some(Store::connect(&url).await.unwrap())
}

/// Says once per test binary, past the test harness's output capture (which
/// would hide it for passing tests), that the PostgreSQL part did not run.
fn warn_postgres_skipped() {
    use std::io::Write as _;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** WARNING: {SKIP_POSTGRES}=1: the PostgreSQL parts of these tests were SKIPPED; \
             nothing here was checked on PostgreSQL ***\n"
        );
    });
}

fn uuidish() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub const SITE: i64 = 1;
pub const LOBBY: i64 = 10;
pub const OFFICE: i64 = 11;
pub const MACHINE: i64 = 12;
pub const ANNEX: i64 = 13;
pub const GATE: i64 = 20; // lobby → office, controller 1
pub const MACHINE_DOOR: i64 = 21; // office → machine, controller 1, fingerprint module 7
pub const ANNEX_DOOR: i64 = 22; // lobby → annex, controller 2
pub const SATO: i64 = 100; // staff, office + machine, enrolled on module 7
pub const YAMADA: i64 = 101; // visitor, office
pub const ONO: i64 = 102; // staff, annex only: not controller 1's concern
pub const STAFF: i64 = 30;
pub const VISITORS: i64 = 31;
pub const ANNEX_STAFF: i64 = 32;
pub const C1: ControllerId = ControllerId(1);
pub const C2: ControllerId = ControllerId(2);

pub fn uid_of(person: i64) -> String {
    format!("04A0{:04X}", person)
}

/// Seeds the city hall and registers controllers 1 and 2; returns their secrets.
pub async fn seed(store: &Store) -> (String, String) {
    let mut tx = store.begin().await.unwrap();
    let l1 = serde_json::to_string(&tobira_firmware::ZoneSettings::for_level(
        tobira_firmware::SecurityLevel::L1,
    ))
    .unwrap();
    let l3 = serde_json::to_string(&tobira_firmware::ZoneSettings::for_level(
        tobira_firmware::SecurityLevel::L3,
    ))
    .unwrap();
    let l4 = serde_json::to_string(&tobira_firmware::ZoneSettings::for_level(
        tobira_firmware::SecurityLevel::L4,
    ))
    .unwrap();
    let statements: Vec<(String, Vec<String>)> = vec![
        ("INSERT INTO sites (id, name) VALUES (1, 'City Hall')".into(), vec![]),
        ("INSERT INTO schedules (id, name, windows) VALUES (40, 'office hours', '[{\"days\":31,\"start\":510,\"end\":1035}]')".into(), vec![]),
        ("INSERT INTO zones (id, site_id, name, level, opening_schedule_id, settings) VALUES (10, 1, 'Lobby', 1, 40, $1)".into(), vec![l1.clone()]),
        ("INSERT INTO zones (id, site_id, name, level, settings) VALUES (11, 1, 'Office', 3, $1)".into(), vec![l3]),
        ("INSERT INTO zones (id, site_id, name, level, settings) VALUES (12, 1, 'Machine room', 4, $1)".into(), vec![l4]),
        ("INSERT INTO zones (id, site_id, name, level, settings) VALUES (13, 1, 'Annex', 1, $1)".into(), vec![l1]),
        ("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, entry_reader, exit_reader) VALUES (20, 'Office gate', 'flapper_gate', 10, 11, '{}', '{}')".into(), vec![]),
        ("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, entry_reader, exit_reader, fire_egress) VALUES (21, 'Machine room', 'door', 11, 12, '{\"biometric\":7}', '{\"biometric\":8}', 1)".into(), vec![]),
        ("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, entry_reader) VALUES (22, 'Annex', 'door', 10, 13, '{}')".into(), vec![]),
        ("INSERT INTO people (id, kind, name, created_at, changed_version) VALUES (100, 'staff', 'Sato', 0, 0)".into(), vec![]),
        ("INSERT INTO people (id, kind, name, created_at, changed_version) VALUES (101, 'visitor', 'Yamada', 0, 0)".into(), vec![]),
        ("INSERT INTO people (id, kind, name, created_at, changed_version) VALUES (102, 'staff', 'Ono', 0, 0)".into(), vec![]),
        ("INSERT INTO access_groups (id, name) VALUES (30, 'staff'), (31, 'visitors'), (32, 'annex staff')".into(), vec![]),
        ("INSERT INTO grants (id, group_id, zones) VALUES (50, 30, '[11,12]'), (51, 31, '[11]'), (52, 32, '[13]')".into(), vec![]),
        ("INSERT INTO group_members (group_id, person_id) VALUES (30, 100), (31, 101), (32, 102)".into(), vec![]),
        ("INSERT INTO enrollments (person_id, module_id, slot, enrolled_at) VALUES (100, 7, 3, 0), (100, 8, 3, 0), (102, 9, 1, 0)".into(), vec![]),
        ("INSERT INTO holidays (site_id, date, name) VALUES (1, '2026-11-23', 'Labour Thanksgiving Day')".into(), vec![]),
    ];
    for (sql, binds) in statements {
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q.execute(&mut *tx).await.unwrap();
    }
    for person in [SATO, YAMADA, ONO] {
        sqlx::query("INSERT INTO cards (uid, person_id, state, issued_at, changed_version) VALUES ($1, $2, 'active', 0, 0)")
            .bind(uid_of(person))
            .bind(person)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let v = store
        .record_change(&mut tx, ChangeScope::Structure, "seed", false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(v, false);
    let c1 = store.add_controller("test", SITE, "1F").await.unwrap();
    let c2 = store.add_controller("test", SITE, "annex").await.unwrap();
    assert_eq!((c1.controller, c2.controller), (1, 2));
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE doors SET controller_id = 1 WHERE id IN (20, 21)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE doors SET controller_id = 2 WHERE id = 22")
        .execute(&mut *tx)
        .await
        .unwrap();
    let v = store
        .record_change(&mut tx, ChangeScope::Structure, "doors", false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(v, false);
    (c1.secret, c2.secret)
}

/// Changes a card's state the way the card lifecycle does: row, history, urgent change.
pub async fn set_card_state(store: &Store, uid: &str, state: &str) -> u64 {
    let mut tx = store.begin().await.unwrap();
    let urgent = state != "active";
    let v = store
        .record_change(&mut tx, ChangeScope::Card, &format!("card:{uid}"), urgent)
        .await
        .unwrap();
    sqlx::query("UPDATE cards SET state = $1, changed_version = $2 WHERE uid = $3")
        .bind(state)
        .bind(v as i64)
        .bind(uid)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(v, urgent);
    v
}

/// `n` access events sealed on a chain.
pub fn events(chain: &mut Chain, n: u64, start_ms: i64) -> Vec<SealedEvent> {
    (0..n)
        .map(|i| {
            chain
                .seal(
                    Timestamp(start_ms + i as i64 * 1000),
                    EventKind::Access(AccessRecord {
                        door: DoorId(MACHINE_DOOR as u32),
                        side: if i % 2 == 0 { Side::Entry } else { Side::Exit },
                        level: Some(tobira_firmware::SecurityLevel::L4),
                        reason: Reason::Granted,
                        person: Some(PersonId(SATO as u32)),
                        card: uid_of(SATO).parse().ok(),
                        escort: None,
                        warnings: Warnings::default(),
                    }),
                )
                .unwrap()
        })
        .collect()
}

/// Re-links an event after it was edited, as a forger would.
pub fn relink(prev: tobira_firmware::ChainLink, e: &mut SealedEvent) {
    e.prev = prev;
    e.link = chain_link(&prev, &e.event).unwrap();
}
