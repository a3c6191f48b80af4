//! Lockdowns on SQLite and, under `scripts/with-postgres`, PostgreSQL: the
//! policy's override of a site or a zone and its release, refusals, the time
//! each step reached each controller, and the JSON API over real HTTP with
//! its separate permissions to start and to release.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;
use tobira_firmware::{ThreatLevel, ZoneId};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::store::lockdowns::{LockdownInput, LockdownState};
use tobira_web::store::policy::DeltaAnswer;
use tobira_web::store::resources::{vocab, Id};
use tobira_web::store::{Store, StoreError};
use tobira_web::AppState;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let (store, _dir) = super::support::sqlite().await;
                    super::seed(&store).await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    if let Some(store) = super::support::postgres().await {
                        super::seed(&store).await;
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    a_site_lockdown_shuts_the_site_and_its_release_brings_back_the_configured_level,
    a_zone_lockdown_overrides_that_zone_only_and_one_scope_is_locked_once,
    bad_lockdown_requests_are_refused_with_the_reason,
    the_console_shows_when_each_step_reached_each_controller,
    operators_start_and_only_admins_release_over_the_api,
);

fn id(v: i64) -> Id {
    Id::new(v).unwrap()
}

fn site(reason: &str) -> LockdownInput {
    LockdownInput {
        site_id: Some(id(SITE)),
        zone_id: None,
        reason: reason.into(),
    }
}

fn zone(z: i64, reason: &str) -> LockdownInput {
    LockdownInput {
        site_id: None,
        zone_id: Some(id(z)),
        reason: reason.into(),
    }
}

async fn zone_threat(store: &Store, z: i64) -> ThreatLevel {
    let snap = store.snapshot_for(C1).await.unwrap();
    snap.zones
        .iter()
        .find(|zone| zone.id == ZoneId(z as u32))
        .unwrap()
        .settings
        .threat
}

async fn a_site_lockdown_shuts_the_site_and_its_release_brings_back_the_configured_level(
    store: Store,
) {
    store
        .set_site_threat("admin", id(SITE), vocab::ThreatLevel::High)
        .await
        .unwrap();
    let before = store.policy_version().version;
    let l = store
        .start_lockdown("desk", &site("intruder reported at the back entrance"))
        .await
        .unwrap();
    assert!(l.active());
    assert!(l.version as u64 > before);
    assert_eq!(store.policy_version().last_urgent, l.version as u64);
    assert_eq!(
        store.snapshot_for(C1).await.unwrap().threat,
        ThreatLevel::Lockdown
    );
    // A controller at the version before gets it as a delta.
    match store.delta_for(C2, before).await.unwrap() {
        DeltaAnswer::Delta(d) => assert_eq!(d.threat, Some(ThreatLevel::Lockdown)),
        other => panic!("expected a delta: {other:?}"),
    }
    // The configured level is untouched: the site's page still says high.
    assert_eq!(
        store.site(id(SITE)).await.unwrap().threat,
        vocab::ThreatLevel::High
    );

    let released = store
        .release_lockdown("admin", l.id, "police checked the building")
        .await
        .unwrap();
    assert!(!released.active());
    assert_eq!(released.released_by.as_deref(), Some("admin"));
    assert_eq!(
        store.snapshot_for(C1).await.unwrap().threat,
        ThreatLevel::High
    );
    match store.delta_for(C1, l.version as u64).await.unwrap() {
        DeltaAnswer::Delta(d) => assert_eq!(d.threat, Some(ThreatLevel::High)),
        other => panic!("expected a delta: {other:?}"),
    }
    assert!(matches!(
        store.release_lockdown("admin", l.id, "again").await,
        Err(StoreError::Conflict(_))
    ));

    let audit = store.audit_entries(None, 10).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(&actions[..2], ["lockdown.release", "lockdown.start"]);
    assert_eq!(audit[1].actor, "desk");
    assert!(audit[1].detail.contains("back entrance"));
    assert!(audit[0].detail.contains("police checked"));
}

