//! Central service benchmarks, as a bench binary (figures go to docs/performance.md).
//! Every figure times a function on the product's path, named in its line:
//!
//! - ingest: `Store::ingest` called directly, and the sync API's upload
//!   (`POST /sync/v1/events` over loopback HTTP, JSON, controller credentials)
//!   from 8 controllers in parallel, batches of 500 chain-sealed access events;
//! - snapshot: `Store::snapshot_for` + `PolicySigner::sign` + the serialised
//!   envelope, the controller's verify and parse, and `Store::delta_for`;
//! - history: 10M access events stored through `Store::ingest` (production
//!   rows: event body JSON, chain links, names at the time), then
//!   `Store::search_events` for a level-4 zone over 90 days (first page of 100
//!   and the next by cursor), and the same through `GET /api/v1/events` with an
//!   API token, JSON parsed by the client.
//!
//! - history also times the security console's reads over it:
//!   `GET /api/v1/history` (one level-4 zone, 90 days) and `GET /api/v1/inside`
//!   once every person of the seed (10,000) has entered a level-4 zone;
//! - monitor: one access event at a time uploaded through `POST /sync/v1/events`
//!   until it arrives on each of 50 open `GET /api/v1/monitor/stream`
//!   connections;
//!
//! - pages: every web admin page (each list, sorted, filtered, searched and
//!   deep in its pages; each add and edit form) through the real router
//!   in-process with a logged-in session (`tobira_web::server::router_with_ui`,
//!   `tower::ServiceExt::oneshot`, the whole HTML body), with 100k cards, 10k
//!   people and 200 doors in the store: server time per page.
//!
//! SQLite always; PostgreSQL when TOBIRA_TEST_POSTGRES_URL is set
//! (`scripts/with-postgres`). `cargo bench -p tobira-web --bench central` for
//! the real sizes; under `cargo test` it runs a small smoke size so that CI
//! keeps it working. `TOBIRA_BENCH_PARTS=ingest,snapshot,history,pages,monitor` and
//! `TOBIRA_BENCH_BACKENDS=sqlite,postgres` pick what runs (default: all);
//! `TOBIRA_BENCH_HISTORY_EVENTS=N` overrides the history size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tobira_firmware::{
    AccessRecord, Chain, ControllerId, DoorId, EventKind, PersonId, Reason, SealedEvent,
    SecurityLevel, Side, Snapshot, Timestamp, Warnings,
};
use tobira_protocol::{controller_authorization, EventBatch, EventReceipt, PolicySigner};
use tobira_web::store::auth::Role;
use tobira_web::store::queries::EventFilter;
use tobira_web::store::resources::{Id, Millis};
use tobira_web::store::{ChangeScope, Store};
use tobira_web::AppState;

struct Sizes {
    batches_per_controller: usize,
    controllers: u32,
    people: i64,
    cards_per_person: i64,
    history_events: u64,
    /// Rounds of the two-page history query (store and HTTP each).
    history_rounds: usize,
}

const FULL: Sizes = Sizes {
    batches_per_controller: 50,
    controllers: 8,
    people: 10_000,
    cards_per_person: 10,
    history_events: 10_000_000,
    history_rounds: 40,
};
const SMOKE: Sizes = Sizes {
    batches_per_controller: 2,
    controllers: 2,
    people: 100,
    cards_per_person: 2,
    history_events: 40_000,
    history_rounds: 8,
};

/// Events per upload, as the controller sends them.
const BATCH: usize = 500;
const DAY_MS: i64 = 86_400_000;
/// The history spans 180 days from here.
const HISTORY_START: i64 = 1_750_000_000_000;

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

const ZONES: u32 = 20;
const DOORS: u32 = 200;

/// Zone `z`'s level: zones 4, 9, 14 and 19 are level 4.
fn zone_level(zone: u32) -> SecurityLevel {
    SecurityLevel::try_from((zone % 5) as u8).unwrap()
}

/// The zone a door leads into.
fn inside_zone(door: u32) -> u32 {
    1 + (door * 7) % ZONES
}

