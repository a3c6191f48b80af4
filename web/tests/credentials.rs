//! Credential hygiene over real HTTP and on both backends: API tokens listed
//! with their last use and revoked at once; controllers disabled, enabled,
//! re-keyed and deleted; a silent controller raises one `controller_offline`
//! alarm (time is injected: nothing sleeps).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::*;
use tobira_protocol::{controller_authorization, PolicySigner};
use tobira_web::store::auth::{ControllerAuth, Role};
use tobira_web::{AppState, Store};

struct Server {
    base: String,
    store: Store,
    admin: String,
    c1: String,
    c2: String,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, dir) = super::support::sqlite().await;
                    super::$name(super::start(store, Some(dir)).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = super::support::postgres().await {
                        super::$name(super::start(store, None).await).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    tokens_are_listed_with_their_last_use_and_revoked_at_once,
    token_last_use_is_written_at_most_once_a_minute,
    a_disabled_controller_is_refused_at_sync_until_enabled,
    a_rotated_secret_replaces_the_old_one_at_once,
    a_controller_is_deleted_only_when_no_door_refers_to_it,
    a_silent_controller_raises_one_offline_alarm,
);

async fn start(store: Store, dir: Option<tempfile::TempDir>) -> Server {
    let (c1, c2) = seed(&store).await;
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, tobira_web::router(state))
            .await
            .unwrap();
    });
    let admin = store
        .create_token("test", "root", Role::Admin, 1)
        .await
        .unwrap();
    Server {
        base: format!("http://{addr}"),
        store,
        admin,
        c1: controller_authorization(C1, &c1),
        c2: controller_authorization(C2, &c2),
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        if status.is_client_error() {
            assert!(
                value["error"].is_string() && value["message"].is_string(),
                "{value}"
            );
        }
        (status, value)
    }

    async fn call(&self, method: Method, path: &str) -> (StatusCode, Value) {
        let token = self.admin.clone();
        self.call_as(&token, method, path, None).await
    }

    async fn sync(&self, auth: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!(
                "{}/sync/v1/snapshot?nonce=00112233445566778899aabbccddeeff",
                self.base
            ))
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        let (_, page) = self.call(Method::GET, "/audit?limit=500").await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["target"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

async fn tokens_are_listed_with_their_last_use_and_revoked_at_once(s: Server) {
    let hr = s
        .store
        .create_token("test", "hr-sync", Role::Facilities, 30)
        .await
        .unwrap();
    // Not used yet.
    let (st, page) = s.call(Method::GET, "/tokens").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let listed = items.iter().find(|t| t["name"] == "hr-sync").unwrap();
    assert_eq!(listed["role"], "facilities");
    assert!(listed["created_at"].as_i64().unwrap() > 0);
    assert!(listed["expires_at"].as_i64().unwrap() > listed["created_at"].as_i64().unwrap());
    assert_eq!(listed["last_used_at"], Value::Null);
    assert_eq!(listed["revoked_at"], Value::Null);
    assert!(
        !page.to_string().contains("tbr_") && listed.get("token_hash").is_none(),
        "neither tokens nor their hashes are shown: {page}"
    );
    let id = listed["id"].as_i64().unwrap();

    // Used once: its last use shows.
    let (st, _) = s.call_as(&hr, Method::GET, "/sites", None).await;
    assert_eq!(st, StatusCode::OK);
    let (_, page) = s.call(Method::GET, "/tokens").await;
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert!(listed["last_used_at"].as_i64().unwrap() > 0, "{listed}");

    // Only admins see or revoke tokens.
    let (st, _) = s.call_as(&hr, Method::GET, "/tokens", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .call_as(&hr, Method::POST, &format!("/tokens/{id}/revoke"), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Revoked: the very next request is refused.
    let (st, revoked) = s.call(Method::POST, &format!("/tokens/{id}/revoke")).await;
    assert_eq!(st, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].as_i64().unwrap() > 0);
    let (st, body) = s.call_as(&hr, Method::GET, "/sites", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    let (st, _) = s.call(Method::POST, &format!("/tokens/{id}/revoke")).await;
    assert_eq!(st, StatusCode::CONFLICT, "revoked once");
    let (_, page) = s.call(Method::GET, "/tokens").await;
    let own = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "root")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (st, body) = s.call(Method::POST, &format!("/tokens/{own}/revoke")).await;
    assert_eq!(st, StatusCode::CONFLICT, "no token revokes itself: {body}");
    let (st, _) = s.call(Method::GET, "/tokens").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.call(Method::POST, "/tokens/9999/revoke").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.call(Method::POST, "/tokens/0/revoke").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(s
        .audit_actions()
        .await
        .contains(&("token.revoke".into(), "token:hr-sync".into())));
}

async fn token_last_use_is_written_at_most_once_a_minute(s: Server) {
    let token = s
        .store
        .create_token("test", "busy", Role::Security, 1)
        .await
        .unwrap();
    let last_use = || async {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE name = 'busy'")
                .fetch_one(s.store.pool())
                .await
                .unwrap();
        v
    };
    let t0 = tobira_web::store::now_ms();
    assert!(s.store.verify_token_at(&token, t0).await.unwrap().is_some());
    assert_eq!(last_use().await, Some(t0));
    for later in [1_000, 30_000, 59_999] {
        assert!(s
            .store
            .verify_token_at(&token, t0 + later)
            .await
            .unwrap()
            .is_some());
        assert_eq!(last_use().await, Some(t0), "not rewritten after {later} ms");
    }
    s.store
        .verify_token_at(&token, t0 + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last_use().await, Some(t0 + 60_000));
}

async fn a_disabled_controller_is_refused_at_sync_until_enabled(s: Server) {
    let (st, _) = s.sync(&s.c1).await;
    assert_eq!(st, StatusCode::OK);
    let (st, c) = s.call(Method::POST, "/controllers/1/disable").await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(c["disabled"], true);
    assert!(
        c["last_seen_at"].as_i64().is_some(),
        "its last contact is recorded: {c}"
    );
    let (st, body) = s.sync(&s.c1).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "controller_disabled");
    assert!(
        body["message"].as_str().unwrap().contains("controller 1"),
        "{body}"
    );
    // Only that controller.
    let (st, _) = s.sync(&s.c2).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.call(Method::POST, "/controllers/1/disable").await;
    assert_eq!(st, StatusCode::CONFLICT);
    let facilities = s
        .store
        .create_token("test", "fm", Role::Facilities, 1)
        .await
        .unwrap();
    let (st, _) = s
        .call_as(&facilities, Method::POST, "/controllers/1/enable", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, c) = s.call(Method::POST, "/controllers/1/enable").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(c["disabled"], false);
    let (st, _) = s.sync(&s.c1).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.call(Method::POST, "/controllers/99/disable").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let actions = s.audit_actions().await;
    for action in ["controller.disable", "controller.enable"] {
        assert!(
            actions.contains(&(action.into(), "controller:1".into())),
            "{actions:?}"
        );
    }
}

async fn a_rotated_secret_replaces_the_old_one_at_once(s: Server) {
    let (st, answer) = s.call(Method::POST, "/controllers/2/rotate-secret").await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    let secret = answer["secret"].as_str().unwrap();
    assert_eq!(answer["controller"]["id"], 2);
    assert_eq!(answer["authorization"], format!("Bearer 2.{secret}"));
    let (st, _) = s.sync(&s.c2).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the old secret is refused");
    let (st, _) = s.sync(&controller_authorization(C2, secret)).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.call(Method::POST, "/controllers/77/rotate-secret").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(s
        .audit_actions()
        .await
        .contains(&("controller.rotate_secret".into(), "controller:2".into())));
    assert!(
        !s.audit_actions()
            .await
            .iter()
            .any(|(_, t)| t.contains(secret)),
        "no secret in the audit log"
    );
}

async fn a_controller_is_deleted_only_when_no_door_refers_to_it(s: Server) {
    let (st, body) = s.call(Method::DELETE, "/controllers/1").await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("20") && message.contains("21") && message.contains("Office gate"),
        "names the doors: {message}"
    );
    // Once its door is moved elsewhere, controller 2 can go.
    let mut tx = s.store.begin().await.unwrap();
    sqlx::query("UPDATE doors SET controller_id = 1 WHERE id = 22")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let before = s.store.policy_version().version;
    let (st, _) = s.call(Method::DELETE, "/controllers/2").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(s.store.policy_version().version > before);
    let (st, _) = s.call(Method::GET, "/controllers/2").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.sync(&s.c2).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s.call(Method::DELETE, "/controllers/2").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Its id is not given to the next controller: events are keyed by it.
    let next = s.store.add_controller("test", SITE, "new").await.unwrap();
    assert_eq!(
        next.controller, 3,
        "a deleted controller's id is not reused"
    );
    assert!(s
        .audit_actions()
        .await
        .contains(&("controller.delete".into(), "controller:2".into())));
}

