//! The sync client against a real central service over HTTP: signed snapshots,
//! lost cards through watch + delta, refused policy (wrong key, tampered,
//! misaddressed, replayed, unappliable, forged "up to date", downgraded),
//! events exactly once through outages,
//! prompt shutdown. Every test with a central store runs on both backends,
//! SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tobira_controller::clock::now_utc;
use tobira_controller::config::CentralConfig;
use tobira_controller::outbox::Outbox;
use tobira_controller::policy::PolicyStore;
use tobira_controller::status::{Status, StatusBoard};
use tobira_controller::sync;
use tobira_firmware::{CardState, CardUid, DoorId, EventKind, SealedEvent, Timestamp};
use tobira_protocol::{
    controller_authorization, new_nonce, EventBatch, PolicyMessage, PolicySigner, SignedPolicy,
    SnapshotNeeded, DELTA_PATH, EVENTS_PATH, SNAPSHOT_PATH, WATCH_PATH,
};
use tobira_web::store::resources::cards::CardAction;
use tobira_web::store::resources::Uid;
use tobira_web::{AppState, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

// The central store's test city hall, shared with the web crate's tests.
#[path = "../../web/tests/support/mod.rs"]
mod city_hall;
use city_hall::{seed, uid_of, C1, C2, SATO, YAMADA};

fn card_uid(person: i64) -> CardUid {
    uid_of(person).parse().unwrap()
}

// ---------------------------------------------------------------- central

/// A central service on a fresh store, seeded with the city hall of the web
/// tests; it listens only once `serve` is called.
struct Central {
    store: Store,
    signer_hex: String,
    public_key: String,
    /// Controller 1's secret.
    secret: String,
    url: Option<String>,
}

impl Central {
    async fn new(store: Store) -> Central {
        let (secret, _) = seed(&store).await;
        let signer = PolicySigner::generate();
        Central {
            store,
            signer_hex: signer.to_hex(),
            public_key: signer.public_key().to_hex(),
            secret,
            url: None,
        }
    }

    async fn start(store: Store) -> Central {
        let mut c = Central::new(store).await;
        c.serve(TcpListener::bind("127.0.0.1:0").await.unwrap());
        c
    }

    fn serve(&mut self, listener: TcpListener) {
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(
            self.store.clone(),
            Arc::new(PolicySigner::from_hex(&self.signer_hex).unwrap()),
        );
        tokio::spawn(async move {
            axum::serve(listener, tobira_web::router(state))
                .await
                .unwrap();
        });
        self.url = Some(format!("http://{addr}"));
    }

    fn url(&self) -> String {
        self.url.clone().expect("central is not serving")
    }

    fn version(&self) -> u64 {
        self.store.policy_version().version
    }

    async fn card(&self, person: i64, action: CardAction) {
        let uid = Uid::parse(&uid_of(person)).unwrap();
        self.store
            .card_action("test", &uid, action, None)
            .await
            .unwrap();
    }

    /// The signed snapshot controller 1 would get now (bound to a request of its own).
    async fn signed_snapshot(&self) -> SignedPolicy {
        reqwest::Client::new()
            .get(format!(
                "{}{SNAPSHOT_PATH}?nonce={}",
                self.url(),
                new_nonce()
            ))
            .header("Authorization", controller_authorization(C1, &self.secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Controller 1's stored events: (seq, link), in sequence order.
    async fn events(&self) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT seq, link FROM events WHERE controller_id = 1 ORDER BY seq")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }

    /// When the central service recorded policy version `version` (its own clock).
    async fn recorded_at(&self, version: u64) -> i64 {
        sqlx::query_scalar("SELECT at FROM policy_changes WHERE version = $1")
            .bind(version as i64)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn chain_breaks(&self) -> i64 {
        self.alarms("chain_break").await
    }

    async fn alarms(&self, kind: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM alarms WHERE kind = $1")
            .bind(kind)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------- proxy

/// What the man in the middle does to policy answers.
#[derive(Debug, Clone)]
enum Mode {
    /// Nothing.
    Pass,
    /// Un-loses lost cards in the payload, keeping the signature.
    Tamper,
    /// Re-signs deltas (with the real key) so that they start from the wrong version.
    Unappliable,
    /// Re-signs policy (with the real key) for controller 2.
    OtherController,
    /// Answers every delta request with 409 and every snapshot request with this old, genuine snapshot.
    Replay(SignedPolicy),
    /// Swallows policy changes the old way: 204 to every delta request, an
    /// unsigned `version == since` to every watch.
    Forge,
    /// Answers delta and watch requests with the last genuine signed
    /// answers captured while passing.
    ReplayAnswers,
    /// Answers delta requests with a confirmation of an older version,
    /// signed with the real key for the request's own nonce.
    Downgrade,
}

/// An HTTP proxy in front of the central service that logs requests and
/// alters policy answers according to its mode.
struct Proxy {
    url: String,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    signer: PolicySigner,
    mode: Mutex<Mode>,
    /// "METHOD path" of each request, in order.
    log: Mutex<Vec<String>>,
    /// Sequence numbers of every event posted, in order.
    posted: Mutex<Vec<u64>>,
    /// Policy answers altered.
    altered: AtomicUsize,
    /// The last genuine 200 answers to delta and watch requests, by path.
    captured: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl Proxy {
    async fn start(central: &Central) -> Proxy {
        let state = Arc::new(ProxyState {
            upstream: central.url(),
            http: reqwest::Client::new(),
            signer: PolicySigner::from_hex(&central.signer_hex).unwrap(),
            mode: Mutex::new(Mode::Pass),
            log: Mutex::default(),
            posted: Mutex::default(),
            altered: AtomicUsize::new(0),
            captured: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    fn posted(&self) -> Vec<u64> {
        self.state.posted.lock().unwrap().clone()
    }

    fn altered(&self) -> usize {
        self.state.altered.load(Ordering::SeqCst)
    }

    fn captured(&self, path: &str) -> bool {
        self.state.captured.lock().unwrap().contains_key(path)
    }
}

/// The value of `name` in a query string.
fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    let (_, query) = path_and_query.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

async fn forward(
    axum::extract::State(p): axum::extract::State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .unwrap();
    p.log.lock().unwrap().push(format!("{method} {path}"));
    if path == EVENTS_PATH {
        let batch: EventBatch = serde_json::from_slice(&body).unwrap();
        p.posted
            .lock()
            .unwrap()
            .extend(batch.events.iter().map(|e| e.event.seq));
    }
    let mode = p.mode.lock().unwrap().clone();
    if let Mode::Replay(old) = &mode {
        if path == DELTA_PATH {
            let needed = SnapshotNeeded {
                version: 0,
                reason: "replay".into(),
            };
            return (StatusCode::CONFLICT, Json(needed)).into_response();
        }
        if path == SNAPSHOT_PATH {
            p.altered.fetch_add(1, Ordering::SeqCst);
            return Json(old.clone()).into_response();
        }
    }
    let forged = match &mode {
        Mode::Forge if path == DELTA_PATH => Some(StatusCode::NO_CONTENT.into_response()),
        Mode::Forge if path == WATCH_PATH => {
            let since: u64 = query_param(&path_and_query, "since")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Some(Json(serde_json::json!({"version": since, "urgent": false})).into_response())
        }
        Mode::ReplayAnswers if path == DELTA_PATH || path == WATCH_PATH => {
            p.captured.lock().unwrap().get(&path).map(|body| {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.clone(),
                )
                    .into_response()
            })
        }
        Mode::Downgrade if path == DELTA_PATH => {
            let since: u64 = query_param(&path_and_query, "since")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let signed = p
                .signer
                .sign(&PolicyMessage::Current {
                    controller: tobira_firmware::ControllerId(1),
                    version: since.saturating_sub(1),
                    nonce: query_param(&path_and_query, "nonce").unwrap_or_default(),
                    central_time: now_utc(),
                })
                .unwrap();
            Some(Json(signed).into_response())
        }
        _ => None,
    };
    if let Some(answer) = forged {
        p.altered.fetch_add(1, Ordering::SeqCst);
        return answer;
    }
    let mut upstream = p
        .http
        .request(method, format!("{}{path_and_query}", p.upstream))
        .body(body.to_vec());
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await.unwrap();
    let status = answer.status();
    let mut body = answer.bytes().await.unwrap().to_vec();
    if status == StatusCode::OK && (path == DELTA_PATH || path == WATCH_PATH) {
        if let Mode::Pass = mode {
            p.captured
                .lock()
                .unwrap()
                .insert(path.clone(), body.clone());
        }
    }
    if status == StatusCode::OK && (path == DELTA_PATH || path == SNAPSHOT_PATH) {
        body = p.alter(&mode, body);
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl ProxyState {
    fn alter(&self, mode: &Mode, body: Vec<u8>) -> Vec<u8> {
        let mut envelope: SignedPolicy = serde_json::from_slice(&body).unwrap();
        let message: PolicyMessage = serde_json::from_str(&envelope.payload).unwrap();
        let altered = match (mode, message) {
            (Mode::Tamper, _) => {
                let payload = envelope
                    .payload
                    .replace("\"state\":\"lost\"", "\"state\":\"active\"");
                let changed = payload != envelope.payload;
                envelope.payload = payload;
                changed.then_some(envelope)
            }
            (
                Mode::Unappliable,
                PolicyMessage::FreshDelta {
                    controller,
                    mut delta,
                    nonce,
                    central_time,
                },
            ) => {
                delta.from += 1;
                Some(
                    self.signer
                        .sign(&PolicyMessage::FreshDelta {
                            controller,
                            delta,
                            nonce,
                            central_time,
                        })
                        .unwrap(),
                )
            }
            (
                Mode::OtherController,
                PolicyMessage::FreshDelta {
                    delta,
                    nonce,
                    central_time,
                    ..
                },
            ) => Some(
                self.signer
                    .sign(&PolicyMessage::FreshDelta {
                        controller: C2,
                        delta,
                        nonce,
                        central_time,
                    })
                    .unwrap(),
            ),
            (
                Mode::OtherController,
                PolicyMessage::FreshSnapshot {
                    snapshot,
                    nonce,
                    central_time,
                    ..
                },
            ) => Some(
                self.signer
                    .sign(&PolicyMessage::FreshSnapshot {
                        controller: C2,
                        snapshot,
                        nonce,
                        central_time,
                    })
                    .unwrap(),
            ),
            _ => None,
        };
        match altered {
            Some(envelope) => {
                self.altered.fetch_add(1, Ordering::SeqCst);
                serde_json::to_vec(&envelope).unwrap()
            }
            None => body,
        }
    }
}

// ---------------------------------------------------------------- controller

/// A controller's state database, policy cache, outbox and status board.
struct Door {
    policy: PolicyStore,
    outbox: Outbox,
    board: StatusBoard,
    _dir: tempfile::TempDir,
}

impl Door {
    async fn open() -> Door {
        Door::open_at(tempfile::tempdir().unwrap()).await
    }

    /// A board on the state database in `dir`.
    async fn open_at(dir: tempfile::TempDir) -> Door {
        let pool = tobira_controller::state::open(&dir.path().join("controller.sqlite"))
            .await
            .unwrap();
        Door {
            policy: PolicyStore::load(pool.clone()).await.unwrap(),
            outbox: Outbox::open(pool, C1).await.unwrap(),
            board: StatusBoard::new(C1.0, now_utc()),
            _dir: dir,
        }
    }

    fn status(&self) -> Status {
        self.board.read()
    }

    /// A copy of the state database as it is now, as an image of the SD card would hold it.
    async fn copy(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.sqlite");
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_str().unwrap())
            .execute(self.outbox.pool())
            .await
            .unwrap();
        dir
    }

    fn card_state(&self, person: i64) -> Option<CardState> {
        self.policy
            .current()
            .snapshot
            .card(&card_uid(person))
            .map(|c| c.state)
    }

    async fn append(&self, n: u32) -> Vec<SealedEvent> {
        let kinds = (0..n)
            .map(|i| EventKind::DoorClosed {
                door: DoorId(20 + i % 2),
            })
            .collect();
        self.outbox.append(now_utc(), kinds).await.unwrap()
    }

    fn sync(&self, central: CentralConfig) -> Running {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(sync::run(
            central,
            C1,
            self.policy.clone(),
            self.outbox.clone(),
            self.board.clone(),
            tokio::sync::mpsc::unbounded_channel().0,
            stopped,
        ));
        Running { stop, task }
    }
}

fn config(url: &str, public_key: &str, secret: &str) -> CentralConfig {
    CentralConfig {
        url: url.to_owned(),
        secret: Some(secret.to_owned()),
        public_key: public_key.to_owned(),
        watch_ms: 20_000,
        batch: 500,
        backoff_min_ms: 20,
        backoff_max_ms: 200,
        // These tests are about policy and events; passages have their own.
        passages_ms: 0,
        ca_file: None,
        // A local test server speaks plain HTTP.
        allow_insecure_http: true,
    }
}

/// A running sync client.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the client; returns how long it took to return.
    async fn stop(self) -> Duration {
        let asked = Instant::now();
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the sync client did not stop")
            .unwrap();
        asked.elapsed()
    }
}

/// Waits until `done` holds, failing after `within`.
async fn eventually(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- tests

async fn the_first_sync_takes_the_signed_snapshot_and_a_lost_card_arrives_within_a_second(
    store: Store,
) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let door = Door::open().await;
    assert_eq!(door.policy.version(), 0);
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));

    // The status board catches up just after the policy is in force (the
    // sync client records the update and the successful exchange next).
    eventually("the first snapshot", PATIENCE, async || {
        let status = door.status();
        door.policy.version() == central.version()
            && status.policy.version == central.version()
            && status.sync.online
    })
    .await;
    assert_eq!(door.card_state(SATO), Some(CardState::Active));
    assert_eq!(door.policy.current().snapshot.data().doors.len(), 2);
    let status = door.status();
    assert!(status.sync.online);
    assert_eq!(status.sync.central.as_deref(), Some(proxy.url.as_str()));
    assert_eq!(status.sync.policy_updates, 1);
    assert_eq!(status.sync.policy_refused, 0);
    assert_eq!(status.policy.version, central.version());
    assert!(status.policy.confirmed_at_ms > 0);

    // Report the card lost at the central service; wait until the door's policy has it.
    let mut policy = door.policy.subscribe();
    central.card(SATO, CardAction::ReportLost).await;
    tokio::time::timeout(
        PATIENCE,
        policy.wait_for(|c| {
            c.snapshot.card(&card_uid(SATO)).map(|c| c.state) == Some(CardState::Lost)
        }),
    )
    .await
    .expect("the lost card never arrived")
    .unwrap();
    assert_eq!(door.policy.version(), central.version());
    // Within a second on the central service's own clock (so that a loaded
    // test machine's scheduling of this test does not count): from the change
    // being recorded to the delta the door applied being issued.
    let took =
        door.policy.current().snapshot.issued_at().0 - central.recorded_at(central.version()).await;
    eprintln!("lost card: the delta the door applied was issued {took} ms after the change");
    assert!((0..1000).contains(&took), "{took} ms");
    eventually("the update to be counted", PATIENCE, async || {
        door.status().sync.policy_updates == 2
    })
    .await;
    // It came as a delta: one snapshot only.
    let log = proxy.log();
    let snapshots = log
        .iter()
        .filter(|l| **l == format!("GET {SNAPSHOT_PATH}"))
        .count();
    assert_eq!(snapshots, 1, "{log:?}");
    assert_eq!(
        log.iter().rev().find(|l| !l.ends_with("/watch")),
        Some(&format!("GET {DELTA_PATH}")),
        "{log:?}"
    );

    // A 20 s long-poll is in flight: stopping does not wait for it. (No server
    // clock for this one; 5 s is far from the 20 s a wait would take, and
    // leaves room for a loaded machine.)
    let took = running.stop().await;
    assert!(took < Duration::from_secs(5), "{took:?}");
}

async fn an_unchanged_policy_is_confirmed_by_each_watch(store: Store) {
    let central = Central::start(store).await;
    let door = Door::open().await;
    let mut cfg = config(&central.url(), &central.public_key, &central.secret);
    cfg.watch_ms = 200;
    let running = door.sync(cfg);
    eventually("the first snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    let first = door.policy.current().confirmed_at;
    eventually("a later confirmation", PATIENCE, async || {
        door.policy.current().confirmed_at > first
    })
    .await;
    assert_eq!(door.status().sync.policy_updates, 1);
    assert!(door.status().policy.confirmed_at_ms > first.0);
    running.stop().await;
}

async fn a_central_signing_with_another_key_is_refused(store: Store) {
    let central = Central::start(store).await;
    let door = Door::open().await;
    let stranger = PolicySigner::generate().public_key().to_hex();
    let running = door.sync(config(&central.url(), &stranger, &central.secret));
    eventually("repeated refusals", PATIENCE, async || {
        door.status().sync.policy_refused >= 2
    })
    .await;
    assert_eq!(door.policy.version(), 0);
    assert!(door.policy.current().snapshot.data().cards.is_empty());
    assert_eq!(door.policy.current().confirmed_at, Timestamp(0));
    let status = door.status();
    assert_eq!(status.policy.version, 0);
    assert_eq!(status.sync.policy_updates, 0);
    let error = status.sync.last_error.unwrap();
    assert!(error.contains("signature"), "{error}");
    assert!(!error.contains(&central.secret), "{error}");
    running.stop().await;
}

async fn events_arrive_exactly_once_and_the_outbox_empties(store: Store) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let door = Door::open().await;
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));
    let mut sent = door.append(1).await;
    sent.extend(door.append(5).await);
    // More than one batch (500) in a single append.
    sent.extend(door.append(1_200).await);
    let total = sent.len();
    eventually("the outbox to empty", PATIENCE, async || {
        door.outbox.depth().await.unwrap() == 0
    })
    .await;
    let stored = central.events().await;
    let expected: Vec<(i64, String)> = sent
        .iter()
        .map(|e| (e.event.seq as i64, e.link.to_string()))
        .collect();
    assert_eq!(stored, expected);
    assert_eq!(central.chain_breaks().await, 0);
    // Each event went over the wire once, in order.
    let posted = proxy.posted();
    assert_eq!(posted, (1..=total as u64).collect::<Vec<_>>());
    assert!(
        proxy
            .log()
            .iter()
            .filter(|l| l.ends_with(EVENTS_PATH))
            .count()
            >= 3
    );
    // The status board is updated just after the outbox rows are deleted.
    eventually(
        "the acknowledgement on the status board",
        PATIENCE,
        async || door.status().sync.events_acknowledged == total as u64,
    )
    .await;
    let status = door.status();
    assert_eq!(status.outbox_depth, 0);
    assert!(status.sync.online);

    // One more, after the loop went idle: the append wakes it.
    let late = door.append(1).await;
    eventually("the late event", PATIENCE, async || {
        central.events().await.len() == total + 1
    })
    .await;
    eventually("the outbox to empty again", PATIENCE, async || {
        door.outbox.depth().await.unwrap() == 0
    })
    .await;
    assert_eq!(
        central.events().await.last().unwrap(),
        &(late[0].event.seq as i64, late[0].link.to_string())
    );
    assert_eq!(proxy.posted().len(), total + 1);
    running.stop().await;
}

async fn a_reimaged_board_starts_a_new_epoch_and_loses_nothing(store: Store) {
    let central = Central::start(store).await;
    let first = Door::open().await;
    let running = first.sync(config(&central.url(), &central.public_key, &central.secret));
    let held = first.append(3).await;
    eventually("the first board's events", PATIENCE, async || {
        first.outbox.depth().await.unwrap() == 0
    })
    .await;
    running.stop().await;
    // Re-imaged: an empty data directory, the same controller id. Its events
    // number from 1 again, with other content than central holds under 1-3.
    let second = Door::open().await;
    let kinds = vec![EventKind::DoorClosed { door: DoorId(21) }; 2];
    let recorded = second.outbox.append(now_utc(), kinds).await.unwrap();
    assert_eq!(recorded[0].event.seq, held[0].event.seq);
    let running = second.sync(config(&central.url(), &central.public_key, &central.secret));
    eventually("the re-imaged board's events", PATIENCE, async || {
        second.outbox.depth().await.unwrap() == 0
    })
    .await;
    // Both boards' events are at central, none in conflict, and the new
    // epoch is an alarm for a reviewer to look at.
    let mut stored = central.events().await;
    stored.sort();
    let mut sent: Vec<(i64, String)> = held
        .iter()
        .chain(&recorded)
        .map(|e| (e.event.seq as i64, e.link.to_string()))
        .collect();
    sent.sort();
    assert_eq!(stored, sent);
    assert_eq!(central.chain_breaks().await, 0);
    assert_eq!(central.alarms("chain_epoch").await, 1);
    let status = second.status();
    assert_eq!(status.sync.event_conflict, None);
    assert_eq!(status.sync.last_error, None);
    running.stop().await;
}

async fn a_board_restored_from_an_old_copy_keeps_what_central_holds_otherwise(store: Store) {
    let central = Central::start(store).await;
    let first = Door::open().await;
    // A copy of the state taken before any event: the same chain epoch.
    let copy = first.copy().await;
    let running = first.sync(config(&central.url(), &central.public_key, &central.secret));
    let held = first.append(3).await;
    eventually("the first board's events", PATIENCE, async || {
        first.outbox.depth().await.unwrap() == 0
    })
    .await;
    running.stop().await;
    // The copy is restored: its events get numbers central already holds in
    // that epoch, with other content.
    let second = Door::open_at(copy).await;
    let kinds = vec![EventKind::DoorClosed { door: DoorId(21) }; 2];
    let recorded = second.outbox.append(Timestamp(1_000), kinds).await.unwrap();
    assert_eq!(recorded[0].event.seq, held[0].event.seq);
    let running = second.sync(config(&central.url(), &central.public_key, &central.secret));
    eventually("central to see the re-sent numbers", PATIENCE, async || {
        central.chain_breaks().await > 0
    })
    .await;
    eventually("the upload to settle", PATIENCE, async || {
        second.status().sync.last_error.is_some() || second.outbox.depth().await.unwrap() == 0
    })
    .await;
    // Nothing central does not hold exactly is deleted, and the board says so.
    assert_eq!(second.outbox.depth().await.unwrap(), 2);
    assert_eq!(second.outbox.pending(10).await.unwrap(), recorded);
    let status = second.status();
    let conflict = status.sync.event_conflict.unwrap_or_default();
    assert!(conflict.contains("[1, 2]"), "{conflict:?}");
    // Central still holds the first board's events.
    let stored = central.events().await;
    assert_eq!(stored[0], (1, held[0].link.to_string()));
    running.stop().await;
}

async fn events_wait_while_central_is_down_and_arrive_in_order_once_it_is_up(store: Store) {
    let mut central = Central::new(store).await;
    // An address with nothing listening on it yet.
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let door = Door::open().await;
    let running = door.sync(config(
        &format!("http://{addr}"),
        &central.public_key,
        &central.secret,
    ));
    let mut sent = door.append(3).await;
    eventually("the client to notice the outage", PATIENCE, async || {
        let s = door.status();
        !s.sync.online && s.sync.last_error.is_some()
    })
    .await;
    sent.extend(door.append(2).await);
    let error = door.status().sync.last_error.unwrap();
    assert!(error.contains("cannot reach"), "{error}");
    assert!(!error.contains(&central.secret), "{error}");
    assert_eq!(door.outbox.depth().await.unwrap(), 5);
    assert_eq!(door.status().sync.events_acknowledged, 0);
    assert_eq!(door.policy.version(), 0);

    central.serve(TcpListener::bind(addr).await.unwrap());
    eventually("the outbox to empty", PATIENCE, async || {
        door.outbox.depth().await.unwrap() == 0
    })
    .await;
    let expected: Vec<(i64, String)> = sent
        .iter()
        .map(|e| (e.event.seq as i64, e.link.to_string()))
        .collect();
    assert_eq!(central.events().await, expected);
    assert_eq!(central.chain_breaks().await, 0);
    // The status board is updated just after the outbox rows are deleted.
    eventually(
        "the acknowledgement on the status board",
        PATIENCE,
        async || door.status().sync.events_acknowledged == 5,
    )
    .await;
    eventually("the policy", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    assert!(door.status().sync.online);
    running.stop().await;
}

async fn the_last_error_is_cleared_once_sync_succeeds(store: Store) {
    let mut central = Central::new(store).await;
    // An address with nothing listening on it yet.
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let door = Door::open().await;
    let running = door.sync(config(
        &format!("http://{addr}"),
        &central.public_key,
        &central.secret,
    ));
    door.append(1).await;
    eventually("the error on the board", PATIENCE, async || {
        door.status().sync.last_error.is_some()
    })
    .await;
    central.serve(TcpListener::bind(addr).await.unwrap());
    eventually("the policy and the events through", PATIENCE, async || {
        door.policy.version() == central.version() && door.outbox.depth().await.unwrap() == 0
    })
    .await;
    // Every exchange from here on succeeds: the error of the outage goes.
    eventually("the error to be cleared", PATIENCE, async || {
        let s = door.status().sync;
        s.online && s.last_error.is_none()
    })
    .await;
    assert!(door.status().sync.last_success_ms.is_some());
    running.stop().await;
}

async fn stopping_is_prompt_and_keeps_unsent_events_when_central_hangs(store: Store) {
    let central = Central::new(store).await;
    // Accepts connections (the kernel does) but never answers.
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    let door = Door::open().await;
    let running = door.sync(config(&url, &central.public_key, &central.secret));
    door.append(4).await;
    let took = running.stop().await;
    // One bounded last attempt (3 s), not the 30 s request timeout (10 s
    // leaves room for a loaded machine and is still far from 30 s).
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(door.outbox.depth().await.unwrap(), 4);
    drop(hung);
}

async fn tampered_misaddressed_and_replayed_policy_is_refused_and_never_applied(store: Store) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let door = Door::open().await;
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));
    eventually("the first snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    let v1 = door.policy.version();
    // A genuine signed snapshot in which Sato's card is still active.
    let old = central.signed_snapshot().await;

    // Someone un-loses the card on the way: the signature no longer verifies.
    proxy.set(Mode::Tamper);
    central.card(SATO, CardAction::ReportLost).await;
    eventually("the tampered delta to be refused", PATIENCE, async || {
        proxy.altered() >= 1 && door.status().sync.policy_refused >= 1
    })
    .await;
    assert_eq!(door.policy.version(), v1);
    assert_eq!(door.card_state(SATO), Some(CardState::Active));
    let error = door.status().sync.last_error.unwrap();
    assert!(error.contains("signature"), "{error}");
    proxy.set(Mode::Pass);
    eventually("the genuine delta", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    assert_eq!(door.card_state(SATO), Some(CardState::Lost));
    let v2 = door.policy.version();

    // Genuinely signed, but for another controller.
    proxy.set(Mode::OtherController);
    let refused = door.status().sync.policy_refused;
    central.card(YAMADA, CardAction::Suspend).await;
    eventually(
        "the misaddressed delta to be refused",
        PATIENCE,
        async || door.status().sync.policy_refused > refused,
    )
    .await;
    assert_eq!(door.policy.version(), v2);
    assert_eq!(door.card_state(YAMADA), Some(CardState::Active));
    let error = door.status().sync.last_error.unwrap();
    assert!(error.contains("controller 2"), "{error}");

    // A replay of the old genuine snapshot would bring Sato's card back: it
    // answers another request (its nonce is not the one sent).
    proxy.set(Mode::Replay(old));
    eventually(
        "the replayed snapshot to be refused",
        PATIENCE,
        async || {
            door.status()
                .sync
                .last_error
                .is_some_and(|e| e.contains("a replay"))
        },
    )
    .await;
    assert_eq!(door.policy.version(), v2);
    assert_eq!(door.card_state(SATO), Some(CardState::Lost));
    assert!(v1 < v2);

    proxy.set(Mode::Pass);
    eventually("the genuine policy", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    assert_eq!(door.card_state(SATO), Some(CardState::Lost));
    assert_eq!(door.card_state(YAMADA), Some(CardState::Suspended));
    running.stop().await;
}

async fn a_delta_that_does_not_apply_is_refused_and_a_full_snapshot_repairs_it(store: Store) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let door = Door::open().await;
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));
    eventually("the first snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    proxy.set(Mode::Unappliable);
    central.card(SATO, CardAction::ReportLost).await;
    eventually("the policy", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    assert_eq!(door.card_state(SATO), Some(CardState::Lost));
    assert!(proxy.altered() >= 1);
    let status = door.status();
    assert!(status.sync.policy_refused >= 1);
    let refusal = status.sync.last_refusal.unwrap();
    assert!(refusal.contains("does not apply"), "{refusal}");
    // The refused delta was followed by a full snapshot.
    let policy: Vec<String> = proxy
        .log()
        .into_iter()
        .filter(|l| !l.ends_with("/watch"))
        .collect();
    let delta = policy
        .iter()
        .position(|l| *l == format!("GET {DELTA_PATH}"))
        .unwrap();
    assert_eq!(
        policy[delta + 1],
        format!("GET {SNAPSHOT_PATH}"),
        "{policy:?}"
    );
    running.stop().await;
}

/// A proxy that swallows a change must not be able to keep the policy
/// "fresh": neither the old protocol's unsigned "up to date" (204, bare
/// watch answer) nor genuine signed answers replayed from earlier requests
/// confirm it. Each is a refusal; the policy age keeps growing until central
/// itself answers again.
async fn a_forged_or_replayed_up_to_date_never_confirms_the_policy(store: Store) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let door = Door::open().await;
    let mut cfg = config(&proxy.url, &central.public_key, &central.secret);
    cfg.watch_ms = 100;
    // First run: the snapshot, then watches (captured). Second run: a delta
    // request answered "up to date" (captured).
    let running = door.sync(cfg.clone());
    eventually("the first snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    running.stop().await;
    let running = door.sync(cfg);
    eventually("genuine answers captured", PATIENCE, async || {
        proxy.captured(DELTA_PATH) && proxy.captured(WATCH_PATH)
    })
    .await;

    for (mode, refusal) in [
        (Mode::Forge, "not signed"),
        (Mode::ReplayAnswers, "a replay"),
    ] {
        proxy.set(mode);
        // Whatever was in flight when the mode changed has landed.
        let altered = proxy.altered();
        eventually("a forged answer", PATIENCE, async || {
            proxy.altered() > altered
        })
        .await;
        let confirmed = door.policy.current().confirmed_at;
        let refused = door.status().sync.policy_refused;
        let altered = proxy.altered();
        eventually("forged answers refused", PATIENCE, async || {
            proxy.altered() >= altered + 4 && door.status().sync.policy_refused >= refused + 3
        })
        .await;
        assert_eq!(
            door.policy.current().confirmed_at,
            confirmed,
            "a forged answer confirmed the policy"
        );
        let status = door.status();
        assert_eq!(status.policy.confirmed_at_ms, confirmed.0);
        let last = status.sync.last_refusal.unwrap();
        assert!(last.contains(refusal), "{last}");
    }

    proxy.set(Mode::Pass);
    let confirmed = door.policy.current().confirmed_at;
    eventually("central's own confirmation", PATIENCE, async || {
        door.policy.current().confirmed_at > confirmed
    })
    .await;
    assert!(door.status().sync.central_clock_skew_ms.is_some());
    running.stop().await;
}

/// A re-imaged controller (empty cache) is offered a genuine snapshot signed
/// before Sato's card was reported lost: it answers another request, so it
/// is refused and the doors stay shut until central itself answers.
async fn an_empty_cache_refuses_a_replayed_snapshot(store: Store) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let old = central.signed_snapshot().await;
    central.card(SATO, CardAction::ReportLost).await;
    proxy.set(Mode::Replay(old));
    let door = Door::open().await;
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));
    eventually("the replays refused", PATIENCE, async || {
        proxy.altered() >= 2 && door.status().sync.policy_refused >= 2
    })
    .await;
    assert_eq!(door.policy.version(), 0);
    assert_eq!(door.card_state(SATO), None);
    assert_eq!(door.policy.current().confirmed_at, Timestamp(0));
    let refusal = door.status().sync.last_refusal.unwrap();
    assert!(refusal.contains("a replay"), "{refusal}");

    proxy.set(Mode::Pass);
    eventually("central's own snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    assert_eq!(door.card_state(SATO), Some(CardState::Lost));
    running.stop().await;
}

/// A confirmation of an older version, even signed for this request, is a
/// downgrade: refused, and it confirms nothing.
async fn a_signed_confirmation_of_an_older_version_is_refused(store: Store) {
    let central = Central::start(store).await;
    let proxy = Proxy::start(&central).await;
    let door = Door::open().await;
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));
    eventually("the first snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    running.stop().await;
    proxy.set(Mode::Downgrade);
    let confirmed = door.policy.current().confirmed_at;
    let running = door.sync(config(&proxy.url, &central.public_key, &central.secret));
    eventually("the downgrade refused", PATIENCE, async || {
        proxy.altered() >= 2 && door.status().sync.policy_refused >= 2
    })
    .await;
    assert_eq!(door.policy.current().confirmed_at, confirmed);
    assert_eq!(door.policy.version(), central.version());
    let refusal = door.status().sync.last_refusal.unwrap();
    assert!(refusal.contains("older"), "{refusal}");
    running.stop().await;
}

#[tokio::test]
async fn a_central_section_the_client_cannot_use_shows_on_the_status_board() {
    let door = Door::open().await;
    for (cfg, expect) in [
        (config("http://127.0.0.1:9", "zz", "s3cret"), "public_key"),
        (
            config(
                "ftp://127.0.0.1:9",
                &PolicySigner::generate().public_key().to_hex(),
                "s3cret",
            ),
            "http",
        ),
        (
            config(
                "http://127.0.0.1:9",
                &PolicySigner::generate().public_key().to_hex(),
                "",
            ),
            "secret",
        ),
    ] {
        let running = door.sync(cfg);
        eventually("the error on the board", PATIENCE, async || {
            door.status()
                .sync
                .last_error
                .is_some_and(|e| e.contains(expect))
        })
        .await;
        assert!(!door.status().sync.online);
        // Prompt: not stuck in a request or a backoff (with room for a loaded machine).
        assert!(running.stop().await < Duration::from_secs(3));
        door.board.update(|s| s.sync.last_error = None);
    }
}

/// The whole daemon (`daemon::run_until`, as `tobira controller` runs it) on
/// the virtual GPIO board against a real central service: door events reach
/// the central store, a lost card reaches the door's policy while it runs and
/// is refused as lost when tapped (through pcscd/vpcd) without the lock being
/// released, and stopping leaves nothing behind in the outbox.
async fn the_daemon_ships_door_events_and_takes_a_lost_card_while_running(store: Store) {
    use std::io::Write as _;

    let central = Central::start(store).await;
    let pcscd = tobira_hardware::hil::PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
    let reader = pcscd.slots()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gpio.sock");
    let board = tobira_hardware::gpio::VirtualBoard::bind(&socket, &[]).unwrap();
    tokio::spawn(board.run());
    let status_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        r#"
controller = 1
data_dir = "{data}"
status_listen = "127.0.0.1:{status_port}"

[central]
url = "{url}"
allow_insecure_http = true
secret = "{secret}"
public_key = "{key}"
watch_ms = 5000
backoff_min_ms = 20
backoff_max_ms = 200

[gpio]
backend = "virtual"
socket = "{socket}"

[[doors]]
name = "machine room"
id = 21
kind = "door"
entry_reader = "{reader}"
lock_output = {{ pin = 17 }}
contact = {{ pin = 5, active_low = true }}
rex = {{ pin = 6 }}
"#,
        data = dir.path().join("data").display(),
        url = central.url(),
        secret = central.secret,
        key = central.public_key,
        socket = socket.display(),
        reader = reader.name,
    );
    let config =
        tobira_controller::config::Config::parse(&text, std::path::Path::new("c.toml")).unwrap();
    config.check().unwrap();
    let (stop, stopped) = watch::channel(false);
    let daemon = tokio::spawn(tobira_controller::daemon::run_until(config, None, stopped));
    let status = format!("http://127.0.0.1:{status_port}/status");
    let read_status = || async {
        let s: Option<serde_json::Value> =
            async { reqwest::get(&status).await.ok()?.json().await.ok() }.await;
        s.unwrap_or_default()
    };
    eventually("the first snapshot", PATIENCE, async || {
        read_status().await["policy"]["version"] == central.version()
    })
    .await;

    // Request-to-exit at level 4 is refused; the door forced open is an alarm.
    let mut hand = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    writeln!(hand, r#"{{"op":"hello","role":"observer"}}"#).unwrap();
    // Every time the controller releases the lock, as the board sees it.
    writeln!(hand, r#"{{"op":"subscribe"}}"#).unwrap();
    let unlocks = Arc::new(AtomicUsize::new(0));
    {
        let unlocks = Arc::clone(&unlocks);
        let edges = std::io::BufReader::new(hand.try_clone().unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(edges) {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if v["op"] == "edge" && v["by"] == "controller" && v["pin"] == 17 && v["level"] == 1
                {
                    unlocks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    writeln!(hand, r#"{{"op":"drive","pin":6,"level":1}}"#).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    writeln!(hand, r#"{{"op":"drive","pin":6,"level":0}}"#).unwrap();
    writeln!(hand, r#"{{"op":"drive","pin":5,"level":1}}"#).unwrap();
    let kinds = || async {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT kind FROM events WHERE controller_id = 1 ORDER BY seq")
                .fetch_all(central.store.pool())
                .await
                .unwrap();
        rows.into_iter().map(|(k,)| k).collect::<Vec<_>>()
    };
    eventually(
        "the door events at the central store",
        PATIENCE,
        async || {
            let k = kinds().await;
            k.iter().any(|k| k == "access") && k.iter().any(|k| k == "door_forced")
        },
    )
    .await;

    // A card reported lost reaches the running door within a second, on the
    // central service's clock: the delta the door took was issued less than a
    // second after the change was recorded.
    central.card(SATO, CardAction::ReportLost).await;
    let lost = central.version();
    eventually("the lost card at the door", PATIENCE, async || {
        read_status().await["policy"]["version"] == lost
    })
    .await;
    let issued = read_status().await["policy"]["issued_at_ms"]
        .as_i64()
        .unwrap();
    let took = issued - central.recorded_at(lost).await;

    // Tapped at the door, the lost card is refused as lost and the lock stays shut.
    eventually("the reader online", PATIENCE, async || {
        read_status().await["devices"][&reader.name]["online"] == true
    })
    .await;
    let mut card =
        tobira_hardware::card::VirtualCardConfig::new(card_uid(SATO).as_bytes().to_vec());
    card.port = reader.port;
    let tap =
        tokio::task::spawn_blocking(move || tobira_hardware::card::VirtualCard::new(card).tap());
    let reasons = || async {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT reason FROM events WHERE controller_id = 1 AND door_id = 21 AND card IS NOT NULL ORDER BY seq",
        )
        .fetch_all(central.store.pool())
        .await
        .unwrap();
        rows.into_iter().map(|(r,)| r).collect::<Vec<_>>()
    };
    eventually("the refusal at the central store", PATIENCE, async || {
        !reasons().await.is_empty()
    })
    .await;
    tap.await.unwrap().unwrap();
    assert_eq!(reasons().await, ["card_lost"]);
    assert_eq!(unlocks.load(Ordering::SeqCst), 0, "the lock was released");

    stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, daemon)
        .await
        .expect("the daemon did not stop")
        .unwrap()
        .unwrap();
    let pool = tobira_controller::state::open(&dir.path().join("data/controller.sqlite"))
        .await
        .unwrap();
    let outbox = Outbox::open(pool, C1).await.unwrap();
    assert_eq!(outbox.depth().await.unwrap(), 0, "everything was shipped");
    let stored = central.events().await;
    assert_eq!(
        stored.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=stored.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(central.chain_breaks().await, 0);
    assert!((0..1000).contains(&took), "{took} ms");
}

async fn a_passage_another_controller_recorded_reaches_this_ones_occupancy(store: Store) {
    use tobira_firmware::{
        AccessRecord, Chain, PersonId, Reason, SecurityLevel, Side, Warnings, ZoneId,
    };
    let central = Central::start(store).await;
    let door = Door::open().await;
    let mut cfg = config(&central.url(), &central.public_key, &central.secret);
    cfg.passages_ms = 100;
    let (shared, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(sync::run(
        cfg,
        C1,
        door.policy.clone(),
        door.outbox.clone(),
        door.board.clone(),
        shared,
        stopped,
    ));
    eventually("the first snapshot", PATIENCE, async || {
        door.policy.version() == central.version()
    })
    .await;
    // A second board on the machine room (controller 2, its back door) lets Sato in.
    sqlx::query("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader) VALUES (23, 'Machine room back', 'door', 11, 12, 2, '{}')")
        .execute(central.store.pool())
        .await
        .unwrap();
    let mut chain = Chain::genesis(C2);
    let entry = chain
        .seal(
            now_utc(),
            EventKind::Access(AccessRecord {
                door: DoorId(23),
                side: Side::Entry,
                level: Some(SecurityLevel::L4),
                reason: Reason::Granted,
                person: Some(PersonId(SATO as u32)),
                card: Some(card_uid(SATO)),
                escort: None,
                warnings: Warnings::default(),
            }),
        )
        .unwrap();
    central
        .store
        .ingest(C2, tobira_firmware::ChainEpoch::FIRST, &[entry])
        .await
        .unwrap();
    // Once settled at central, it reaches this controller's memory.
    let pairs = tokio::time::timeout(PATIENCE, changed.recv())
        .await
        .expect("the passage within the patience")
        .unwrap();
    let machine = ZoneId(12);
    assert!(
        pairs.contains(&(machine, PersonId(SATO as u32))),
        "{pairs:?}"
    );
    let memory = tobira_controller::memory::load(door.outbox.pool())
        .await
        .unwrap();
    assert!(memory.is_inside(machine, PersonId(SATO as u32)));
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Runs each test on a fresh SQLite store and on a fresh PostgreSQL database.
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                $(#[$attr])*
                async fn $name() {
                    let (store, _dir) = crate::city_hall::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                $(#[$attr])*
                async fn $name() {
                    if let Some(store) = crate::city_hall::postgres().await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    #[tokio::test]
    the_first_sync_takes_the_signed_snapshot_and_a_lost_card_arrives_within_a_second,
    #[tokio::test]
    an_unchanged_policy_is_confirmed_by_each_watch,
    #[tokio::test]
    a_central_signing_with_another_key_is_refused,
    #[tokio::test]
    events_arrive_exactly_once_and_the_outbox_empties,
    #[tokio::test]
    events_wait_while_central_is_down_and_arrive_in_order_once_it_is_up,
    #[tokio::test]
    the_last_error_is_cleared_once_sync_succeeds,
    #[tokio::test]
    stopping_is_prompt_and_keeps_unsent_events_when_central_hangs,
    #[tokio::test]
    tampered_misaddressed_and_replayed_policy_is_refused_and_never_applied,
    #[tokio::test]
    a_delta_that_does_not_apply_is_refused_and_a_full_snapshot_repairs_it,
    #[tokio::test]
    a_forged_or_replayed_up_to_date_never_confirms_the_policy,
    #[tokio::test]
    an_empty_cache_refuses_a_replayed_snapshot,
    #[tokio::test]
    a_signed_confirmation_of_an_older_version_is_refused,
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_daemon_ships_door_events_and_takes_a_lost_card_while_running,
    #[tokio::test]
    a_passage_another_controller_recorded_reaches_this_ones_occupancy,
    #[tokio::test]
    a_reimaged_board_starts_a_new_epoch_and_loses_nothing,
    #[tokio::test]
    a_board_restored_from_an_old_copy_keeps_what_central_holds_otherwise,
);