/// A site with 20 zones (one in five level 4), 200 doors on controller 1,
/// 1k grants, `people` people in 50 groups with `cards_per_person` cards each.
async fn seed(store: &Store, s: &Sizes) {
    exec(store, "INSERT INTO sites (id, name) VALUES (1, 'City')").await;
    insert_rows(
        store,
        "INSERT INTO zones (id, site_id, name, level, settings)",
        (1..=ZONES).map(|z| {
            let level = zone_level(z);
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
        (1..=DOORS).map(|d| format!("({d}, 'door {d}', 'door', {}, {}, 1, '{{\"biometric\":{d}}}', '{{}}')", 1 + d % ZONES, inside_zone(d))),
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

/// The access record a controller writes for event number `n`: a card of one
/// of `people` at one of the 200 doors, at the level of the zone the door
/// leads into; one in ten refused for want of a grant.
fn access(n: u64, people: i64, doors: &[u32]) -> EventKind {
    let door = doors[(n % doors.len() as u64) as usize];
    let person = 1 + (n.wrapping_mul(13) % people as u64) as u32;
    EventKind::Access(AccessRecord {
        door: DoorId(door),
        side: if n % 2 == 0 { Side::Entry } else { Side::Exit },
        level: Some(zone_level(inside_zone(door))),
        reason: if n % 10 == 9 {
            Reason::NoGrant
        } else {
            Reason::Granted
        },
        person: Some(PersonId(person)),
        // The person's first card.
        card: format!("{:08X}", 0x8000_0000u32 + person - 1).parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

/// Doors a controller drives, each with its own id: central files an access
/// event at a door of another controller as suspect (docs/security.md,
/// "Ingest trust"), so every bench controller records at its own doors.
const DOORS_PER_CONTROLLER: u32 = 25;

/// Adds `controller`'s doors (ids `controller * 1000 + 1…`) into zones spread
/// like the site's other doors; returns their ids.
async fn own_doors(store: &Store, controller: u32) -> Vec<u32> {
    let ids: Vec<u32> = (1..=DOORS_PER_CONTROLLER)
        .map(|k| controller * 1000 + k)
        .collect();
    insert_rows(
        store,
        "INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader, exit_reader)",
        ids.iter().map(|d| format!("({d}, 'door {d}', 'door', {}, {}, {controller}, '{{}}', '{{}}')", 1 + d % ZONES, inside_zone(*d))),
    )
    .await;
    ids
}

/// One controller's events as it seals and sends them: `batches` batches of
/// 500 at its own `doors`, chain-linked from its genesis, 100 ms apart.
fn sealed_batches(
    controller: u32,
    batches: usize,
    people: i64,
    doors: &[u32],
) -> Vec<Vec<SealedEvent>> {
    let mut chain = Chain::genesis(ControllerId(controller));
    (0..batches)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let n = (b * BATCH + i) as u64;
                    chain
                        .seal(
                            Timestamp(1_763_000_000_000 + n as i64 * 100),
                            access(n, people, doors),
                        )
                        .unwrap()
                })
                .collect()
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// `Store::ingest` called directly by 8 tasks (one per controller).
async fn bench_ingest(store: &Store, s: &Sizes, label: &str) {
    let mut batches: Vec<(ControllerId, Vec<Vec<SealedEvent>>)> = Vec::new();
    for c in 1..=s.controllers {
        let doors = own_doors(store, c).await;
        batches.push((
            ControllerId(c),
            sealed_batches(c, s.batches_per_controller, s.people, &doors),
        ));
    }
    let total: usize = batches.iter().map(|(_, b)| b.len() * BATCH).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (controller, mine) in batches {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for batch in mine {
                let t = Instant::now();
                let r = store
                    .ingest(controller, tobira_firmware::ChainEpoch::FIRST, &batch)
                    .await
                    .unwrap();
                assert_eq!(r.stored, BATCH as u64);
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
        "ingest-store/{label}: Store::ingest, {total} events in {} batches of {BATCH} from {} controllers in parallel: {:.0} events/s (batch p50 {:?}, p99 {:?})",
        times.len(),
        s.controllers,
        total as f64 / elapsed.as_secs_f64(),
        percentile(&times, 50),
        percentile(&times, 99),
    );
}

/// The real router on a loopback port, as `tobira web` serves it.
async fn serve(store: &Store) -> String {
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, tobira_web::router(state))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

/// Upload through the sync API as registered controllers do it: each of 8
/// controllers with its own credentials and HTTP client POSTs its sealed
/// batches in order to `/sync/v1/events` and reads the JSON receipt.
async fn bench_upload(store: &Store, base: &str, s: &Sizes, label: &str) {
    let mut uploads = Vec::new();
    for c in 0..s.controllers {
        let credentials = store
            .add_controller("bench", 1, &format!("upload {c}"))
            .await
            .unwrap();
        let id = ControllerId(credentials.controller);
        uploads.push((
            controller_authorization(id, &credentials.secret),
            sealed_batches(
                id.0,
                s.batches_per_controller,
                s.people,
                &own_doors(store, id.0).await,
            ),
        ));
    }
    let total: usize = uploads.iter().map(|(_, b)| b.len() * BATCH).sum();
    let url = format!("{base}/sync/v1/events");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (auth, mine) in uploads {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut times = Vec::new();
            for events in mine {
                let last = events.last().unwrap().event.seq;
                let t = Instant::now();
                let response = http
                    .post(&url)
                    .header("Authorization", &auth)
                    .json(&EventBatch {
                        epoch: tobira_firmware::ChainEpoch::FIRST,
                        events,
                    })
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), reqwest::StatusCode::OK);
                let receipt: EventReceipt = response.json().await.unwrap();
                times.push(t.elapsed());
                assert_eq!(
                    (receipt.stored, receipt.stored_through, receipt.chain_break),
                    (BATCH as u64, last, None)
                );
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
        "ingest-http/{label}: POST /sync/v1/events (controller auth, JSON, Store::ingest), {total} events in {} batches of {BATCH} from {} controllers in parallel: {:.0} events/s (batch p50 {:?}, p99 {:?})",
        times.len(),
        s.controllers,
        total as f64 / elapsed.as_secs_f64(),
        percentile(&times, 50),
        percentile(&times, 99),
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
            .sign(&tobira_protocol::PolicyMessage::FreshSnapshot {
                controller: ControllerId(1),
                snapshot: data,
                nonce: tobira_protocol::new_nonce(),
                central_time: tobira_firmware::Timestamp(0),
            })
            .unwrap();
        let body = serde_json::to_vec(&signed).unwrap();
        let sent = t.elapsed();
        bytes = body.len();
        // The controller's side: verify, parse, validate and index.
        let t = Instant::now();
        let envelope: tobira_protocol::SignedPolicy = serde_json::from_slice(&body).unwrap();
        let message = key.open(&envelope, ControllerId(1)).unwrap();
        let tobira_protocol::PolicyMessage::FreshSnapshot { snapshot, .. } = message else {
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

/// Fills the history with `n` access events over 180 days, stored the way
/// the product stores them: 8 controllers, each sealing its share in batches
/// of 500 and handing them to `Store::ingest`.
async fn fill_history(store: &Store, n: u64, people: i64, label: &str) {
    const FILLERS: u64 = 8;
    let mut tasks = Vec::new();
    let started = Instant::now();
    for f in 0..FILLERS {
        let id = store
            .add_controller("bench", 1, &format!("history {f}"))
            .await
            .unwrap()
            .controller;
        let doors = own_doors(store, id).await;
        let store = store.clone();
        let label = label.to_string();
        tasks.push(tokio::spawn(async move {
            let mut chain = Chain::genesis(ControllerId(id));
            // Event k of the whole history is this controller's when k % 8 == f.
            let mut k = f;
            let mut batch = Vec::with_capacity(BATCH);
            while k < n {
                let at = HISTORY_START + (k as i64 * 180 * DAY_MS) / n as i64;
                batch.push(
                    chain
                        .seal(Timestamp(at), access(k, people, &doors))
                        .unwrap(),
                );
                k += FILLERS;
                if batch.len() == BATCH || k >= n {
                    let r = store
                        .ingest(ControllerId(id), tobira_firmware::ChainEpoch::FIRST, &batch)
                        .await
                        .unwrap();
                    assert_eq!(r.stored, batch.len() as u64);
                    batch.clear();
                    // Progress, so a long fill can be watched.
                    if f == 0 && (k / FILLERS) % 250_000 < BATCH as u64 {
                        eprintln!(
                            "history/{label}: about {k} of {n} events stored after {:?}",
                            started.elapsed()
                        );
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// What the security desk asks: a level-4 zone's events over 90 days, first
/// page of 100 and the next by cursor.
fn zone_filter(zone: i64, end: i64) -> EventFilter {
    EventFilter {
        zone: Id::new(zone),
        from: Millis::new(end - 90 * DAY_MS),
        to: Millis::new(end),
        ..EventFilter::default()
    }
}

async fn bench_history(store: &Store, base: &str, s: &Sizes, label: &str) {
    let n = std::env::var("TOBIRA_BENCH_HISTORY_EVENTS")
        .map_or(s.history_events, |v| v.parse().unwrap());
    let t = Instant::now();
    fill_history(store, n, s.people, label).await;
    let filled = t.elapsed();
    if store.backend() == tobira_web::store::Backend::Postgres {
        exec(store, "ANALYZE").await;
    }
    let (count, size): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(body) + LENGTH(prev) + LENGTH(link)), 0) FROM events",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    println!(
        "history/{label}: {n} access events stored through Store::ingest (8 controllers, batches of {BATCH}) in {filled:?}: {:.0} events/s; the table holds {count} events, body + links {} bytes per event on average",
        n as f64 / filled.as_secs_f64(),
        size / count.max(1)
    );
    // The zones the product knows as level 4.
    let zones: Vec<i64> = sqlx::query_scalar("SELECT id FROM zones WHERE level = 4 ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(zones, [4, 9, 14, 19]);
    let end = HISTORY_START + 180 * DAY_MS;
    let check = |zone: i64, rows: &[tobira_web::store::queries::EventRecord]| {
        assert_eq!(rows.len(), 100);
        for e in rows {
            assert_eq!((e.zone_id, e.level), (Some(zone), Some(4)));
            assert!(e.person_name.is_some() && e.door_name.is_some());
        }
    };

    let mut times = Vec::new();
    for round in 0..s.history_rounds {
        let zone = zones[round % zones.len()];
        let filter = zone_filter(zone, end);
        let t = Instant::now();
        let first = store.search_events(&filter, 100, None).await.unwrap();
        let next = store
            .search_events(&filter, 100, first.next.as_deref())
            .await
            .unwrap();
        times.push(t.elapsed());
        check(zone, &first.items);
        check(zone, &next.items);
        assert!(first.items.last().unwrap().at >= next.items[0].at);
    }
    times.sort();
    println!(
        "history-store/{label}: Store::search_events, L4 zone, 90 days, first page of 100 + next by cursor, {count} events in the table: p50 {:?}, p95 {:?}",
        percentile(&times, 50),
        percentile(&times, 95)
    );

    let token = store
        .create_token("bench", "security desk", Role::Security, 1)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let page = |zone: i64, cursor: Option<String>| {
        let mut query = vec![
            ("zone", zone.to_string()),
            ("from", (end - 90 * DAY_MS).to_string()),
            ("to", end.to_string()),
            ("limit", "100".to_string()),
        ];
        query.extend(cursor.map(|c| ("cursor", c)));
        let request = http
            .get(format!("{base}/api/v1/events"))
            .bearer_auth(&token)
            .query(&query);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            let page: serde_json::Value = response.json().await.unwrap();
            let items = page["items"].as_array().unwrap();
            assert_eq!(items.len(), 100);
            assert!(items
                .iter()
                .all(|e| e["zone_id"] == zone && e["level"] == 4 && e["body"].is_object()));
            page["next"].as_str().map(str::to_string)
        }
    };
    let mut times = Vec::new();
    for round in 0..s.history_rounds {
        let zone = zones[round % zones.len()];
        let t = Instant::now();
        let next = page(zone, None).await;
        assert!(next.is_some());
        page(zone, next).await;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "history-http/{label}: GET /api/v1/events (API token, JSON parsed by the client), same query, {count} events in the table: p50 {:?}, p95 {:?}",
        percentile(&times, 50),
        percentile(&times, 95)
    );
    bench_console_reads(store, base, &token, &zones, end, s, label).await;
}

/// Everyone walks into a level-4 zone at the end of the history, so that
/// `/inside` has every person of the seed inside (10,000 at full size):
/// one more controller's access events through `Store::ingest`.
async fn everyone_enters(store: &Store, people: i64, at: i64) {
    let id = store
        .add_controller("bench", 1, "everyone enters")
        .await
        .unwrap()
        .controller;
    let doors: Vec<u32> = own_doors(store, id)
        .await
        .into_iter()
        .filter(|d| zone_level(inside_zone(*d)) == SecurityLevel::L4)
        .collect();
    assert!(!doors.is_empty());
    let mut chain = Chain::genesis(ControllerId(id));
    let events: Vec<SealedEvent> = (1..=people)
        .map(|p| {
            let person = p as u32;
            let kind = EventKind::Access(AccessRecord {
                door: DoorId(doors[p as usize % doors.len()]),
                side: Side::Entry,
                level: Some(SecurityLevel::L4),
                reason: Reason::Granted,
                person: Some(PersonId(person)),
                card: format!("{:08X}", 0x8000_0000u32 + person - 1).parse().ok(),
                escort: None,
                warnings: Warnings::default(),
            });
            chain.seal(Timestamp(at + p), kind).unwrap()
        })
        .collect();
    for batch in events.chunks(BATCH) {
        store
            .ingest(ControllerId(id), tobira_firmware::ChainEpoch::FIRST, batch)
            .await
            .unwrap();
    }
}

/// The security console's two reads over the filled history, through the
/// real router with an API token, JSON parsed by the client:
/// `GET /api/v1/history` (`Store::history`: the visits of one level-4 zone
/// over 90 days, first page of 100, with the denied attempts beside them,
/// and its `history.read` audit entry) and `GET /api/v1/inside`
/// (`Store::inside`: everyone inside every tracked zone, and its audit entry).
async fn bench_console_reads(
    store: &Store,
    base: &str,
    token: &str,
    zones: &[i64],
    end: i64,
    s: &Sizes,
    label: &str,
) {
    everyone_enters(store, s.people, end).await;
    let http = reqwest::Client::new();
    let get = |path: String, query: Vec<(&'static str, String)>| {
        let request = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .query(&query);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let mut times = Vec::new();
    for round in 0..s.history_rounds {
        let zone = zones[round % zones.len()];
        let query = vec![
            ("zone", zone.to_string()),
            ("from", (end + DAY_MS - 90 * DAY_MS).to_string()),
            ("to", (end + DAY_MS).to_string()),
            ("limit", "100".to_string()),
        ];
        let t = Instant::now();
        let history = get("/api/v1/history".into(), query).await;
        times.push(t.elapsed());
        let visits = history["visits"]["items"].as_array().unwrap();
        assert_eq!(visits.len(), 100, "{zone}");
        assert!(visits.iter().all(|v| v["zone_id"] == zone));
    }
    times.sort();
    println!(
        "console-history/{label}: GET /api/v1/history (Store::history), one L4 zone, 90 days, first page of 100 visits with the denied attempts: p50 {:?}, p95 {:?}",
        percentile(&times, 50),
        percentile(&times, 95)
    );
    let mut times = Vec::new();
    let mut inside = 0;
    for _ in 0..s.history_rounds {
        let t = Instant::now();
        let zones = get("/api/v1/inside".into(), Vec::new()).await;
        times.push(t.elapsed());
        inside = zones
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z["people"].as_array().unwrap().len())
            .sum::<usize>();
    }
    assert!(inside >= s.people as usize, "{inside}");
    times.sort();
    println!(
        "console-inside/{label}: GET /api/v1/inside (Store::inside), {inside} people inside: p50 {:?}, p95 {:?}",
        percentile(&times, 50),
        percentile(&times, 95)
    );
}

/// Streams the monitor bench keeps open.
const MONITOR_STREAMS: usize = 50;

/// Reads one `/api/v1/monitor/stream` and reports, for every event update,
/// which stream saw which (controller, seq) and when.
async fn watch_stream(
    stream: usize,
    mut response: reqwest::Response,
    seen: tokio::sync::mpsc::UnboundedSender<(usize, i64, u64, Instant)>,
) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            for line in message.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let update: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                if update["type"] == "event" {
                    let controller = update["controller_id"].as_i64().unwrap();
                    let seq = update["seq"].as_u64().unwrap();
                    if seen.send((stream, controller, seq, at)).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The live monitor: with 50 `GET /api/v1/monitor/stream` connections open
/// (security token, server-sent events read and parsed by the client), a
/// controller uploads one access event at a time through
/// `POST /sync/v1/events`; the time from the upload's start until each stream
/// has the event (ingest, the hub's read of the stored batch, the fan-out and
/// render per stream, HTTP).
async fn bench_monitor(store: &Store, base: &str, s: &Sizes, label: &str) {
    let token = store
        .create_token("bench", "monitor desk", Role::Security, 1)
        .await
        .unwrap();
    let credentials = store.add_controller("bench", 1, "monitor").await.unwrap();
    let id = ControllerId(credentials.controller);
    let auth = controller_authorization(id, &credentials.secret);
    let doors = own_doors(store, id.0).await;
    let http = reqwest::Client::new();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    for stream in 0..MONITOR_STREAMS {
        let response = http
            .get(format!("{base}/api/v1/monitor/stream"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        tokio::spawn(watch_stream(stream, response, seen_tx.clone()));
    }
    let mut chain = Chain::genesis(id);
    let rounds = s.history_rounds * 5;
    let mut times = Vec::new();
    // Round 0 only warms up: every stream is connected once it has it.
    for round in 0..=rounds {
        let event = chain
            .seal(
                Timestamp(1_790_000_000_000 + round as i64 * 1000),
                access(round as u64, s.people, &doors),
            )
            .unwrap();
        let seq = event.event.seq;
        let started = Instant::now();
        let response = http
            .post(format!("{base}/sync/v1/events"))
            .header("Authorization", &auth)
            .json(&EventBatch {
                epoch: tobira_firmware::ChainEpoch::FIRST,
                events: vec![event],
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let mut waiting = MONITOR_STREAMS;
        let deadline = started + Duration::from_secs(30);
        while waiting > 0 {
            let (_, controller, got, at) = tokio::time::timeout_at(deadline.into(), seen.recv())
                .await
                .expect("every stream gets the event within 30 s")
                .unwrap();
            if controller == i64::from(id.0) && got == seq {
                waiting -= 1;
                if round > 0 {
                    times.push(at - started);
                }
            }
        }
    }
    times.sort();
    println!(
        "monitor/{label}: POST /sync/v1/events of one access event until it arrives on each of {MONITOR_STREAMS} open GET /api/v1/monitor/stream connections, {rounds} events, {} arrivals: p50 {:?}, p95 {:?}, max {:?}",
        times.len(),
        percentile(&times, 50),
        percentile(&times, 95),
        times.last().unwrap()
    );
}

/// The rows the page bench shows beside the seeded ones: a schedule, an
/// enrollment and a booking.
async fn seed_pages(store: &Store) {
    exec(store, "INSERT INTO schedules (id, name, windows) VALUES (1, 'office hours', '[{\"days\":31,\"start\":510,\"end\":1035}]')").await;
    exec(
        store,
        "INSERT INTO enrollments (person_id, module_id, slot, enrolled_at) VALUES (1, 1, 1, 0)",
    )
    .await;
    exec(store, "INSERT INTO bookings (id, person_id, room_zone_id, path, start_at, end_at) VALUES (1, 2, 2, '[1]', 0, 3600000)").await;
}

/// Server time of every page, as a logged-in facilities admin sees it.
async fn bench_pages(store: &Store, s: &Sizes, label: &str) {
    use tower::ServiceExt;
    seed_pages(store).await;
    let password = "Kasumigaseki-Blue-Heron-42";
    store
        .create_user("bench", "bench-admin", password, Role::Admin)
        .await
        .unwrap();
    let policy = tobira_web::store::sessions::SessionPolicy::default();
    let now = tobira_web::store::now_ms();
    let session = match store
        .login("bench-admin", password, "127.0.0.1", None, policy, now)
        .await
        .unwrap()
    {
        tobira_web::store::sessions::LoginOutcome::Opened(s) => s.id,
        other => panic!("login: {other:?}"),
    };
    // A change waiting for a second admin: the approval pages show it (change 1).
    store
        .request_change(
            "bench",
            &serde_json::from_value(
                serde_json::json!({"kind": "site_threat", "site_id": 1, "threat": "high"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let router = tobira_web::server::router_with_ui(state, tobira_web::ui::UiOptions::default());
    let key = |pattern: &str| -> String {
        let key = match pattern.split('/').nth(1).unwrap_or("") {
            "sites" | "controllers" | "schedules" | "bookings" => "1".to_string(),
            "zones" => "4".into(),
            "doors" => "17".into(),
            "people" => (s.people / 2).to_string(),
            "enrollments" => "1-1".into(),
            "cards" => "80000000".into(),
            "groups" => "7".into(),
            "grants" => "10".into(),
            _ => String::new(),
        };
        // The bench's own admin is user 1; any month reviews (the events' one is best).
        pattern
            .replace("{key}", &key)
            .replace("{id}", "1")
            .replace("{month}", "2026-11")
    };
    let deep = s.people * s.cards_per_person / 100;
    let mut paths: Vec<String> = tobira_web::ui::page_get_paths()
        .iter()
        .filter(|p| *p != "/login")
        .map(|p| key(p))
        .collect();
    paths.extend([
        "/cards?sort=state&dir=desc".to_string(),
        "/cards?sort=person_id&dir=asc".to_string(),
        format!("/cards?state=active&page={deep}"),
        "/cards?q=8000".to_string(),
        "/people?sort=name&dir=desc".to_string(),
        format!("/people?kind=staff&page={}", (s.people / 250).max(1)),
        "/people?q=person%2099".to_string(),
        "/doors?sort=name&inside_zone_id=4".to_string(),
        "/audit?action=card.&text=lost".to_string(),
    ]);
    let rounds = s.history_rounds;
    let mut worst: Vec<(Duration, String)> = Vec::new();
    for path in &paths {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let request = axum::http::Request::get(path.as_str())
                .header("cookie", format!("tobira_session={session}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let started = Instant::now();
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
                .await
                .unwrap();
            times.push(started.elapsed());
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        }
        times.sort();
        println!(
            "{label} pages: GET {path} (server time, {rounds} rounds): p50 {:?} p95 {:?} max {:?}",
            percentile(&times, 50),
            percentile(&times, 95),
            times[times.len() - 1]
        );
        worst.push((percentile(&times, 95), path.clone()));
    }
    worst.sort();
    let (p95, path) = worst.last().unwrap();
    println!(
        "{label} pages: {} pages, slowest p95 {p95:?} ({path}); target p95 <= 30 ms: {}",
        paths.len(),
        if *p95 <= Duration::from_millis(30) {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// `TOBIRA_BENCH_PARTS=ingest,snapshot,history,pages,monitor` (default: all) picks what runs;
/// the 10M-event history fill alone takes minutes.
fn wanted(part: &str) -> bool {
    listed("TOBIRA_BENCH_PARTS", part)
}

/// `TOBIRA_BENCH_BACKENDS=sqlite,postgres` (default: both) picks the stores,
/// so that the two long history fills can run as separate processes.
fn backend(name: &str) -> bool {
    listed("TOBIRA_BENCH_BACKENDS", name)
}

fn listed(variable: &str, name: &str) -> bool {
    std::env::var(variable).map_or(true, |names| names.split(',').any(|n| n == name))
}

async fn run(url: &str, s: &Sizes, label: &str) {
    let store = Store::connect(url).await.unwrap();
    seed(&store, s).await;
    let base = serve(&store).await;
    if wanted("ingest") {
        bench_ingest(&store, s, label).await;
        bench_upload(&store, &base, s, label).await;
    }
    if wanted("snapshot") {
        bench_snapshot(&store, s, label).await;
    }
    if wanted("history") {
        bench_history(&store, &base, s, label).await;
    }
    if wanted("pages") {
        bench_pages(&store, s, label).await;
    }
    if wanted("monitor") {
        bench_monitor(&store, &base, s, label).await;
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
        if backend("sqlite") {
            let dir = tempfile::tempdir().unwrap();
            run(
                &format!("sqlite://{}/bench.db", dir.path().display()),
                sizes,
                "sqlite",
            )
            .await;
        }
        if backend("postgres") {
            match std::env::var("TOBIRA_TEST_POSTGRES_URL") {
                Ok(url) => run(&url, sizes, "postgres").await,
                Err(_) => println!("postgres: skipped (run through scripts/with-postgres)"),
            }
        }
    });
}
