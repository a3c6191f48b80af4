//! The live monitor over real HTTP: the JSON stream (server-sent events)
//! sees events as ingest stores them, doors change state, a reconnecting
//! client resumes after its last event, filters hold; on SQLite and, under
//! `scripts/with-postgres`, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;
use tobira_firmware::{
    AccessRecord, Chain, ChainEpoch, DoorId, EventKind, PersonId, Reason, SealedEvent,
    SecurityLevel, Side, Timestamp, Warnings,
};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::{AppState, Store};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let (store, _dir) = super::support::sqlite().await;
                    super::$name(super::start(store).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    if let Some(store) = super::support::postgres().await {
                        super::$name(super::start(store).await).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    the_stream_shows_events_and_door_states_as_they_are_stored,
    a_reconnecting_client_gets_what_it_missed_once,
    the_stream_is_filtered_and_refuses_strangers,
);

/// Long enough for anything on a loaded 2-core machine; never waited out
/// when things work.
const DEADLINE: Duration = Duration::from_secs(20);

struct Server {
    base: String,
    store: Store,
    token: String,
    http: reqwest::Client,
}

async fn start(store: Store) -> Server {
    seed(&store).await;
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, tobira_web::router(state))
            .await
            .unwrap();
    });
    let token = store
        .create_token("test", "reviewer", Role::Security, 1)
        .await
        .unwrap();
    Server {
        base: format!("http://{addr}/api/v1"),
        store,
        token,
        http: reqwest::Client::new(),
    }
}

/// One open stream, read event by event.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

/// One server-sent event: its id (if any) and its JSON data.
#[derive(Debug)]
struct Sent {
    id: Option<String>,
    data: Value,
}

impl Stream {
    async fn open(server: &Server, query: &str, last_id: Option<&str>) -> Stream {
        let mut request = server
            .http
            .get(format!("{}/monitor/stream{query}", server.base))
            .bearer_auth(&server.token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with data (comments and the retry line skipped).
    async fn next(&mut self) -> Sent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Sent {
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("the stream stayed silent past the deadline")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads until an update passes `want`; returns it and what came before.
    async fn until(&mut self, want: impl Fn(&Value) -> bool) -> (Sent, Vec<Sent>) {
        let mut before = Vec::new();
        // Controllers' health updates come every few seconds: the stream is
        // never silent, so the deadline is on the whole wait.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing wanted came within {DEADLINE:?}: {before:?}"
            );
            let sent = self.next().await;
            if want(&sent.data) {
                return (sent, before);
            }
            before.push(sent);
        }
    }

    /// Reads the opening states: every door and controller, then the alarm count.
    async fn opening(&mut self) -> Vec<Sent> {
        let (_, before) = self.until(|d| d["type"] == "alarms").await;
        before
    }
}

fn access(door: i64, side: Side, person: i64, reason: Reason) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(door as u32),
        side,
        level: Some(SecurityLevel::L4),
        reason,
        person: Some(PersonId(person as u32)),
        card: uid_of(person).parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

fn seal(chain: &mut Chain, kinds: Vec<EventKind>) -> Vec<SealedEvent> {
    let now = tobira_web::store::now_ms();
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| chain.seal(Timestamp(now + i as i64), k).unwrap())
        .collect()
}

fn door_of(updates: &[Sent], id: i64) -> &Value {
    &updates
        .iter()
        .find(|u| u.data["type"] == "door" && u.data["id"] == id)
        .unwrap_or_else(|| panic!("no state for door {id} in {updates:?}"))
        .data
}

