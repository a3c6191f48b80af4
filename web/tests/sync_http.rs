//! The controllers' sync API over real HTTP: signed snapshots, tampering,
//! deltas in order, idempotent event batches, chain breaks, the push channel,
//! and every policy answer signed and bound to the request's nonce.
//! Every test runs on both store backends, SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::*;
use tobira_firmware::{CardState, Chain, ControllerId, Snapshot};
use tobira_protocol::{
    controller_authorization, new_nonce, EventBatch, EventReceipt, Expected, PolicyKey,
    PolicyMessage, PolicySigner, ProtocolError, SignedPolicy,
};
use tobira_web::{AppState, Store};

struct Central {
    base: String,
    store: Store,
    key: PolicyKey,
    c1: String,
    c2: String,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

impl Central {
    /// Serves the sync API over `store` (freshly seeded here); keep `dir`, the
    /// SQLite file's directory, alive with it.
    async fn start(store: Store, dir: Option<tempfile::TempDir>) -> Central {
        let (c1, c2) = seed(&store).await;
        let signer = PolicySigner::generate();
        let key = signer.public_key();
        let state = AppState::new(store.clone(), Arc::new(signer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, tobira_web::router(state))
                .await
                .unwrap();
        });
        Central {
            base: format!("http://{addr}"),
            store,
            key,
            c1: controller_authorization(C1, &c1),
            c2: controller_authorization(C2, &c2),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn get(&self, path: &str, auth: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Authorization", auth)
    }

    async fn snapshot(&self, controller: ControllerId, auth: &str) -> Snapshot {
        let nonce = new_nonce();
        let envelope = self
            .signed(&format!("/sync/v1/snapshot?nonce={nonce}"), auth)
            .await;
        match self.open(&envelope, controller, &nonce) {
            PolicyMessage::FreshSnapshot { snapshot, .. } => Snapshot::new(snapshot).unwrap(),
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    /// GETs a signed answer (200 with an envelope).
    async fn signed(&self, path: &str, auth: &str) -> SignedPolicy {
        let r = self.get(path, auth).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.unwrap()
    }

    /// Opens an answer to the request that carried `nonce`.
    fn open(
        &self,
        envelope: &SignedPolicy,
        controller: ControllerId,
        nonce: &str,
    ) -> PolicyMessage {
        let expected = Expected {
            controller,
            nonce,
            held: 0,
        };
        self.key.open_fresh(envelope, expected).unwrap()
    }

    async fn post_events(&self, auth: &str, batch: &EventBatch) -> (StatusCode, String) {
        let r = self
            .http
            .post(format!("{}/sync/v1/events", self.base))
            .header("Authorization", auth)
            .json(batch)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

async fn health_and_authentication(c: Central) {
    let r = c
        .http
        .get(format!("{}/healthz", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for auth in [
        "",
        "Bearer 1.wrong",
        "Bearer x",
        "Basic abc",
        &controller_authorization(ControllerId(9), "s"),
    ] {
        let r = c.get("/sync/v1/snapshot", auth).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
}

async fn a_controller_pulls_a_signed_snapshot_and_a_tampered_one_fails(c: Central) {
    let snap = c.snapshot(C1, &c.c1).await;
    assert_eq!(snap.data().doors.len(), 2);
    let envelope = c
        .signed(&format!("/sync/v1/snapshot?nonce={}", new_nonce()), &c.c1)
        .await;
    // Flip a card to lost, or change one byte of the signature: refused.
    let tampered = SignedPolicy {
        payload: envelope
            .payload
            .replacen("\"state\":\"active\"", "\"state\":\"lost\"", 1),
        ..envelope.clone()
    };
    assert_ne!(tampered.payload, envelope.payload);
    assert!(matches!(
        c.key.open(&tampered, C1),
        Err(ProtocolError::BadSignature)
    ));
    let mut sig = envelope.signature.clone().into_bytes();
    sig[0] = if sig[0] == b'0' { b'1' } else { b'0' };
    let bad_sig = SignedPolicy {
        signature: String::from_utf8(sig).unwrap(),
        ..envelope.clone()
    };
    assert!(matches!(
        c.key.open(&bad_sig, C1),
        Err(ProtocolError::BadSignature)
    ));
    // Another controller cannot use it, and another key does not verify it.
    assert!(matches!(
        c.key.open(&envelope, C2),
        Err(ProtocolError::WrongController { .. })
    ));
    assert!(matches!(
        PolicySigner::generate().public_key().open(&envelope, C1),
        Err(ProtocolError::BadSignature)
    ));
}

async fn deltas_apply_in_order(c: Central) {
    let mut snap = c.snapshot(C1, &c.c1).await;
    // Up to date: a signed confirmation of this version for this request.
    let nonce = new_nonce();
    let since = snap.version();
    let envelope = c
        .signed(
            &format!("/sync/v1/delta?since={since}&nonce={nonce}"),
            &c.c1,
        )
        .await;
    let PolicyMessage::Current {
        controller,
        version,
        central_time,
        ..
    } = c.open(&envelope, C1, &nonce)
    else {
        panic!("expected a confirmation")
    };
    assert_eq!((controller, version), (C1, since));
    assert!(central_time.0 > 0);
    for (uid, state, expect) in [
        (uid_of(SATO), "lost", CardState::Lost),
        (uid_of(YAMADA), "suspended", CardState::Suspended),
        (uid_of(SATO), "active", CardState::Active),
    ] {
        set_card_state(&c.store, &uid, state).await;
        let nonce = new_nonce();
        let envelope = c
            .signed(
                &format!("/sync/v1/delta?since={}&nonce={nonce}", snap.version()),
                &c.c1,
            )
            .await;
        let PolicyMessage::FreshDelta { delta, .. } = c.open(&envelope, C1, &nonce) else {
            panic!("expected a delta")
        };
        // Applying out of order (the same delta twice) is refused by the brain.
        let next = snap.apply_delta(&delta).unwrap();
        assert!(next.apply_delta(&delta).is_err());
        snap = next;
        assert_eq!(snap.card(&uid.parse().unwrap()).unwrap().state, expect);
    }
    let r = c
        .get(
            &format!("/sync/v1/delta?since=99999&nonce={}", new_nonce()),
            &c.c1,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let good = new_nonce();
    for bad in [
        "/sync/v1/delta".to_owned(),
        format!("/sync/v1/delta?nonce={good}"),
        format!("/sync/v1/delta?since=-1&nonce={good}"),
        format!("/sync/v1/delta?since=x&nonce={good}"),
        format!("/sync/v1/delta?since=1&evil=1&nonce={good}"),
        // Without a nonce, or with one that is not 32 to 128 hex digits.
        "/sync/v1/delta?since=1".to_owned(),
        "/sync/v1/delta?since=1&nonce=abc".to_owned(),
        format!("/sync/v1/delta?since=1&nonce={}", "g".repeat(32)),
        format!("/sync/v1/delta?since=1&nonce={}", "a".repeat(129)),
        "/sync/v1/snapshot".to_owned(),
        "/sync/v1/snapshot?nonce=".to_owned(),
        "/sync/v1/watch?since=1&wait_ms=1".to_owned(),
    ] {
        let bad = bad.as_str();
        let r = c.get(bad, &c.c1).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn the_same_event_batch_posted_twice_is_stored_once_and_a_broken_chain_raises_an_alarm(
    c: Central,
) {
    let mut chain = Chain::genesis(C1);
    let batch = EventBatch {
        epoch: tobira_firmware::ChainEpoch::FIRST,
        events: events(&mut chain, 50, 1_763_000_000_000),
    };
    for (stored, duplicates) in [(50, 0), (0, 50)] {
        let (status, body) = c.post_events(&c.c1, &batch).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let receipt: EventReceipt = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (receipt.stored, receipt.duplicates, receipt.stored_through),
            (stored, duplicates, 50)
        );
        assert_eq!(receipt.chain_break, None);
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(c.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 50);
    // Controller 2 uploading controller 1's events is refused outright.
    let (status, _) = c.post_events(&c.c2, &batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A gap in the chain is accepted (never lose events) but raises an alarm.
    let mut more = events(&mut chain, 5, 1_763_000_100_000);
    more.remove(1);
    let (status, body) = c
        .post_events(
            &c.c1,
            &EventBatch {
                epoch: tobira_firmware::ChainEpoch::FIRST,
                events: more,
            },
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let receipt: EventReceipt = serde_json::from_str(&body).unwrap();
    assert!(receipt.chain_break.unwrap().contains("missing"));
    let alarms: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alarms WHERE kind = 'chain_break'")
        .fetch_one(c.store.pool())
        .await
        .unwrap();
    assert_eq!(alarms, 1);
}

async fn hostile_event_uploads_get_clear_errors(c: Central) {
    let post = |body: Vec<u8>| {
        c.http
            .post(format!("{}/sync/v1/events", c.base))
            .header("Authorization", &c.c1)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        &b"{"[..],
        b"[]",
        // serde would take a struct's fields from an array; a batch is an object.
        b"[[]]",
        b"{\"events\":7}",
        b"{\"events\":[],\"x\":1}",
        b"{\"events\":[{\"seq\":1}]}",
    ] {
        let r = post(body.to_vec()).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], "bad_request");
    }
    let huge = vec![b' '; 8 * 1024 * 1024];
    let r = post(huge).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut chain = Chain::genesis(C1);
    let too_many = EventBatch {
        epoch: tobira_firmware::ChainEpoch::FIRST,
        events: events(&mut chain, 1001, 0),
    };
    let (status, _) = c.post_events(&c.c1, &too_many).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn a_lost_card_reaches_a_watching_controller_within_a_second(c: Central) {
    let mut snap = c.snapshot(C1, &c.c1).await;
    let since = snap.version();
    assert_eq!(c.store.policy_watchers(), 0);
    let nonce = new_nonce();
    let watch = c
        .get(
            &format!("/sync/v1/watch?since={since}&wait_ms=20000&nonce={nonce}"),
            &c.c1,
        )
        .send();
    let watcher = tokio::spawn(async move {
        let answer: SignedPolicy = watch.await.unwrap().json().await.unwrap();
        answer
    });
    // Wait until the long-poll is parked on the server: from then on, any
    // published change wakes it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.store.policy_watchers() == 0 {
        assert!(Instant::now() < deadline, "the watch was never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !watcher.is_finished(),
        "the watch answered before any change"
    );
    let lost = set_card_state(&c.store, &uid_of(SATO), "lost").await;
    let answer = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .unwrap()
        .unwrap();
    let PolicyMessage::Watch {
        since: asked,
        version,
        urgent,
        ..
    } = c.open(&answer, C1, &nonce)
    else {
        panic!("expected a watch answer")
    };
    assert!(urgent);
    assert_eq!((asked, version), (since, lost));
    let nonce = new_nonce();
    let envelope = c
        .signed(
            &format!("/sync/v1/delta?since={since}&nonce={nonce}"),
            &c.c1,
        )
        .await;
    let PolicyMessage::FreshDelta { delta, .. } = c.open(&envelope, C1, &nonce) else {
        panic!("expected a delta")
    };
    let issued = delta.issued_at.0;
    snap = snap.apply_delta(&delta).unwrap();
    assert_eq!(
        snap.card(&uid_of(SATO).parse().unwrap()).unwrap().state,
        CardState::Lost
    );
    // Timed on the server's own clock, so that a loaded test machine's
    // client-side scheduling does not count: from the change being recorded
    // to the delta carrying it being issued.
    let recorded: i64 = sqlx::query_scalar("SELECT at FROM policy_changes WHERE version = $1")
        .bind(lost as i64)
        .fetch_one(c.store.pool())
        .await
        .unwrap();
    let took = issued - recorded;
    eprintln!("lost card: delta issued {took} ms after the change (server clock)");
    assert!((0..1000).contains(&took), "{took} ms");
    assert_eq!(c.store.policy_watchers(), 0);
}

async fn a_watch_with_nothing_new_returns_when_its_wait_ends(c: Central) {
    let v = c.store.policy_version().version;
    let nonce = new_nonce();
    let answer = c
        .signed(
            &format!("/sync/v1/watch?since={v}&wait_ms=50&nonce={nonce}"),
            &c.c1,
        )
        .await;
    let PolicyMessage::Watch {
        controller,
        since,
        version,
        urgent,
        ..
    } = c.open(&answer, C1, &nonce)
    else {
        panic!("expected a watch answer")
    };
    assert_eq!((controller, since, version, urgent), (C1, v, v, false));
    // The same answer proves nothing to a later request.
    assert!(matches!(
        c.key.open_fresh(
            &answer,
            Expected {
                controller: C1,
                nonce: &new_nonce(),
                held: v
            }
        ),
        Err(ProtocolError::WrongNonce { .. })
    ));
    // Behind already: answers at once.
    let nonce = new_nonce();
    let answer = c
        .signed(
            &format!("/sync/v1/watch?since=0&wait_ms=20000&nonce={nonce}"),
            &c.c1,
        )
        .await;
    assert_eq!(c.open(&answer, C1, &nonce).version(), v);
}

async fn extreme_sequence_numbers_get_a_clear_4xx(c: Central) {
    for seq in [i64::MAX as u64, u64::MAX, 0, i64::MAX as u64 + 1] {
        let event = tobira_firmware::Event {
            controller: C1,
            seq,
            at: tobira_firmware::Timestamp(1_763_000_000_000),
            kind: tobira_firmware::EventKind::DoorClosed {
                door: tobira_firmware::DoorId(MACHINE_DOOR as u32),
            },
        };
        let sealed = tobira_firmware::SealedEvent {
            link: tobira_firmware::chain_link(&tobira_firmware::ChainLink::GENESIS, &event)
                .unwrap(),
            event,
            prev: tobira_firmware::ChainLink::GENESIS,
        };
        let (status, body) = c
            .post_events(
                &c.c1,
                &EventBatch {
                    epoch: tobira_firmware::ChainEpoch::FIRST,
                    events: vec![sealed],
                },
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "seq {seq}: {body}");
        assert!(body.contains("sequence number"), "seq {seq}: {body}");
    }
    // The service is still there, and the chain did not move.
    let mut chain = Chain::genesis(C1);
    let batch = EventBatch {
        epoch: tobira_firmware::ChainEpoch::FIRST,
        events: events(&mut chain, 2, 1_763_000_000_000),
    };
    let (status, body) = c.post_events(&c.c1, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["stored_through"], 2);
}

async fn a_receipt_names_conflicts_and_never_covers_them(c: Central) {
    let mut chain = Chain::genesis(C1);
    let batch = EventBatch {
        epoch: tobira_firmware::ChainEpoch::FIRST,
        events: events(&mut chain, 4, 1_763_000_000_000),
    };
    let (status, _) = c.post_events(&c.c1, &batch).await;
    assert_eq!(status, StatusCode::OK);
    // Other content under numbers 2 to 4, as from a board that lost its data.
    let mut other = Chain::genesis(C1);
    let mut resent = events(&mut other, 4, 1_763_900_000_000);
    resent.remove(0);
    let (status, body) = c
        .post_events(
            &c.c1,
            &EventBatch {
                epoch: tobira_firmware::ChainEpoch::FIRST,
                events: resent,
            },
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["stored_through"], 1, "{body}");
    assert_eq!(receipt["conflict"], serde_json::json!([2, 3, 4]), "{body}");
}

/// Runs each test on a fresh SQLite store and on a fresh PostgreSQL database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, dir) = crate::support::sqlite().await;
                    super::$name(super::Central::start(store, Some(dir)).await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = crate::support::postgres().await {
                        super::$name(super::Central::start(store, None).await).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    health_and_authentication,
    a_controller_pulls_a_signed_snapshot_and_a_tampered_one_fails,
    deltas_apply_in_order,
    the_same_event_batch_posted_twice_is_stored_once_and_a_broken_chain_raises_an_alarm,
    hostile_event_uploads_get_clear_errors,
    a_lost_card_reaches_a_watching_controller_within_a_second,
    a_watch_with_nothing_new_returns_when_its_wait_ends,
    extreme_sequence_numbers_get_a_clear_4xx,
    a_receipt_names_conflicts_and_never_covers_them,
);