async fn a_zone_lockdown_overrides_that_zone_only_and_one_scope_is_locked_once(store: Store) {
    let machine = store
        .start_lockdown("desk", &zone(MACHINE, "door forced twice"))
        .await
        .unwrap();
    assert_eq!(zone_threat(&store, MACHINE).await, ThreatLevel::Lockdown);
    assert_eq!(zone_threat(&store, OFFICE).await, ThreatLevel::Normal);
    assert_eq!(
        store.snapshot_for(C1).await.unwrap().threat,
        ThreatLevel::Normal
    );
    assert!(matches!(
        store.start_lockdown("desk", &zone(MACHINE, "again")).await,
        Err(StoreError::Conflict(m)) if m.contains(&format!("lockdown {}", machine.id))
    ));
    // The whole site may still be locked down; then no zone of it on its own.
    let whole = store
        .start_lockdown("desk", &site("evacuate and lock"))
        .await
        .unwrap();
    assert!(matches!(
        store.start_lockdown("desk", &zone(OFFICE, "office too")).await,
        Err(StoreError::Conflict(m)) if m.contains("site is already locked down")
    ));
    assert!(matches!(
        store.start_lockdown("desk", &site("twice")).await,
        Err(StoreError::Conflict(_))
    ));
    let active = store.lockdowns(LockdownState::Active).await.unwrap();
    assert_eq!(
        active.iter().map(|l| l.id).collect::<Vec<_>>(),
        [whole.id, machine.id]
    );
    // Releasing the site leaves the machine room locked down.
    store
        .release_lockdown("admin", whole.id, "site safe")
        .await
        .unwrap();
    assert_eq!(
        store.snapshot_for(C1).await.unwrap().threat,
        ThreatLevel::Normal
    );
    assert_eq!(zone_threat(&store, MACHINE).await, ThreatLevel::Lockdown);
    store
        .release_lockdown("admin", machine.id, "door repaired")
        .await
        .unwrap();
    assert_eq!(zone_threat(&store, MACHINE).await, ThreatLevel::Normal);
    let all = store.lockdowns(LockdownState::All).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|l| !l.active()));
}

async fn bad_lockdown_requests_are_refused_with_the_reason(store: Store) {
    let both = LockdownInput {
        site_id: Some(id(SITE)),
        zone_id: Some(id(MACHINE)),
        reason: "x".into(),
    };
    let neither = LockdownInput {
        site_id: None,
        zone_id: None,
        reason: "x".into(),
    };
    for input in [both, neither] {
        assert!(matches!(
            store.start_lockdown("desk", &input).await,
            Err(StoreError::Invalid(m)) if m.contains("site_id")
        ));
    }
    assert!(matches!(
        store.start_lockdown("desk", &site("  ")).await,
        Err(StoreError::Invalid(m)) if m.starts_with("reason:")
    ));
    assert!(matches!(
        store.start_lockdown("desk", &site("a\u{1b}[2Jb")).await,
        Err(StoreError::Invalid(m)) if m.contains("control characters")
    ));
    assert!(matches!(
        store.start_lockdown("desk", &zone(999, "unknown")).await,
        Err(StoreError::MissingReference(m)) if m == "no zone 999"
    ));
    let l = store
        .start_lockdown("desk", &zone(MACHINE, "test"))
        .await
        .unwrap();
    assert!(matches!(
        store.release_lockdown("admin", l.id, "").await,
        Err(StoreError::Invalid(m)) if m.starts_with("comment:")
    ));
    assert!(matches!(
        store.release_lockdown("admin", id(999), "ok").await,
        Err(StoreError::NotFound(_))
    ));
    // Nothing refused changed anything.
    assert_eq!(store.lockdowns(LockdownState::All).await.unwrap().len(), 1);
    assert!(store.lockdown(l.id).await.unwrap().active());
}

