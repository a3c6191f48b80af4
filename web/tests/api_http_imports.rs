//! The bulk import endpoints over real HTTP: a router on 127.0.0.1:0 with a
//! temp-dir SQLite store (and, under `scripts/with-postgres`, a fresh
//! PostgreSQL database), driven with reqwest, CSV bodies as an HR system
//! exports them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::{AppState, Store};

struct Server {
    base: String,
    store: Store,
    admin: String,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

/// Every scenario runs on SQLite, and on PostgreSQL when the suite runs beside one.
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
    only_managers_import_and_others_get_403_before_anything_is_read,
    a_preview_changes_nothing_and_the_apply_then_stores_the_lines,
    bad_bodies_get_documented_4xx_json,
    the_openapi_document_describes_the_import,
);

async fn start(store: Store, dir: Option<tempfile::TempDir>) -> Server {
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, tobira_web::router(state))
            .await
            .unwrap();
    });
    let admin = store
        .create_token("test", "t", Role::Admin, 1)
        .await
        .unwrap();
    Server {
        base: format!("http://{addr}/api/v1"),
        store,
        admin,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

const FILE: &str = "external_id,name,kind,organisation,card_uid\nE001,佐藤 花子,staff,総務課,04B00001\nE002,Abe,manager,,\nE003,Ito,visitor,,\n";

impl Server {
    async fn token(&self, role: Role) -> String {
        self.store
            .create_token("test", role.as_str(), role, 1)
            .await
            .unwrap()
    }

    /// POSTs `body` to an import endpoint; the answer is always JSON.
    async fn import(
        &self,
        token: Option<&str>,
        what: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/imports/people/{what}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        assert!(ctype.starts_with("application/json"), "{status}: {text}");
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn people(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/people", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }
}

async fn only_managers_import_and_others_get_403_before_anything_is_read(s: Server) {
    for role in [Role::Security, Role::Operator] {
        let token = s.token(role).await;
        for what in ["preview", "apply"] {
            let (st, v) = s
                .import(Some(&token), what, "text/csv", FILE.as_bytes().to_vec())
                .await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{role:?} {what}: {v}");
            assert_eq!(v["error"], "forbidden");
        }
    }
    let (st, _) = s
        .import(None, "apply", "text/csv", FILE.as_bytes().to_vec())
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(s.people().await.is_empty());
    let facilities = s.token(Role::Facilities).await;
    let (st, v) = s
        .import(
            Some(&facilities),
            "preview",
            "text/csv",
            FILE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

async fn a_preview_changes_nothing_and_the_apply_then_stores_the_lines(s: Server) {
    let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(FILE);
    assert!(!lossy);
    let admin = s.admin.clone();
    let (st, preview) = s
        .import(
            Some(&admin),
            "preview",
            "text/csv; charset=shift_jis",
            sjis.to_vec(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{preview}");
    assert_eq!(preview["encoding"], "shift_jis");
    assert_eq!(preview["applied"], false);
    assert_eq!(preview["summary"]["created"], 2);
    assert_eq!(preview["summary"]["refused"], 1);
    assert_eq!(preview["lines"][1]["line"], 3);
    assert!(preview["lines"][1]["refused"]
        .as_str()
        .unwrap()
        .contains("kind"));
    assert_eq!(preview["lines"][0]["card"], "issue");
    assert_eq!(preview["lines"][0]["card_uid"], "04B00001");
    assert!(s.people().await.is_empty(), "a preview writes nothing");

    let (st, applied) = s
        .import(Some(&admin), "apply", "text/csv", sjis.to_vec())
        .await;
    assert_eq!(st, StatusCode::OK, "{applied}");
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["summary"], preview["summary"]);
    assert!(applied["policy_version"].as_u64().unwrap() > 0);
    let people = s.people().await;
    assert_eq!(people.len(), 2);
    assert_eq!(people[0]["name"], "佐藤 花子");
    assert_eq!(people[0]["external_id"], "E001");
    assert_eq!(applied["lines"][0]["person_id"], people[0]["id"]);
    let resp = s
        .http
        .get(format!("{}/cards/04B00001", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let card: Value = resp.json().await.unwrap();
    assert_eq!(card["person_id"], people[0]["id"]);
    assert_eq!(card["state"], "active");
    // The audit log has each change and the import itself.
    let resp = s
        .http
        .get(format!("{}/audit?limit=10", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let audit: Value = resp.json().await.unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .or_else(|| audit["items"].as_array())
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["people.import", "card.issue", "person.create"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    // The same file again: nothing to do.
    let (_, again) = s
        .import(Some(&admin), "preview", "text/csv", sjis.to_vec())
        .await;
    assert_eq!(again["summary"]["unchanged"], 2);
}

async fn bad_bodies_get_documented_4xx_json(s: Server) {
    let admin = s.admin.clone();
    let (st, v) = s
        .import(
            Some(&admin),
            "apply",
            "application/json",
            b"{\"name\": \"x\"}".to_vec(),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("text/csv"));
    let (st, v) = s
        .import(
            Some(&admin),
            "preview",
            "text/csv",
            b"external_id,name,kind,salary\n".to_vec(),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("salary"), "{v}");
    let (st, v) = s
        .import(Some(&admin), "preview", "text/csv", vec![0xff, 0x80, 0xfe])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .import(Some(&admin), "apply", "text/csv", Vec::new())
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .import(
            Some(&admin),
            "apply",
            "text/csv",
            vec![b'a'; 4 * 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(s.people().await.is_empty());
}

async fn the_openapi_document_describes_the_import(s: Server) {
    let resp = s
        .http
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    for what in ["preview", "apply"] {
        let op = &doc["paths"][format!("/api/v1/imports/people/{what}")]["post"];
        assert!(op["requestBody"]["content"]["text/csv"].is_object(), "{op}");
        let responses = op["responses"].as_object().unwrap();
        for code in ["200", "400", "401", "403", "413", "500"] {
            assert!(responses.contains_key(code), "{what} lacks {code}");
        }
    }
    let report = &doc["components"]["schemas"]["ImportReport"];
    assert!(report["properties"]["lines"].is_object(), "{report}");
}