async fn the_stream_shows_events_and_door_states_as_they_are_stored(s: Server) {
    let mut stream = Stream::open(&s, "", None).await;
    let opening = stream.opening().await;
    for door in [GATE, MACHINE_DOOR, ANNEX_DOOR] {
        assert_eq!(door_of(&opening, door)["state"], "locked");
    }
    assert!(
        opening
            .iter()
            .filter(|u| u.data["type"] == "controller")
            .count()
            == 2,
        "{opening:?}"
    );

    // A denied attempt at the machine room stands out; a granted one opens its door.
    let mut chain = Chain::genesis(C1);
    let batch = seal(
        &mut chain,
        vec![
            access(MACHINE_DOOR, Side::Entry, YAMADA, Reason::NoGrant),
            access(MACHINE_DOOR, Side::Entry, SATO, Reason::Granted),
        ],
    );
    s.store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    let (denied, _) = stream.until(|d| d["type"] == "event").await;
    assert_eq!(denied.data["outcome"], "denied");
    assert_eq!(denied.data["stands_out"], true);
    assert_eq!(denied.data["person_name"], "Yamada");
    assert_eq!(denied.data["site_id"], SITE);
    assert_eq!(denied.id.as_deref(), denied.data["position"].as_str());
    let (granted, _) = stream.until(|d| d["type"] == "event").await;
    assert_eq!(granted.data["outcome"], "granted");
    assert_eq!(granted.data["stands_out"], false);
    let (door, before) = stream.until(|d| d["type"] == "door").await;
    assert_eq!(
        (door.data["id"].as_i64(), door.data["state"].as_str()),
        (Some(MACHINE_DOOR), Some("open")),
        "{door:?} {before:?}"
    );

    // Forced: the door stays forced until it is shut again.
    let batch = seal(
        &mut chain,
        vec![EventKind::DoorForced {
            door: DoorId(MACHINE_DOOR as u32),
        }],
    );
    s.store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    // The event, its door and the alarm count come in whichever order the
    // monitor reads the batch and the alarm.
    let (mut forced, mut door, mut alarms) = (None, None, None);
    while forced.is_none() || door.is_none() || alarms.is_none() {
        let (sent, _) = stream
            .until(|d| {
                d["type"] == "event"
                    || d["type"] == "alarms"
                    || (d["type"] == "door" && d["id"] == MACHINE_DOOR)
            })
            .await;
        match sent.data["type"].as_str() {
            Some("event") => forced = Some(sent.data),
            Some("door") => door = Some(sent.data),
            _ => alarms = Some(sent.data),
        }
    }
    let (forced, door, alarms) = (forced.unwrap(), door.unwrap(), alarms.unwrap());
    assert_eq!(forced["kind"], "door_forced");
    assert_eq!(forced["stands_out"], true);
    assert_eq!(door["state"], "forced");
    assert_eq!(alarms["open"], 1, "{alarms:?}");

    // A resent batch (a lost receipt) is not shown twice.
    s.store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    let shut = seal(
        &mut chain,
        vec![EventKind::DoorClosed {
            door: DoorId(MACHINE_DOOR as u32),
        }],
    );
    s.store.ingest(C1, ChainEpoch::FIRST, &shut).await.unwrap();
    let (next, _) = stream.until(|d| d["type"] == "event").await;
    assert_eq!(
        next.data["kind"], "door_closed",
        "the resent event came again"
    );
    let (door, _) = stream
        .until(|d| d["type"] == "door" && d["id"] == MACHINE_DOOR)
        .await;
    assert_eq!(door.data["state"], "locked");

    // The view answers the same.
    let view: Value = s
        .http
        .get(format!("{}/monitor", s.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["events"][0]["kind"], "door_closed");
    assert_eq!(view["events"].as_array().unwrap().len(), 4);
    let machine = view["doors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == MACHINE_DOOR)
        .unwrap();
    assert_eq!(machine["state"], "locked");
}

async fn a_reconnecting_client_gets_what_it_missed_once(s: Server) {
    let mut chain = Chain::genesis(C1);
    let first = seal(
        &mut chain,
        vec![access(MACHINE_DOOR, Side::Entry, SATO, Reason::Granted)],
    );
    let mut stream = Stream::open(&s, "", None).await;
    stream.opening().await;
    s.store.ingest(C1, ChainEpoch::FIRST, &first).await.unwrap();
    let (seen, _) = stream.until(|d| d["type"] == "event").await;
    let last_id = seen.id.clone().unwrap();
    drop(stream);

    // While the client is away (a central restart, a network cut): three more.
    let missed = seal(
        &mut chain,
        vec![
            access(MACHINE_DOOR, Side::Exit, SATO, Reason::Granted),
            access(MACHINE_DOOR, Side::Entry, YAMADA, Reason::NoGrant),
            access(GATE, Side::Entry, SATO, Reason::Granted),
        ],
    );
    s.store
        .ingest(C1, ChainEpoch::FIRST, &missed)
        .await
        .unwrap();

    let mut stream = Stream::open(&s, "", Some(&last_id)).await;
    let mut replayed = Vec::new();
    while replayed.len() < 3 {
        let sent = stream.next().await;
        assert_eq!(sent.data["type"], "event", "events first: {sent:?}");
        replayed.push(sent);
    }
    let seqs: Vec<i64> = replayed
        .iter()
        .map(|e| e.data["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        [2, 3, 4],
        "the missed ones, in order, not the seen one"
    );
    // Then the states, and live events again without the replayed ones.
    stream.opening().await;
    let live = seal(
        &mut chain,
        vec![access(GATE, Side::Exit, SATO, Reason::Granted)],
    );
    s.store.ingest(C1, ChainEpoch::FIRST, &live).await.unwrap();
    let (next, before) = stream.until(|d| d["type"] == "event").await;
    assert_eq!(next.data["seq"], 5);
    assert!(
        before.iter().all(|u| u.data["type"] != "event"),
        "{before:?}"
    );
}

async fn the_stream_is_filtered_and_refuses_strangers(s: Server) {
    // No token, a wrong one, a bad filter: refused with a clear answer.
    let url = format!("{}/monitor/stream", s.base);
    let status = s.http.get(&url).send().await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let status = s
        .http
        .get(&url)
        .bearer_auth("tbr_nonsense")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for bad in ["?level=9", "?zone=-1", "?outcome=maybe", "?colour=red"] {
        let status = s
            .http
            .get(format!("{url}{bad}"))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // Only the office (zone 11): the machine room's events and door stay out.
    let mut stream = Stream::open(&s, &format!("?zone={OFFICE}"), None).await;
    let opening = stream.opening().await;
    let doors: Vec<i64> = opening
        .iter()
        .filter(|u| u.data["type"] == "door")
        .map(|u| u.data["id"].as_i64().unwrap())
        .collect();
    assert_eq!(doors, [GATE]);
    let mut chain = Chain::genesis(C1);
    let batch = seal(
        &mut chain,
        vec![
            access(MACHINE_DOOR, Side::Entry, SATO, Reason::Granted),
            access(GATE, Side::Entry, SATO, Reason::Granted),
        ],
    );
    s.store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    let (event, _) = stream.until(|d| d["type"] == "event").await;
    assert_eq!(event.data["door_id"], GATE);
}