async fn the_console_shows_when_each_step_reached_each_controller(store: Store) {
    let before = store.policy_version().version;
    store.note_controller_version(C1, before).await.unwrap();
    let l = store
        .start_lockdown("desk", &site("bomb threat by phone"))
        .await
        .unwrap();
    let shown = store.lockdown(l.id).await.unwrap();
    assert_eq!(
        shown
            .controllers
            .iter()
            .map(|c| (c.name.as_str(), c.locked_at))
            .collect::<Vec<_>>(),
        [("1F", None), ("annex", None)],
        "an older version does not carry it"
    );
    store
        .note_controller_version(C1, l.version as u64)
        .await
        .unwrap();
    let first = store.lockdown(l.id).await.unwrap().controllers[0].locked_at;
    assert!(first.is_some());
    // A later fetch keeps the first time.
    store
        .note_controller_version(C1, l.version as u64)
        .await
        .unwrap();
    let shown = store.lockdown(l.id).await.unwrap();
    assert_eq!(shown.controllers[0].locked_at, first);
    assert_eq!(shown.controllers[1].locked_at, None);

    let released = store
        .release_lockdown("admin", l.id, "all clear")
        .await
        .unwrap();
    assert!(released.controllers.iter().all(|c| c.released_at.is_none()));
    // The annex controller missed the lockdown and gets the release straight
    // away: both steps reached it with that version.
    store
        .note_controller_version(C2, released.release_version.unwrap() as u64)
        .await
        .unwrap();
    let shown = store.lockdown(l.id).await.unwrap();
    assert!(shown.controllers[1].locked_at.is_some());
    assert!(shown.controllers[1].released_at.is_some());
    assert_eq!(shown.controllers[0].released_at, None);
}

struct Server {
    base: String,
    http: reqwest::Client,
    operator: String,
    security: String,
    admin: String,
}

async fn serve(store: Store) -> Server {
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, tobira_web::router(state))
            .await
            .unwrap();
    });
    let token = |name: &'static str, role: Role| {
        let store = store.clone();
        async move { store.create_token("test", name, role, 1).await.unwrap() }
    };
    Server {
        base: format!("http://{addr}/api/v1"),
        http: reqwest::Client::new(),
        operator: token("desk", Role::Operator).await,
        security: token("reviewer", Role::Security).await,
        admin: token("admin", Role::Admin).await,
    }
}

impl Server {
    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.security)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

async fn operators_start_and_only_admins_release_over_the_api(store: Store) {
    let s = serve(store).await;
    let body = json!({"zone_id": MACHINE, "reason": "forced door, intruder inside"});
    let (status, _) = s.post(&s.security, "/lockdowns", body.clone()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a reviewer does not lock doors"
    );
    let (status, started) = s.post(&s.operator, "/lockdowns", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["zone_name"], "Machine room");
    assert_eq!(started["started_by"], "token:desk");
    assert_eq!(started["controllers"].as_array().unwrap().len(), 2);
    let lockdown = started["id"].as_i64().unwrap();
    let (status, again) = s.post(&s.operator, "/lockdowns", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    for bad in [
        json!({"reason": "no scope"}),
        json!({"site_id": SITE, "zone_id": MACHINE, "reason": "both"}),
        json!({"site_id": SITE}),
        json!({"site_id": 0, "reason": "zero"}),
        json!({"site_id": SITE, "reason": "x", "extra": 1}),
        json!([1, 2]),
    ] {
        let (status, err) = s.post(&s.operator, "/lockdowns", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {err}");
    }
    let (status, _) = s
        .post(
            &s.operator,
            "/lockdowns",
            json!({"zone_id": 999, "reason": "?"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let release = format!("/lockdowns/{lockdown}/release");
    let (status, _) = s
        .post(&s.operator, &release, json!({"comment": "fine now"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "operators do not release");
    let (status, err) = s.post(&s.admin, &release, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, released) = s
        .post(&s.admin, &release, json!({"comment": "intruder caught"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["released_by"], "token:admin");
    let (status, _) = s
        .post(&s.admin, &release, json!({"comment": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .post(&s.admin, "/lockdowns/999/release", json!({"comment": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, list) = s.get("/lockdowns").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, list) = s.get("/lockdowns?state=active").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.as_array().unwrap().is_empty());
    let (status, _) = s.get("/lockdowns?state=sometimes").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, one) = s.get(&format!("/lockdowns/{lockdown}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["release_comment"], "intruder caught");
}
