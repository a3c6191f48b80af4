//! Central service benchmarks, as a bench binary (figures go to docs/performance.md):
//! event ingest with batches of 500 (SQLite, and PostgreSQL when
//! TOBIRA_TEST_POSTGRES_URL is set), snapshot and delta build for 100k cards,
//! and the level-4 zone history query over 90 days with 10M events.
//!
//! `cargo bench -p tobira-web --bench central` for the real sizes; under
//! `cargo test` it runs a small smoke size so that CI keeps it working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use tobira_firmware::{
    AccessRecord, Chain, ControllerId, DoorId, EventKind, PersonId, Reason, SecurityLevel, Side,
    Snapshot, Timestamp, Warnings,
};
use tobira_web::store::{ChangeScope, Store};

struct Sizes {
    batches_per_controller: usize,
    controllers: u32,
    people: i64,
    cards_per_person: i64,
    history_events: i64,
}

const FULL: Sizes = Sizes {
    batches_per_controller: 50,
    controllers: 8,
    people: 10_000,
    cards_per_person: 10,
    history_events: 10_000_000,
};
const SMOKE: Sizes = Sizes {
    batches_per_controller: 2,
    controllers: 2,
    people: 100,
    cards_per_person: 2,
    history_events: 20_000,
};

async fn exec(store: &Store, sql: &str) {
    let mut tx = store.begin().await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Many rows at once, built as multi-row INSERT statements.
async fn insert_rows(store: &Store, head: &str, rows: impl Iterator<Item = String>) {
    let rows: Vec<String> = rows.collect();
    for chunk in rows.chunks(2_000) {
        exec(store, &format!("{head} VALUES {}", chunk.join(","))).await;
    }
}

/// A site with 20 zones (one in five level 4), 200 doors on controller 1,
/// 1k grants, `people` people in 50 groups with `cards_per_person` cards each.
async fn seed(store: &Store, s: &Sizes) {
    exec(store, "INSERT INTO sites (id, name) VALUES (1, 'City')").await;
    insert_rows(
        store,
        "INSERT INTO zones (id, site_id, name, level, settings)",
        (1..=20).map(|z| {
            let level = SecurityLevel::try_from((z % 5) as u8).unwrap();
            let settings =
                serde_json::to_string(&tobira_firmware::ZoneSettings::for_level(level)).unwrap();
            format!("({z}, 1, 'zone {z}', {}, '{settings}')", level.number())
        }),
    )
    .await;
    for c in 1..=s.controllers {
        store
            .add_controller("bench", 1, &format!("c{c}"))
            .await
            .unwrap();
    }
    insert_rows(
        store,
        "INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader, exit_reader)",
        (1..=200).map(|d| format!("({d}, 'door {d}', 'door', {}, {}, 1, '{{\"biometric\":{d}}}', '{{}}')", 1 + d % 20, 1 + (d * 7) % 20)),
    )
    .await;
    insert_rows(
        store,
        "INSERT INTO access_groups (id, name)",
        (1..=50).map(|g| format!("({g}, 'group {g}')")),
    )
    .await;
    insert_rows(
        store,
        "INSERT INTO grants (id, group_id, zones)",
        (1..=1000).map(|g| {
            format!(
                "({g}, {}, '[{},{},{}]')",
                1 + g % 50,
                1 + g % 20,
                1 + (g * 3) % 20,
                1 + (g * 7) % 20
            )
        }),
    )
    .await;
    insert_rows(
        store,
        "INSERT INTO people (id, kind, name, created_at, changed_version)",
        (1..=s.people).map(|p| {
            format!(
                "({p}, '{}', 'person {p}', 0, 0)",
                ["staff", "staff", "contractor", "visitor", "citizen"][(p % 5) as usize]
            )
        }),
    )
    .await;
    insert_rows(
        store,
        "INSERT INTO group_members (group_id, person_id)",
        (1..=s.people).map(|p| format!("({}, {p})", 1 + p % 50)),
    )
    .await;
    insert_rows(
        store,
        "INSERT INTO cards (uid, person_id, state, issued_at, changed_version)",
        (0..s.people * s.cards_per_person).map(|n| {
            format!(
                "('{:08X}', {}, 'active', 0, 0)",
                0x8000_0000u32 + n as u32,
                1 + n % s.people
            )
        }),
    )
    .await;
    let mut tx = store.begin().await.unwrap();
    let v = store
        .record_change(&mut tx, ChangeScope::Structure, "seed", false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(v, false);
}

fn access(door: u32, person: u32, entry: bool) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(door),
        side: if entry { Side::Entry } else { Side::Exit },
        level: Some(SecurityLevel::L4),
        reason: Reason::Granted,
        person: Some(PersonId(person)),
        card: format!("{:08X}", 0x8000_0000u32 + person).parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

async fn bench_ingest(store: &Store, s: &Sizes, label: &str) {
    let mut batches = Vec::new();
    for c in 1..=s.controllers {
        let mut chain = Chain::genesis(ControllerId(c));
        let mut mine = Vec::new();
        for b in 0..s.batches_per_controller {
            mine.push(
                (0..500)
                    .map(|i| {
                        let n = (b * 500 + i) as u32;
                        chain
                            .seal(
                                Timestamp(1_763_000_000_000 + i64::from(n) * 100),
                                access(1 + n % 200, 1 + n % 1000, n % 2 == 0),
                            )
                            .unwrap()
                    })
                    .collect::<Vec<_>>(),
            );
        }
        batches.push((ControllerId(c), mine));
    }
    let total: usize = batches.iter().map(|(_, b)| b.len() * 500).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (controller, mine) in batches {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for batch in mine {
                let t = Instant::now();
                let r = store.ingest(controller, &batch).await.unwrap();
                assert_eq!(r.stored, 500);
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    times.sort();
    println!(
        "ingest/{label}: {total} events in {} batches of 500 from {} controllers in parallel: {:.0} events/s (batch p50 {:?}, p99 {:?})",
        times.len(),
        s.controllers,
        total as f64 / elapsed.as_secs_f64(),
        times[times.len() / 2],
        times[(times.len() * 99 / 100).min(times.len() - 1)],
    );
}

async fn bench_snapshot(store: &Store, s: &Sizes, label: &str) {
    let signer = tobira_protocol::PolicySigner::generate();
    let key = signer.public_key();
    let mut runs = Vec::new();
    let mut cards = 0;
    let mut bytes = 0;
    for _ in 0..5 {
        // What `GET /sync/v1/snapshot` does: build, sign the JSON text of
        // the message, and serialise the envelope it sends.
        let t = Instant::now();
        let data = store.snapshot_for(ControllerId(1)).await.unwrap();
        let built = t.elapsed();
        cards = data.cards.len();
        let t = Instant::now();
        let signed = signer
            .sign(&tobira_protocol::PolicyMessage::Snapshot {
                controller: ControllerId(1),
                snapshot: data,
            })
            .unwrap();
        let body = serde_json::to_vec(&signed).unwrap();
        let sent = t.elapsed();
        bytes = body.len();
        // The controller's side: verify, parse, validate and index.
        let t = Instant::now();
        let envelope: tobira_protocol::SignedPolicy = serde_json::from_slice(&body).unwrap();
        let message = key.open(&envelope, ControllerId(1)).unwrap();
        let tobira_protocol::PolicyMessage::Snapshot { snapshot, .. } = message else {
            panic!("a snapshot was signed");
        };
        let snap = Snapshot::new(snapshot).unwrap();
        runs.push((built + sent, built, sent, t.elapsed()));
        assert!(snap.data().cards.len() >= (s.people * s.cards_per_person / 2) as usize);
    }
    runs.sort();
    let (total, built, sent, opened) = runs[2];
    println!(
        "snapshot/{label}: {cards} cards, {} people, {bytes} bytes signed: build + sign + serialise {total:?} (median of 5; build {built:?}, sign + serialise {sent:?}); controller verify + parse + validate {opened:?}",
        s.people
    );
    let since = store.policy_version().version;
    let mut tx = store.begin().await.unwrap();
    let v = store
        .record_change(&mut tx, ChangeScope::Card, "card:80000001", true)
        .await
        .unwrap();
    sqlx::query("UPDATE cards SET state = 'lost', changed_version = $1 WHERE uid = '80000001'")
        .bind(v as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.publish(v, true);
    let t = Instant::now();
    let delta = store.delta_for(ControllerId(1), since).await.unwrap();
    println!(
        "delta/{label}: one lost card among {cards}: {:?}",
        t.elapsed()
    );
    assert!(matches!(
        delta,
        tobira_web::store::policy::DeltaAnswer::Delta(_)
    ));
}

/// Fills the events table with `n` events over 180 days directly (fast path for the bench).
async fn fill_history(store: &Store, n: i64) {
    let day = 86_400_000i64;
    let start = 1_750_000_000_000i64;
    let per_stmt = 2_000;
    let mut seq = 1_000_000i64;
    let mut done = 0;
    while done < n {
        let mut tx = store.begin().await.unwrap();
        for _ in 0..25 {
            let rows: Vec<String> = (0..per_stmt)
                .map(|i| {
                    seq += 1;
                    let k = done + i;
                    let at = start + (k * 180 * day) / n;
                    let door = 1 + k % 200;
                    let zone = 1 + (door * 7) % 20;
                    format!(
                        "(9, {seq}, {at}, 'access', {door}, {zone}, 'entry', {}, 'granted', 'granted', {}, '{:08X}', NULL, '{{}}', '', '', {at})",
                        zone % 5,
                        1 + k % 10_000,
                        0x8000_0000u32 + (k % 10_000) as u32
                    )
                })
                .collect();
            sqlx::query(&format!(
                "INSERT INTO events (controller_id, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, escort_id, body, prev, link, received_at) VALUES {}",
                rows.join(",")
            ))
            .execute(&mut *tx)
            .await
            .unwrap();
            done += per_stmt;
            if done >= n {
                break;
            }
        }
        tx.commit().await.unwrap();
    }
}

async fn bench_history(store: &Store, s: &Sizes, label: &str) {
    let t = Instant::now();
    fill_history(store, s.history_events).await;
    if store.backend() == tobira_web::store::Backend::Postgres {
        exec(store, "ANALYZE events").await;
    }
    println!(
        "history/{label}: {} events loaded in {:?}",
        s.history_events,
        t.elapsed()
    );
    let day = 86_400_000i64;
    let end = 1_750_000_000_000i64 + 180 * day;
    let mut times = Vec::new();
    // Level-4 zones are 5, 10, 15, 20; a page of 100 newest entries, and the
    // next page by cursor, for a 90-day window.
    for round in 0..40 {
        let zone = [5i64, 10, 15, 20][round % 4];
        let t = Instant::now();
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT at, controller_id, seq FROM events WHERE zone_id = $1 AND at >= $2 AND at < $3 ORDER BY at DESC, controller_id DESC, seq DESC LIMIT 100",
        )
        .bind(zone)
        .bind(end - 90 * day)
        .bind(end)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let last = rows.last().copied().unwrap_or((end, 0, 0));
        let _next: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT at, controller_id, seq FROM events WHERE zone_id = $1 AND at >= $2 AND (at < $3 OR (at = $4 AND (controller_id < $5 OR (controller_id = $6 AND seq < $7)))) ORDER BY at DESC, controller_id DESC, seq DESC LIMIT 100",
        )
        .bind(zone)
        .bind(end - 90 * day)
        .bind(last.0)
        .bind(last.0)
        .bind(last.1)
        .bind(last.1)
        .bind(last.2)
        .fetch_all(store.pool())
        .await
        .unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "history/{label}: L4 zone, 90 days, two pages of 100 over {} events: p50 {:?}, p95 {:?}",
        s.history_events,
        times[times.len() / 2],
        times[times.len() * 95 / 100]
    );
}

/// `TOBIRA_BENCH_PARTS=ingest,snapshot,history` (default: all) picks what runs;
/// the 10M-event history fill alone takes minutes.
fn wanted(part: &str) -> bool {
    std::env::var("TOBIRA_BENCH_PARTS").map_or(true, |parts| parts.split(',').any(|p| p == part))
}

async fn run(url: &str, s: &Sizes, label: &str) {
    let store = Store::connect(url).await.unwrap();
    seed(&store, s).await;
    if wanted("ingest") {
        bench_ingest(&store, s, label).await;
    }
    if wanted("snapshot") {
        bench_snapshot(&store, s, label).await;
    }
    if wanted("history") {
        bench_history(&store, s, label).await;
    }
    store.close().await;
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { &FULL } else { &SMOKE };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        run(
            &format!("sqlite://{}/bench.db", dir.path().display()),
            sizes,
            "sqlite",
        )
        .await;
        match std::env::var("TOBIRA_TEST_POSTGRES_URL") {
            Ok(url) => run(&url, sizes, "postgres").await,
            Err(_) => println!("postgres: skipped (run through scripts/with-postgres)"),
        }
    });
}