async fn a_silent_controller_raises_one_offline_alarm(s: Server) {
    const MINUTE: i64 = 60_000;
    let store = &s.store;
    let secret = s.c1.strip_prefix("Bearer 1.").unwrap().to_string();
    let t0 = 1_800_000_000_000; // 2027-01-15T08:00:00Z
    assert!(matches!(
        store
            .authenticate_controller(C1, &secret, t0)
            .await
            .unwrap(),
        ControllerAuth::Accepted { connected: true }
    ));
    assert!(matches!(
        store
            .authenticate_controller(C1, &secret, t0 + MINUTE)
            .await
            .unwrap(),
        ControllerAuth::Accepted { connected: false }
    ));
    let after = 10 * MINUTE;
    assert!(store
        .raise_offline_alarms(t0 + 5 * MINUTE, after)
        .await
        .unwrap()
        .is_empty());
    // Controller 2 never checked in: it is not "offline", it was never online.
    let offline = store
        .raise_offline_alarms(t0 + 12 * MINUTE, after)
        .await
        .unwrap();
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert_eq!(offline[0].id, 1);
    assert_eq!(offline[0].name, "1F");
    assert_eq!(offline[0].last_contact_ms, t0 + MINUTE);
    // Once, not at every check.
    assert!(store
        .raise_offline_alarms(t0 + 30 * MINUTE, after)
        .await
        .unwrap()
        .is_empty());
    let (_, alarms) = s.call(Method::GET, "/alarms?state=all").await;
    let offline_alarms: Vec<&Value> = alarms["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "controller_offline")
        .collect();
    assert_eq!(offline_alarms.len(), 1, "{alarms}");
    assert_eq!(offline_alarms[0]["controller_id"], 1);
    let message = offline_alarms[0]["message"].as_str().unwrap();
    assert!(
        message.contains("controller 1")
            && message.contains("1F")
            && message.contains("2027-01-15T08:01:00Z"),
        "{message}"
    );
    // Back: a connect; silent again: a second alarm for the second outage.
    assert!(matches!(
        store
            .authenticate_controller(C1, &secret, t0 + 40 * MINUTE)
            .await
            .unwrap(),
        ControllerAuth::Accepted { connected: true }
    ));
    assert!(store
        .raise_offline_alarms(t0 + 45 * MINUTE, after)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .raise_offline_alarms(t0 + 51 * MINUTE, after)
            .await
            .unwrap()
            .len(),
        1
    );
    // A disabled controller is refused, and raises no alarm while silent.
    let (st, _) = s.call(Method::POST, "/controllers/1/disable").await;
    assert_eq!(st, StatusCode::OK);
    assert!(matches!(
        store
            .authenticate_controller(C1, &secret, t0 + 60 * MINUTE)
            .await
            .unwrap(),
        ControllerAuth::Disabled
    ));
    assert!(matches!(
        store
            .authenticate_controller(C1, "wrong", t0 + 60 * MINUTE)
            .await
            .unwrap(),
        ControllerAuth::Refused
    ));
}
