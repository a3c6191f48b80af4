//! The JSON API over real HTTP: a router on 127.0.0.1:0 with a temp-dir SQLite
//! store (and, under `scripts/with-postgres`, a fresh PostgreSQL database),
//! driven with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::{AppState, Store};

struct Server {
    base: String,
    store: Store,
    signer: Arc<PolicySigner>,
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
    api_configuration_reaches_controller_snapshots_and_deltas,
    openapi_document_is_public_strict_and_complete,
    structure_crud_with_defaults_conflicts_and_threat_levels,
    card_lifecycle_is_urgent_recorded_and_refuses_illegal_moves,
    groups_grants_bookings_and_enrollments,
    controllers_are_registered_by_admins_with_credentials_shown_once,
    roles_are_enforced_and_every_error_is_json,
    hostile_requests_get_4xx_json,
    events_search_pages_stably_exports_csv_and_counts_who_is_inside,
    csv_export_streams_every_row_across_pages,
    alarms_are_listed_and_acknowledged_once,
    missing_references_and_duplicates_are_told_apart,
    events_and_alarms_carry_names_warnings_and_context,
    checkpoints_are_signed_by_admins_listed_in_pages_and_verified_by_reviewers,
    state_changes_check_the_role_before_reading_the_body,
    answers_say_nosniff_and_no_store,
    names_refuse_bidi_overrides_and_invisible_characters,
    reads_of_personal_data_are_audited,
    the_history_pairs_entries_and_exits_as_json_and_excel_csv,
    four_eyes_threat_changes_wait_for_a_second_admin,
    the_audit_log_is_searched_by_actor_action_target_words_and_period,
    monthly_reviews_are_prepared_signed_off_once_and_zones_recertified,
    reports_answer_json_and_excel_csv_and_refuse_bad_periods,
);

async fn start(store: Store, dir: Option<tempfile::TempDir>) -> Server {
    let signer = Arc::new(PolicySigner::generate());
    let state = AppState::new(store.clone(), signer.clone());
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
        signer,
        admin,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn token(&self, role: Role) -> String {
        self.store
            .create_token("test", role.as_str(), role, 1)
            .await
            .unwrap()
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        if text.is_empty() {
            return (status, Value::Null);
        }
        assert!(
            ctype.unwrap_or_default().starts_with("application/json"),
            "{status} {path}: {text}"
        );
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let token = self.admin.clone();
        self.call_as(Some(&token), method, path, body).await
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(Method::POST, path, Some(body)).await;
        assert!(
            s == StatusCode::CREATED || s == StatusCode::OK,
            "POST {path}: {s} {v}"
        );
        v
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(Method::PUT, path, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "PUT {path}: {v}");
        v
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let (s, v) = self.call(method.clone(), path, body).await;
        assert_eq!(s, status, "{method} {path}: {v}");
        if status.is_client_error() {
            assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
        }
        v
    }

    /// PUTs a change that waits for a second admin (202), checks that the
    /// requester's own approval is refused, and approves it with a second
    /// admin's token; what applying it gave.
    async fn put_approved(&self, path: &str, body: Value) -> Value {
        let pending = self
            .expect(Method::PUT, path, Some(body), StatusCode::ACCEPTED)
            .await;
        assert_eq!(pending["state"], "pending", "{pending}");
        let id = pending["id"].as_i64().unwrap();
        let approve = format!("/approvals/{id}/approve");
        self.expect(Method::POST, &approve, None, StatusCode::FORBIDDEN)
            .await;
        let second = self
            .store
            .create_token("test", &format!("second-admin-{id}"), Role::Admin, 1)
            .await
            .unwrap();
        let (st, done) = self
            .call_as(Some(&second), Method::POST, &approve, None)
            .await;
        assert_eq!(st, StatusCode::OK, "{done}");
        assert_eq!(done["state"], "approved", "{done}");
        serde_json::from_str(done["result"].as_str().unwrap()).unwrap()
    }

    /// A site with a level-2 lobby and a level-4 machine room joined by a door.
    async fn building(&self) -> (i64, i64, i64, i64) {
        let site = self.post("/sites", json!({"name": "Main hall"})).await["id"]
            .as_i64()
            .unwrap();
        let lobby = self
            .post(
                "/zones",
                json!({"site_id": site, "name": "Lobby", "level": 2}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let machine = self
            .post(
                "/zones",
                json!({"site_id": site, "name": "Machine room", "level": 4}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let door = self
            .post(
                "/doors",
                json!({"name": "MR door", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": machine,
                       "entry_reader": {"biometric": 7}, "exit_reader": {}}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        (site, lobby, machine, door)
    }
}

async fn openapi_document_is_public_strict_and_complete(s: Server) {
    let resp = s
        .http
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = &doc["components"]["schemas"];
    for input in [
        "SiteInput",
        "ZoneInput",
        "DoorInput",
        "PersonInput",
        "CardInput",
        "GrantInput",
        "BookingInput",
        "ZoneSettings",
    ] {
        assert_eq!(
            schemas[input]["additionalProperties"],
            json!(false),
            "{input}"
        );
    }
    assert_eq!(schemas["Id"]["maximum"], json!(4294967295_i64));
    assert_eq!(schemas["Level"]["maximum"], json!(4));
    // Patterns in the document are the ones the code checks.
    let tz = &schemas["SiteInput"]["properties"]["time_zone"];
    assert!(
        tz.to_string()
            .contains(&json!(tobira_web::store::resources::sites::TIME_ZONE_PATTERN).to_string()),
        "{tz}"
    );
    assert_eq!(
        schemas["Uid"]["pattern"],
        tobira_web::store::resources::UID_PATTERN
    );
    assert_eq!(
        schemas["Name"]["pattern"],
        tobira_web::store::resources::TEXT_PATTERN
    );
    let reasons = schemas["ReasonCode"]["enum"].as_array().unwrap().len();
    assert_eq!(reasons, tobira_firmware::Reason::ALL.len());
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "{}", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for code in ["400", "401", "500"] {
                assert!(responses.contains_key(code), "{method} {path} lacks {code}");
            }
            if method != "get" {
                assert!(responses.contains_key("403"), "{method} {path} lacks 403");
            }
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("413") || method == "post" && path.contains("/cards/"),
                    "{method} {path}"
                );
            }
        }
    }
}

async fn structure_crud_with_defaults_conflicts_and_threat_levels(s: Server) {
    let (site, lobby, machine, door) = s.building().await;

    let zone = s.get(&format!("/zones/{machine}")).await;
    assert_eq!(zone["level"], 4);
    assert_eq!(zone["settings"]["anti_passback"], "hard");
    assert_eq!(zone["settings"]["kinds"]["citizen"], "refused");
    assert_eq!(zone["settings"]["threat"], "normal");
    let door_json = s.get(&format!("/doors/{door}")).await;
    assert_eq!(door_json["entry_reader"]["biometric"], 7);
    assert_eq!(door_json["exit_reader"]["biometric"], Value::Null);
    assert_eq!(door_json["fire_egress"], false);

    // Update keeps the zone's threat level; settings given are validated.
    let mut settings = zone["settings"].clone();
    settings["escort_window_ms"] = json!(5);
    s.expect(
        Method::PUT,
        &format!("/zones/{machine}"),
        Some(json!({"site_id": site, "name": "MR", "level": 4, "settings": settings})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let renamed = s
        .put(
            &format!("/zones/{machine}"),
            json!({"site_id": site, "name": "MR", "level": 3}),
        )
        .await;
    assert_eq!(renamed["settings"]["anti_passback"], "soft");

    // Lists page deterministically.
    for n in 0..3 {
        s.post(
            "/zones",
            json!({"site_id": site, "name": format!("Room {n}"), "level": 1}),
        )
        .await;
    }
    let first = s.get("/zones?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap().to_string();
    let second = s.get(&format!("/zones?limit=2&cursor={next}")).await;
    assert_eq!(
        second["items"][0]["id"].as_i64().unwrap(),
        first["items"][1]["id"].as_i64().unwrap() + 1
    );
    let all = s.get(&format!("/zones?site={site}&limit=500")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(all["next"], Value::Null);

    // Schedules: windows are checked.
    s.expect(
        Method::POST,
        "/schedules",
        Some(json!({"name": "bad", "windows": [{"days": 31, "start": 600, "end": 500}]})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let sched = s
        .post(
            "/schedules",
            json!({"name": "Office", "windows": [{"days": 31, "start": 510, "end": 1035}]}),
        )
        .await;
    let sid = sched["id"].as_i64().unwrap();
    s.put(
        &format!("/zones/{lobby}"),
        json!({"site_id": site, "name": "Lobby", "level": 1, "opening_schedule_id": sid}),
    )
    .await;
    s.expect(
        Method::DELETE,
        &format!("/schedules/{sid}"),
        None,
        StatusCode::CONFLICT,
    )
    .await;

    // A door joins two different zones that exist.
    s.expect(
        Method::POST,
        "/doors",
        Some(
            json!({"name": "x", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": lobby}),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.expect(Method::POST, "/doors", Some(json!({"name": "x", "kind": "flapper_gate", "outside_zone_id": lobby, "inside_zone_id": 999})),
        StatusCode::UNPROCESSABLE_ENTITY).await;
    // A door stays within one site (a controller's snapshot holds its own site only).
    let other_site = s.post("/sites", json!({"name": "Annex"})).await["id"]
        .as_i64()
        .unwrap();
    let far = s
        .post(
            "/zones",
            json!({"site_id": other_site, "name": "Far", "level": 3}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    s.expect(
        Method::POST,
        "/doors",
        Some(json!({"name": "x", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": far})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.expect(
        Method::PUT,
        &format!("/zones/{lobby}"),
        Some(json!({"site_id": other_site, "name": "Lobby", "level": 2})),
        StatusCode::CONFLICT,
    )
    .await;

    // Holidays.
    s.put(
        &format!("/sites/{site}/holidays/2026-11-23"),
        json!({"name": "勤労感謝の日"}),
    )
    .await;
    s.put(
        &format!("/sites/{site}/holidays/2026-11-23"),
        json!({"name": "Labour Thanksgiving Day"}),
    )
    .await;
    let hol = s.get(&format!("/sites/{site}/holidays")).await;
    assert_eq!(
        hol["items"],
        json!([{"site_id": site, "date": "2026-11-23", "name": "Labour Thanksgiving Day"}])
    );
    s.expect(
        Method::PUT,
        &format!("/sites/{site}/holidays/2026-02-30"),
        Some(json!({"name": "x"})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.expect(
        Method::PUT,
        "/sites/999/holidays/2026-02-03",
        Some(json!({"name": "x"})),
        StatusCode::NOT_FOUND,
    )
    .await;

    // A site in use cannot go; a door can.
    s.expect(
        Method::DELETE,
        &format!("/sites/{site}"),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::DELETE,
        &format!("/doors/{door}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.expect(
        Method::GET,
        &format!("/doors/{door}"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Threat levels: admin only, urgent.
    let facilities = s.token(Role::Facilities).await;
    let (st, _) = s
        .call_as(
            Some(&facilities),
            Method::PUT,
            &format!("/sites/{site}/threat"),
            Some(json!({"threat": "lockdown"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let before = s.store.policy_version();
    let site_json = s
        .put_approved(
            &format!("/sites/{site}/threat"),
            json!({"threat": "lockdown"}),
        )
        .await;
    assert_eq!(site_json["threat"], "lockdown");
    let after = s.store.policy_version();
    assert!(after.version > before.version && after.last_urgent == after.version);
    let z = s
        .put_approved(
            &format!("/zones/{lobby}/threat"),
            json!({"threat": "elevated"}),
        )
        .await;
    assert_eq!(z["settings"]["threat"], "elevated");
    let z = s
        .put(
            &format!("/zones/{lobby}"),
            json!({"site_id": site, "name": "Lobby", "level": 1}),
        )
        .await;
    assert_eq!(
        z["settings"]["threat"], "elevated",
        "an update keeps the threat level"
    );
}

async fn card_lifecycle_is_urgent_recorded_and_refuses_illegal_moves(s: Server) {
    let person = s
        .post(
            "/people",
            json!({"kind": "staff", "name": "山田 太郎", "organisation": "情報政策課"}),
        )
        .await;
    let pid = person["id"].as_i64().unwrap();
    assert_eq!(person["kind"], "staff");
    let card = s
        .post("/cards", json!({"uid": "04a23b1c", "person_id": pid}))
        .await;
    assert_eq!(card["uid"], "04A23B1C");
    assert_eq!(card["state"], "active");
    s.expect(
        Method::POST,
        "/cards",
        Some(json!({"uid": "04A23B1C", "person_id": pid})),
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards",
        Some(json!({"uid": "0102030405060708", "person_id": 4242})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards",
        Some(json!({"uid": "0102", "person_id": pid})),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let changed: i64 =
        sqlx::query_scalar("SELECT changed_version FROM cards WHERE uid = '04A23B1C'")
            .fetch_one(s.store.pool())
            .await
            .unwrap();
    assert!(changed > 0);

    let operator = s.token(Role::Operator).await;
    let (st, lost) = s
        .call_as(
            Some(&operator),
            Method::POST,
            "/cards/04A23B1C/lost",
            Some(json!({"note": "reported at reception"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{lost}");
    assert_eq!(lost["state"], "lost");
    let v = s.store.policy_version();
    assert_eq!(v.last_urgent, v.version, "a lost card is an urgent change");
    let changed: i64 =
        sqlx::query_scalar("SELECT changed_version FROM cards WHERE uid = '04A23B1C'")
            .fetch_one(s.store.pool())
            .await
            .unwrap();
    assert_eq!(changed as u64, v.version);

    s.expect(
        Method::POST,
        "/cards/04A23B1C/lost",
        None,
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/04A23B1C/suspend",
        None,
        StatusCode::CONFLICT,
    )
    .await;
    let (st, back) = s
        .call(
            Method::POST,
            "/cards/04A23B1C/reactivate",
            Some(Value::Null),
        )
        .await;
    assert_eq!(
        (st, back["state"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    s.post("/cards/04A23B1C/suspend", json!({})).await;
    s.post(
        "/cards/04A23B1C/return",
        json!({"note": "replaced by 04A23B1D"}),
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/04A23B1C/reactivate",
        None,
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/04A23B1C/revoke",
        None,
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/04A23B1C/lost",
        Some(json!({"note": 5})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/04A23B1C/lost",
        Some(json!({"nope": "x"})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/0A0B0C0D/lost",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    s.expect(
        Method::POST,
        "/cards/zz/lost",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let detail = s.get("/cards/04A23B1C").await;
    let states: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["active", "lost", "active", "suspended", "returned"]
    );
    assert_eq!(detail["history"][1]["note"], "reported at reception");
    assert_eq!(detail["history"][1]["actor"], "token:operator");

    // Validity: checked, and a window that has ended is urgent.
    s.expect(
        Method::PUT,
        "/cards/04A23B1C",
        Some(json!({"valid_from": 10, "valid_until": 5})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let c2 = s
        .post(
            "/cards",
            json!({"uid": "01020304050607", "person_id": pid, "valid_until": 253402300799999_i64}),
        )
        .await;
    assert_eq!(c2["valid_until"], 253402300799999_i64);
    s.put("/cards/01020304050607", json!({"valid_until": 1000}))
        .await;
    let v = s.store.policy_version();
    assert_eq!(v.last_urgent, v.version);
    let page = s.get(&format!("/cards?person={pid}&state=active")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    // A person with cards cannot be deleted; one without can.
    s.expect(
        Method::DELETE,
        &format!("/people/{pid}"),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    let other = s
        .post("/people", json!({"kind": "visitor", "name": "Guest"}))
        .await["id"]
        .as_i64()
        .unwrap();
    s.expect(
        Method::DELETE,
        &format!("/people/{other}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;

    // Every change is in the audit log, and the chain verifies.
    let audit = s.get("/audit?limit=500").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "person.create",
        "card.issue",
        "card.report_lost",
        "card.reactivate",
        "card.suspend",
        "card.return",
        "card.update",
        "person.delete",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let page = s.get("/audit?limit=2").await;
    let next = page["next"].as_str().unwrap().to_string();
    let page2 = s.get(&format!("/audit?limit=2&cursor={next}")).await;
    assert_eq!(
        page2["items"][0]["seq"].as_i64().unwrap(),
        next.parse::<i64>().unwrap() - 1
    );
    assert_eq!(s.get("/audit/verify").await["ok"], true);
    sqlx::query("UPDATE admin_audit SET detail = '{\"forged\":1}' WHERE seq = 3")
        .execute(s.store.pool())
        .await
        .unwrap();
    let verify = s.get("/audit/verify").await;
    assert_eq!(
        (verify["ok"].clone(), verify["broken_at"].clone()),
        (json!(false), json!(3))
    );
}

async fn groups_grants_bookings_and_enrollments(s: Server) {
    let (site, lobby, machine, door) = s.building().await;
    let pid = s
        .post("/people", json!({"kind": "staff", "name": "A"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let citizen = s
        .post("/people", json!({"kind": "citizen", "name": "B"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let gid = s.post("/groups", json!({"name": "Infra"})).await["id"]
        .as_i64()
        .unwrap();

    s.expect(
        Method::PUT,
        &format!("/groups/{gid}/members/{pid}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.expect(
        Method::PUT,
        &format!("/groups/{gid}/members/{pid}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.expect(
        Method::PUT,
        &format!("/groups/{gid}/members/9999"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    let members = s.get(&format!("/groups/{gid}/members")).await;
    assert_eq!(members["items"][0]["id"], pid);
    let changed: i64 = sqlx::query_scalar("SELECT changed_version FROM people WHERE id = $1")
        .bind(pid)
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    assert!(changed > 0);

    s.expect(
        Method::POST,
        "/grants",
        Some(json!({"group_id": gid, "zones": [machine, 999]})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    s.expect(
        Method::POST,
        "/grants",
        Some(json!({"group_id": gid, "zones": []})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let grant = s
        .post(
            "/grants",
            json!({"group_id": gid, "zones": [machine, lobby, machine], "valid_from": 0}),
        )
        .await;
    assert_eq!(
        grant["zones"],
        json!([lobby.min(machine), lobby.max(machine)])
    );
    let gr = grant["id"].as_i64().unwrap();
    s.expect(
        Method::DELETE,
        &format!("/zones/{machine}"),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        s.get(&format!("/grants?group={gid}")).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    s.expect(Method::POST, "/bookings",
        Some(json!({"person_id": citizen, "room_zone_id": lobby, "path": [door], "start_at": 2000, "end_at": 1000})),
        StatusCode::BAD_REQUEST).await;
    s.expect(Method::POST, "/bookings",
        Some(json!({"person_id": citizen, "room_zone_id": lobby, "path": [door], "start_at": 0, "end_at": 40 * 86_400_000_i64})),
        StatusCode::BAD_REQUEST).await;
    // A citizen's booking into the level-4 machine room would never open it.
    let v = s.expect(Method::POST, "/bookings",
        Some(json!({"person_id": citizen, "room_zone_id": machine, "path": [door], "start_at": 1000, "end_at": 3_600_000})),
        StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(v["error"], "meaningless_combination", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("bookings open level 1 and 2 zones only"),
        "{v}"
    );
    let before = s.store.policy_version().version;
    // The way to the lobby: from the street, through the front door.
    let street = s
        .post(
            "/zones",
            json!({"site_id": site, "name": "Street", "level": 0}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let front = s
        .post(
            "/doors",
            json!({"name": "Front", "kind": "door", "outside_zone_id": street, "inside_zone_id": lobby}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let booking = s.post("/bookings", json!({"person_id": citizen, "room_zone_id": lobby, "path": [front], "start_at": 1000, "end_at": 3_600_000})).await;
    assert!(s.store.policy_version().version > before);
    let bid = booking["id"].as_i64().unwrap();
    s.expect(
        Method::DELETE,
        &format!("/doors/{front}"),
        None,
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::DELETE,
        &format!("/bookings/{bid}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;

    let e = s
        .post(
            "/enrollments",
            json!({"person_id": pid, "module_id": 7, "slot": 3}),
        )
        .await;
    assert_eq!(e["slot"], 3);
    s.expect(
        Method::POST,
        "/enrollments",
        Some(json!({"person_id": citizen, "module_id": 7, "slot": 3})),
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/enrollments",
        Some(json!({"person_id": pid, "module_id": 7, "slot": 4})),
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/enrollments",
        Some(json!({"person_id": pid, "module_id": 7, "slot": 70000})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        s.get(&format!("/enrollments?person={pid}")).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.expect(
        Method::DELETE,
        "/enrollments/7/3",
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.expect(
        Method::DELETE,
        "/enrollments/7/3",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    s.expect(
        Method::DELETE,
        &format!("/groups/{gid}/members/{pid}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.expect(
        Method::DELETE,
        &format!("/groups/{gid}/members/{pid}"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    s.expect(
        Method::DELETE,
        &format!("/groups/{gid}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.expect(
        Method::GET,
        &format!("/grants/{gr}"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn controllers_are_registered_by_admins_with_credentials_shown_once(s: Server) {
    let site = s
        .post(
            "/sites",
            json!({"name": "Annex", "time_zone": "Asia/Tokyo"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let facilities = s.token(Role::Facilities).await;
    let (st, _) = s
        .call_as(
            Some(&facilities),
            Method::POST,
            "/controllers",
            Some(json!({"site_id": site, "name": "1F"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let created = s
        .post("/controllers", json!({"site_id": site, "name": "1F east"}))
        .await;
    assert_eq!(created["public_key"], s.signer.public_key().to_hex());
    let id = created["controller"]["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(created["authorization"], format!("Bearer {id}.{secret}"));
    let listed = s.get("/controllers").await;
    assert_eq!(listed["items"][0]["name"], "1F east");
    assert!(listed["items"][0].get("secret").is_none());
    s.expect(
        Method::POST,
        "/controllers",
        Some(json!({"site_id": 999, "name": "x"})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    s.expect(Method::GET, "/controllers/999", None, StatusCode::NOT_FOUND)
        .await;
}

async fn roles_are_enforced_and_every_error_is_json(s: Server) {
    let security = s.token(Role::Security).await;
    let (st, body) = s
        .call_as(
            Some(&security),
            Method::POST,
            "/sites",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    let (st, _) = s
        .call_as(Some(&security), Method::GET, "/sites", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .call_as(Some(&security), Method::GET, "/audit", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    for (method, path) in [
        (Method::GET, "/sites"),
        (Method::POST, "/sites"),
        (Method::GET, "/events"),
        (Method::GET, "/events.csv"),
    ] {
        let (st, body) = s
            .call_as(None, method, path, Some(json!({"name": "x"})))
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
    }
    let (st, _) = s
        .call_as(Some("tbr_0000"), Method::GET, "/sites", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let operator = s.token(Role::Operator).await;
    let (st, _) = s
        .call_as(
            Some(&operator),
            Method::POST,
            "/people",
            Some(json!({"kind": "staff", "name": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

async fn hostile_requests_get_4xx_json(s: Server) {
    let site = s.post("/sites", json!({"name": "S"})).await["id"]
        .as_i64()
        .unwrap();
    let bad = StatusCode::BAD_REQUEST;
    for body in [
        json!({"name": "x", "admin": true}),
        json!({"name": 5}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "a\u{0}b"}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "x", "time_zone": "../../etc/passwd"}),
        json!([1, 2]),
        json!(null),
    ] {
        s.expect(Method::POST, "/sites", Some(body), bad).await;
    }
    for body in [
        json!({"site_id": site, "name": "z", "level": 5}),
        json!({"site_id": site, "name": "z", "level": -1}),
        json!({"site_id": site, "name": "z", "level": 1.5}),
        json!({"site_id": 0, "name": "z", "level": 1}),
        json!({"site_id": 4294967296_i64, "name": "z", "level": 1}),
        json!({"site_id": 1e300, "name": "z", "level": 1}),
        json!({"site_id": "1", "name": "z", "level": 1}),
        json!({"site_id": site, "name": "z", "level": 1, "settings": {"anti_passback": "off"}}),
    ] {
        s.expect(Method::POST, "/zones", Some(body), bad).await;
    }
    s.expect(
        Method::POST,
        "/people",
        Some(json!({"kind": "alien", "name": "x"})),
        bad,
    )
    .await;
    // serde would take a struct's fields from an array; the schema says object.
    s.expect(Method::POST, "/sites", Some(json!(["x"])), bad)
        .await;
    s.expect(
        Method::POST,
        "/schedules",
        Some(json!({"name": "w", "windows": [[31, 0, 60]]})),
        bad,
    )
    .await;
    s.expect(
        Method::POST,
        "/zones",
        Some(json!({"site_id": site, "name": "z", "level": 1, "settings": ["off", false]})),
        bad,
    )
    .await;
    let lobby = s
        .post("/zones", json!({"site_id": site, "name": "L", "level": 1}))
        .await["id"]
        .as_i64()
        .unwrap();
    let room = s
        .post("/zones", json!({"site_id": site, "name": "R", "level": 2}))
        .await["id"]
        .as_i64()
        .unwrap();
    s.expect(Method::POST, "/doors",
        Some(json!({"name": "d", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": room, "entry_reader": []})), bad).await;
    s.expect(
        Method::POST,
        "/cards/04A23B1C/lost",
        Some(json!([null])),
        bad,
    )
    .await;
    s.expect(
        Method::POST,
        "/bookings",
        Some(json!({"person_id": 1, "room_zone_id": 1, "start_at": -5, "end_at": 10})),
        bad,
    )
    .await;
    let resp = s.http.post(format!("{}/bookings", s.base)).bearer_auth(&s.admin).header("content-type", "application/json")
        .body(r#"{"person_id": 1, "room_zone_id": 1, "start_at": 0, "end_at": 99999999999999999999999}"#).send().await.unwrap();
    assert_eq!(resp.status(), bad);
    for path in [
        "/sites/0",
        "/sites/-3",
        "/sites/4294967296",
        "/sites/99999999999999999999999",
        "/sites/abc",
        "/cards/04:A2:3B:1C",
        "/cards/0102",
    ] {
        s.expect(Method::GET, path, None, bad).await;
    }
    s.expect(
        Method::GET,
        "/sites/4294967295",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    for query in ["limit=0", "limit=501", "limit=x", "cursor=zz", "cursor=-1"] {
        s.expect(Method::GET, &format!("/sites?{query}"), None, bad)
            .await;
    }
    for query in [
        "cursor=%%%",
        "cursor=bm9wZQ",
        "level=9",
        "outcome=maybe",
        "reason=because",
        "from=10&to=5",
        "card=xyz",
        "from=-1",
    ] {
        s.expect(Method::GET, &format!("/events?{query}"), None, bad)
            .await;
    }
    s.expect(
        Method::GET,
        "/events.csv?utc_offset_minutes=100000",
        None,
        bad,
    )
    .await;

    // A method the path does not have: 405, JSON, with the methods it has.
    let resp = s
        .http
        .delete(format!("{}/cards/04A23B1C", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET,HEAD,PUT");
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );

    // Malformed JSON and a missing content type.
    let resp = s
        .http
        .post(format!("{}/sites", s.base))
        .bearer_auth(&s.admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), bad);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "bad_request");
    let resp = s
        .http
        .post(format!("{}/sites", s.base))
        .bearer_auth(&s.admin)
        .body("{\"name\": \"x\"}")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "bad_request");

    // 10 MB bodies are refused, with JSON, on JSON and note endpoints alike.
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    for path in ["/sites", "/cards/04A23B1C/lost"] {
        let resp = s
            .http
            .post(format!("{}{path}", s.base))
            .bearer_auth(&s.admin)
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "too_large");
    }

    // Nothing above changed anything but the one site and its two zones.
    assert_eq!(s.get("/sites").await["items"].as_array().unwrap().len(), 1);
    assert_eq!(s.get("/zones").await["items"].as_array().unwrap().len(), 2);
    assert_eq!(s.get("/doors").await["items"], json!([]));
}

/// Inserts an access event as ingest would store it: (controller, seq, at),
/// (door, zone, side), (outcome, reason), (person, card).
async fn insert_event(
    store: &Store,
    (controller, seq, at): (i64, i64, i64),
    (door, zone, side): (i64, i64, &str),
    (outcome, reason): (&str, &str),
    (person, card): (i64, &str),
) {
    sqlx::query(
        "INSERT INTO events (controller_id, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, body, prev, link, received_at) \
         VALUES ($1, $2, $3, 'access', $4, $5, $6, 4, $7, $8, $9, $10, $11, 'p', 'l', $12)",
    )
    .bind(controller)
    .bind(seq)
    .bind(at)
    .bind(door)
    .bind(zone)
    .bind(side)
    .bind(reason)
    .bind(outcome)
    .bind(person)
    .bind(card)
    .bind(json!({"type": "access", "seq": seq}).to_string())
    .bind(at + 5)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn events_search_pages_stably_exports_csv_and_counts_who_is_inside(s: Server) {
    let (_site, _lobby, machine, door) = s.building().await;
    let a = s
        .post(
            "/people",
            json!({"kind": "staff", "name": "=cmd|' /C calc'!A0"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let b = s
        .post("/people", json!({"kind": "contractor", "name": "鈴木"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let t0 = 1_795_392_720_000_i64; // 2026-11-23T00:12:00Z
                                    // a: in; b: in, out; a denied once; two controllers, same instant for a tie.
    insert_event(
        &s.store,
        (1, 1, t0),
        (door, machine, "entry"),
        ("granted", "granted"),
        (a, "04A23B1C"),
    )
    .await;
    insert_event(
        &s.store,
        (1, 2, t0 + 1000),
        (door, machine, "entry"),
        ("granted", "granted"),
        (b, "04A23B1D"),
    )
    .await;
    insert_event(
        &s.store,
        (2, 1, t0 + 1000),
        (door, machine, "entry"),
        ("denied", "anti_passback"),
        (a, "04A23B1C"),
    )
    .await;
    insert_event(
        &s.store,
        (1, 3, t0 + 2000),
        (door, machine, "exit"),
        ("granted", "granted"),
        (b, "04A23B1D"),
    )
    .await;
    insert_event(
        &s.store,
        (1, 4, t0 + 3000),
        (door, machine, "entry"),
        ("pending", "biometric_required"),
        (b, "04A23B1D"),
    )
    .await;

    let all = s.get(&format!("/events?zone={machine}")).await;
    let keys: Vec<(i64, i64)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["controller_id"].as_i64().unwrap(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(1, 4), (1, 3), (2, 1), (1, 2), (1, 1)]);
    assert_eq!(all["items"][4]["person_name"], "=cmd|' /C calc'!A0");
    assert_eq!(all["items"][4]["door_name"], "MR door");
    assert_eq!(all["items"][4]["body"]["type"], "access");

    // Walk pages of 2 while a newer event arrives: no repeats, nothing skipped.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/events?zone={machine}&limit=2&cursor={c}"),
            None => format!("/events?zone={machine}&limit=2"),
        };
        let page = s.get(&path).await;
        for e in page["items"].as_array().unwrap() {
            walked.push((
                e["controller_id"].as_i64().unwrap(),
                e["seq"].as_i64().unwrap(),
            ));
        }
        if walked.len() == 2 {
            insert_event(
                &s.store,
                (3, 1, t0 + 9000),
                (door, machine, "exit"),
                ("granted", "granted"),
                (a, "04A23B1C"),
            )
            .await;
        }
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, keys);
    let asc = s
        .get(&format!("/events?zone={machine}&order=asc&limit=1"))
        .await;
    assert_eq!(
        (
            asc["items"][0]["controller_id"].as_i64(),
            asc["items"][0]["seq"].as_i64()
        ),
        (Some(1), Some(1))
    );

    // Filters.
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    assert_eq!(count(&s.get(&format!("/events?person={a}")).await), 3);
    assert_eq!(count(&s.get("/events?card=04A23B1D").await), 3);
    assert_eq!(count(&s.get("/events?outcome=denied").await), 1);
    assert_eq!(count(&s.get("/events?reason=anti_passback").await), 1);
    assert_eq!(
        count(
            &s.get(&format!(
                "/events?door={door}&level=4&from={}&to={}",
                t0 + 1000,
                t0 + 2000
            ))
            .await
        ),
        2
    );
    assert_eq!(count(&s.get("/events?level=3").await), 0);

    // Occupancy: a went in and (after the walk above) out again; b went in, out, and is pending.
    insert_event(
        &s.store,
        (3, 2, t0 + 10_000),
        (door, machine, "entry"),
        ("granted", "granted"),
        (b, "04A23B1D"),
    )
    .await;
    let occ = s.get("/occupancy").await;
    assert_eq!(occ.as_array().unwrap().len(), 1);
    assert_eq!(occ[0]["zone_id"], machine);
    let inside: Vec<i64> = occ[0]["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person_id"].as_i64().unwrap())
        .collect();
    assert_eq!(inside, [b]);
    assert_eq!(occ[0]["people"][0]["name"], "鈴木");
    assert_eq!(occ[0]["people"][0]["since"], t0 + 10_000);

    // CSV: BOM, header, oldest first, local time, formula cells defused.
    let resp = s
        .http
        .get(format!("{}/events.csv?person={a}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("at,at_ms,controller_id,epoch,seq,kind"));
    assert!(
        lines[1]
            .starts_with("2026-11-23T09:12:00.000+09:00,1795392720000,1,0000000000000000,1,access"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("'=cmd"), "{}", lines[1]);
    let utc = s
        .http
        .get(format!(
            "{}/events.csv?person={a}&utc_offset_minutes=0&order=desc",
            s.base
        ))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(utc.contains("\r\n2026-11-23T00:12:09.000+00:00,"), "{utc}");
}

async fn csv_export_streams_every_row_across_pages(s: Server) {
    let mut tx = s.store.begin().await.unwrap();
    for seq in 1..=2500_i64 {
        sqlx::query("INSERT INTO events (controller_id, seq, at, kind, body, prev, link, received_at) VALUES (1, $1, $2, 'door_forced', '{}', 'p', 'l', 0)")
            .bind(seq).bind(seq * 10).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let text = s
        .http
        .get(format!("{}/events.csv", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2501);
    assert!(
        rows[2500].contains(",25000,1,0000000000000000,2500,door_forced,"),
        "{}",
        rows[2500]
    );
}

async fn alarms_are_listed_and_acknowledged_once(s: Server) {
    for (at, kind) in [(100, "door_forced"), (200, "chain_break")] {
        sqlx::query("INSERT INTO alarms (at, kind, controller_id, door_id, message) VALUES ($1, $2, 1, NULL, 'm')")
            .bind(at as i64).bind(kind).execute(s.store.pool()).await.unwrap();
    }
    let open = s.get("/alarms").await;
    assert_eq!(open["items"][0]["kind"], "chain_break");
    let id = open["items"][1]["id"].as_i64().unwrap();
    let ack = format!("/alarms/{id}/ack");
    let said = json!({"comment": "guard checked: door was shut, nobody inside"});
    let security = s.token(Role::Security).await;
    let (st, _) = s
        .call_as(Some(&security), Method::POST, &ack, Some(said.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let operator = s.token(Role::Operator).await;
    // Acknowledging needs a comment: none, an empty one, or one that is
    // all blanks are refused and change nothing.
    for body in [None, Some(json!({})), Some(json!({"comment": "  "}))] {
        let (st, answer) = s.call_as(Some(&operator), Method::POST, &ack, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{answer}");
    }
    assert_eq!(s.get("/alarms").await["items"].as_array().unwrap().len(), 2);
    let (st, acked) = s
        .call_as(Some(&operator), Method::POST, &ack, Some(said.clone()))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(acked["acknowledged_by"], "token:operator");
    assert_eq!(acked["ack_comment"], said["comment"]);
    s.expect(Method::POST, &ack, Some(said.clone()), StatusCode::CONFLICT)
        .await;
    s.expect(
        Method::POST,
        "/alarms/999/ack",
        Some(said.clone()),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(s.get("/alarms").await["items"].as_array().unwrap().len(), 1);
    let newest = s.get("/alarms?state=all&limit=1").await;
    let next = newest["next"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("/alarms?state=all&cursor={next}")).await["items"][0]["id"],
        id
    );
    let audit = s.get("/audit").await;
    assert_eq!(audit["items"][0]["action"], "alarm.ack");

    // Clearing: only once acknowledged; then it leaves the active list.
    let other = open["items"][0]["id"].as_i64().unwrap();
    let (st, _) = s
        .call_as(
            Some(&operator),
            Method::POST,
            &format!("/alarms/{other}/clear"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "not acknowledged yet");
    // The door of the forced alarm is unknown (no door): its cause is gone.
    let (st, cleared) = s
        .call_as(
            Some(&operator),
            Method::POST,
            &format!("/alarms/{id}/clear"),
            Some(json!({"comment": "closed"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["cleared_by"], "token:operator");
    let active = s.get("/alarms?state=active").await;
    assert_eq!(active["items"].as_array().unwrap().len(), 1);
    assert_eq!(active["items"][0]["id"], other);
    assert_eq!(s.get("/alarms?state=cleared").await["items"][0]["id"], id);
    assert_eq!(s.get("/audit").await["items"][0]["action"], "alarm.clear");
}

/// What the API stores is what the snapshot builder reads: configure a site
/// over HTTP, then check the controller's signed-snapshot contents and deltas.
async fn api_configuration_reaches_controller_snapshots_and_deltas(s: Server) {
    use tobira_firmware::{
        CardState, ControllerId, DoorId, ModuleId, SecurityLevel, TemplateSlot, ZoneId,
    };
    use tobira_web::store::policy::DeltaAnswer;

    let site = s.post("/sites", json!({"name": "City Hall"})).await["id"]
        .as_i64()
        .unwrap();
    let hours = s
        .post(
            "/schedules",
            json!({"name": "Office", "windows": [{"days": 31, "start": 510, "end": 1035}]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let lobby = s
        .post(
            "/zones",
            json!({"site_id": site, "name": "Lobby", "level": 1, "opening_schedule_id": hours}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let machine = s
        .post("/zones", json!({"site_id": site, "name": "MR", "level": 4}))
        .await["id"]
        .as_i64()
        .unwrap();
    let created = s
        .post("/controllers", json!({"site_id": site, "name": "1F"}))
        .await;
    let controller = created["controller"]["id"].as_i64().unwrap();
    let door = s
        .post(
            "/doors",
            json!({"name": "MR", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": machine,
                   "controller_id": controller, "entry_reader": {"biometric": 7}, "exit_reader": {"biometric": 8},
                   "fire_egress": true}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let person = s
        .post("/people", json!({"kind": "staff", "name": "Sato"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let citizen = s
        .post("/people", json!({"kind": "citizen", "name": "Tanaka"}))
        .await["id"]
        .as_i64()
        .unwrap();
    s.post("/cards", json!({"uid": "04A0B0C0", "person_id": person}))
        .await;
    let group = s.post("/groups", json!({"name": "Infra"})).await["id"]
        .as_i64()
        .unwrap();
    s.expect(
        Method::PUT,
        &format!("/groups/{group}/members/{person}"),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    s.post(
        "/grants",
        json!({"group_id": group, "zones": [machine], "schedule_id": hours}),
    )
    .await;
    s.post(
        "/enrollments",
        json!({"person_id": person, "module_id": 7, "slot": 3}),
    )
    .await;
    s.put(
        &format!("/sites/{site}/holidays/2026-11-23"),
        json!({"name": "勤労感謝の日"}),
    )
    .await;
    // A citizen books a level-2 meeting room behind one of the controller's doors.
    let meeting = s
        .post(
            "/zones",
            json!({"site_id": site, "name": "Meeting", "level": 2}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    s.post(
        "/doors",
        json!({"name": "Meeting", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": meeting,
               "controller_id": controller, "entry_reader": {}}),
    )
    .await;
    // The main entrance opens onto the street: no made-up outside zone.
    let front = s
        .post(
            "/doors",
            json!({"name": "Front", "kind": "door", "outside_zone_id": null, "inside_zone_id": lobby,
                   "controller_id": controller, "entry_reader": {}}),
        )
        .await;
    assert_eq!(front["outside_zone_id"], Value::Null, "{front}");
    let front = front["id"].as_i64().unwrap();
    // Leaving the outside zone out is a mistake, not a door onto the street.
    s.expect(
        Method::POST,
        "/doors",
        Some(json!({"name": "x", "kind": "door", "inside_zone_id": lobby})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let far_future = 253_402_000_000_000_i64;
    s.post(
        "/bookings",
        json!({"person_id": citizen, "room_zone_id": meeting, "path": [], "start_at": far_future, "end_at": far_future + 3_600_000}),
    )
    .await;

    let cid = ControllerId(u32::try_from(controller).unwrap());
    let snap = s.store.snapshot_for(cid).await.unwrap();
    let snapshot = tobira_firmware::Snapshot::new(snap.clone()).unwrap();
    let z = |id: i64| ZoneId(u32::try_from(id).unwrap());
    let mr = snapshot.zone(z(machine)).unwrap();
    assert_eq!(mr.level, SecurityLevel::L4);
    assert_eq!(
        mr.settings,
        tobira_firmware::ZoneSettings::for_level(SecurityLevel::L4)
    );
    assert_eq!(
        snapshot
            .zone(z(lobby))
            .unwrap()
            .opening_schedule
            .map(|s| i64::from(s.0)),
        Some(hours)
    );
    let street = snapshot
        .door(DoorId(u32::try_from(front).unwrap()))
        .unwrap();
    assert_eq!(street.outside, ZoneId::PUBLIC);
    let d = snapshot.door(DoorId(u32::try_from(door).unwrap())).unwrap();
    assert_eq!(d.entry_reader.unwrap().biometric, Some(ModuleId(7)));
    assert_eq!(d.exit_reader.unwrap().biometric, Some(ModuleId(8)));
    assert!(d.fire_egress);
    let uid: tobira_firmware::CardUid = "04A0B0C0".parse().unwrap();
    assert_eq!(snapshot.card(&uid).unwrap().state, CardState::Active);
    let sato = snapshot
        .person(snapshot.card(&uid).unwrap().person)
        .unwrap();
    assert_eq!(sato.slot_on(ModuleId(7)), Some(TemplateSlot(3)));
    assert_eq!(sato.grants.len(), 1);
    assert!(snapshot.grant(sato.grants[0]).unwrap().covers(z(machine)));
    assert_eq!(snap.schedules[0].windows[0].start, 510);
    assert!(snapshot
        .holidays()
        .is_holiday(tobira_firmware::LocalDate::new(2026, 11, 23).unwrap()));
    assert_eq!(snap.bookings.len(), 1);

    // A lost card and a threat level travel as a delta.
    let before = s.store.policy_version().version;
    s.post("/cards/04A0B0C0/lost", json!({})).await;
    s.put_approved(
        &format!("/zones/{machine}/threat"),
        json!({"threat": "high"}),
    )
    .await;
    match s.store.delta_for(cid, before).await.unwrap() {
        DeltaAnswer::Delta(delta) => {
            assert_eq!(delta.cards.len(), 1);
            assert_eq!(delta.cards[0].state, CardState::Lost);
            assert!(delta
                .zone_threats
                .contains(&(z(machine), tobira_firmware::ThreatLevel::High)));
        }
        other => panic!("expected a delta, got {other:?}"),
    }
}

/// A 422 `missing_reference` names the missing row; a 409 `conflict` names the clashing key.
async fn missing_references_and_duplicates_are_told_apart(s: Server) {
    let (site, lobby, machine, door) = s.building().await;
    let pid = s
        .post("/people", json!({"kind": "staff", "name": "A"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let gid = s.post("/groups", json!({"name": "Infra"})).await["id"]
        .as_i64()
        .unwrap();
    let missing = |v: &Value, message: &str| {
        assert_eq!(v["error"], "missing_reference", "{v}");
        assert_eq!(v["message"], message, "{v}");
    };
    let duplicate = |v: &Value, message: &str| {
        assert_eq!(v["error"], "conflict", "{v}");
        assert_eq!(v["message"], message, "{v}");
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    s.post("/cards", json!({"uid": "04A1B2C3", "person_id": pid}))
        .await;
    let v = s
        .expect(
            Method::POST,
            "/cards",
            Some(json!({"uid": "04a1b2c3", "person_id": pid})),
            StatusCode::CONFLICT,
        )
        .await;
    duplicate(&v, "card 04A1B2C3 exists already");
    let v = s
        .expect(
            Method::POST,
            "/cards",
            Some(json!({"uid": "04A1B2C4", "person_id": 99})),
            unprocessable,
        )
        .await;
    missing(&v, "no person 99");

    let v = s
        .expect(
            Method::POST,
            "/zones",
            Some(json!({"site_id": 999, "name": "x", "level": 2})),
            unprocessable,
        )
        .await;
    missing(&v, "no site 999");
    let v = s
        .expect(
            Method::PUT,
            &format!("/zones/{lobby}"),
            Some(json!({"site_id": site, "name": "Lobby", "level": 1, "opening_schedule_id": 999})),
            unprocessable,
        )
        .await;
    missing(&v, "no schedule 999");
    let v = s
        .expect(
            Method::POST,
            "/doors",
            Some(json!({"name": "x", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": 999})),
            unprocessable,
        )
        .await;
    missing(&v, "no zone 999");
    let v = s
        .expect(
            Method::PUT,
            &format!("/doors/{door}"),
            Some(json!({"name": "x", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": machine, "controller_id": 999})),
            unprocessable,
        )
        .await;
    missing(&v, "no controller 999");
    s.expect(
        Method::POST,
        "/controllers",
        Some(json!({"site_id": 999, "name": "x"})),
        unprocessable,
    )
    .await;

    let v = s
        .expect(
            Method::POST,
            "/grants",
            Some(json!({"group_id": 999, "zones": [machine]})),
            unprocessable,
        )
        .await;
    missing(&v, "no group 999");
    let v = s
        .expect(
            Method::POST,
            "/grants",
            Some(json!({"group_id": gid, "zones": [machine, 999]})),
            unprocessable,
        )
        .await;
    missing(&v, "no zone 999");
    let v = s
        .expect(
            Method::POST,
            "/grants",
            Some(json!({"group_id": gid, "zones": [machine], "schedule_id": 999})),
            unprocessable,
        )
        .await;
    missing(&v, "no schedule 999");

    let booking = |person: i64, room: i64, path: Vec<i64>| json!({"person_id": person, "room_zone_id": room, "path": path, "start_at": 1000, "end_at": 3_600_000});
    let v = s
        .expect(
            Method::POST,
            "/bookings",
            Some(booking(99, lobby, vec![])),
            unprocessable,
        )
        .await;
    missing(&v, "no person 99");
    let v = s
        .expect(
            Method::POST,
            "/bookings",
            Some(booking(pid, 999, vec![])),
            unprocessable,
        )
        .await;
    missing(&v, "no zone 999");
    let v = s
        .expect(
            Method::POST,
            "/bookings",
            Some(booking(pid, lobby, vec![999])),
            unprocessable,
        )
        .await;
    missing(&v, "no door 999");

    // Enrollments: a missing person or module is not a taken slot.
    let v = s
        .expect(
            Method::POST,
            "/enrollments",
            Some(json!({"person_id": 99, "module_id": 7, "slot": 3})),
            unprocessable,
        )
        .await;
    missing(&v, "no person 99");
    let v = s
        .expect(
            Method::POST,
            "/enrollments",
            Some(json!({"person_id": pid, "module_id": 55, "slot": 3})),
            unprocessable,
        )
        .await;
    missing(&v, "no module 55: no door's reader has it");
    s.post(
        "/enrollments",
        json!({"person_id": pid, "module_id": 7, "slot": 3}),
    )
    .await;
    let other = s
        .post("/people", json!({"kind": "staff", "name": "B"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let v = s
        .expect(
            Method::POST,
            "/enrollments",
            Some(json!({"person_id": other, "module_id": 7, "slot": 3})),
            StatusCode::CONFLICT,
        )
        .await;
    duplicate(&v, &format!("slot 3 of module 7 is taken by person {pid}"));
    let v = s
        .expect(
            Method::POST,
            "/enrollments",
            Some(json!({"person_id": pid, "module_id": 7, "slot": 4})),
            StatusCode::CONFLICT,
        )
        .await;
    duplicate(
        &v,
        &format!("person {pid} is enrolled on module 7 already, in slot 3"),
    );
}

/// Ingested events keep the names they happened with beside the current ones
/// and name their warnings; their alarms say door, person, card and reason.
async fn events_and_alarms_carry_names_warnings_and_context(s: Server) {
    use tobira_firmware::{
        AccessRecord, Chain, ControllerId, DoorId, EventKind, PersonId, Reason, Side, Timestamp,
        Warnings,
    };
    let (site, lobby, machine, door) = s.building().await;
    let pid = s
        .post("/people", json!({"kind": "staff", "name": "佐藤 花子"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let controller = s
        .post("/controllers", json!({"site_id": site, "name": "1F"}))
        .await["controller"]["id"]
        .as_i64()
        .unwrap();
    let cid = ControllerId(u32::try_from(controller).unwrap());
    let door_id = DoorId(u32::try_from(door).unwrap());
    // The door is the controller's and the card is hers: a genuine upload.
    s.put(
        &format!("/doors/{door}"),
        json!({"name": "MR door", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": machine,
               "controller_id": controller, "entry_reader": {"biometric": 7}, "exit_reader": {}}),
    )
    .await;
    s.post("/cards", json!({"uid": "04A1B2C3", "person_id": pid}))
        .await;
    let access = |reason: Reason, side: Side, warnings: Warnings| {
        EventKind::Access(AccessRecord {
            door: door_id,
            side,
            level: Some(tobira_firmware::SecurityLevel::L4),
            reason,
            person: Some(PersonId(u32::try_from(pid).unwrap())),
            card: "04A1B2C3".parse().ok(),
            escort: None,
            warnings,
        })
    };
    let mut chain = Chain::genesis(cid);
    let t0 = 1_795_392_720_000_i64;
    let batch: Vec<_> = [
        access(Reason::Granted, Side::Entry, Warnings::PASSBACK),
        access(Reason::Granted, Side::Exit, Warnings::EXIT_WITHOUT_ENTRY),
        access(Reason::CardLost, Side::Entry, Warnings::default()),
        EventKind::DoorForced { door: door_id },
    ]
    .into_iter()
    .enumerate()
    .map(|(i, kind)| chain.seal(Timestamp(t0 + i as i64 * 1000), kind).unwrap())
    .collect();
    s.store
        .ingest(cid, tobira_firmware::ChainEpoch::FIRST, &batch)
        .await
        .unwrap();

    // Rename the person and the door after the events.
    s.put(
        &format!("/people/{pid}"),
        json!({"kind": "staff", "name": "鈴木 花子"}),
    )
    .await;
    s.put(
        &format!("/doors/{door}"),
        json!({"name": "Server room door", "kind": "door", "outside_zone_id": lobby, "inside_zone_id": machine,
               "entry_reader": {"biometric": 7}, "exit_reader": {}}),
    )
    .await;

    let events = s.get("/events?order=asc").await;
    let e = &events["items"][0];
    assert_eq!(e["person_name_at_event"], "佐藤 花子", "{e}");
    assert_eq!(e["person_name"], "鈴木 花子", "{e}");
    assert_eq!(e["door_name_at_event"], "MR door", "{e}");
    assert_eq!(e["door_name"], "Server room door", "{e}");
    assert_eq!(e["warnings"], json!(["passback"]), "{e}");
    assert_eq!(e["outcome"], "granted", "{e}");
    assert_eq!(
        events["items"][1]["warnings"],
        json!(["exit_without_entry"])
    );
    assert_eq!(events["items"][2]["warnings"], json!([]));
    assert_eq!(events["items"][2]["outcome"], "denied");

    let csv = s
        .http
        .get(format!("{}/events.csv?utc_offset_minutes=0", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rows =
        csv::ReaderBuilder::new().from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(&records[0][col("person_name_at_event")], "佐藤 花子");
    assert_eq!(&records[0][col("person_name")], "鈴木 花子");
    assert_eq!(&records[0][col("door_name_at_event")], "MR door");
    assert_eq!(&records[0][col("door_name")], "Server room door");
    assert_eq!(&records[0][col("warnings")], "passback");
    assert_eq!(&records[1][col("warnings")], "exit_without_entry");
    assert_eq!(&records[2][col("outcome")], "denied");

    let alarms = s.get("/alarms").await;
    let items = alarms["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{alarms}");
    let forced = &items[0];
    assert_eq!(forced["reason"], "door_forced", "{forced}");
    assert_eq!(forced["door_id"], door);
    assert_eq!(forced["door_name"], "MR door");
    assert_eq!(forced["controller_id"], controller);
    assert_eq!(forced["event_seq"], 4);
    let lost = &items[1];
    assert_eq!(lost["reason"], "card_lost", "{lost}");
    assert_eq!(lost["person_id"], pid);
    assert_eq!(lost["person_name"], "佐藤 花子");
    assert_eq!(lost["card"], "04A1B2C3");
    assert_eq!(lost["door_name"], "MR door");
    let message = lost["message"].as_str().unwrap();
    for part in ["card_lost", "MR door", "04A1B2C3", "佐藤 花子"] {
        assert!(message.contains(part), "{message}");
    }
    assert!(!message.starts_with("event "), "{message}");
}

async fn checkpoints_are_signed_by_admins_listed_in_pages_and_verified_by_reviewers(s: Server) {
    s.building().await;
    let reviewer = s.token(Role::Security).await;
    let operator = s.token(Role::Operator).await;
    let (status, v) = s
        .call_as(Some(&operator), Method::POST, "/checkpoints", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let run = s.post("/checkpoints", json!({})).await;
    let made = run["made"].as_array().unwrap();
    assert_eq!(made.len(), 1, "{run}");
    assert_eq!(made[0]["chain"], "admin_audit");
    // The signature is the central key's over the documented text.
    let claim = tobira_protocol::CheckpointClaim {
        chain: "admin_audit".into(),
        count: made[0]["count"].as_u64().unwrap(),
        head: made[0]["head"].as_str().unwrap().into(),
        at: made[0]["at"].as_i64().unwrap(),
    };
    s.signer
        .public_key()
        .verify_checkpoint(&claim, made[0]["signature"].as_str().unwrap())
        .unwrap();
    // Nothing moved: nothing new to sign.
    assert_eq!(s.post("/checkpoints", json!({})).await["made"], json!([]));
    s.post("/sites", json!({"name": "Annex"})).await;
    s.post("/checkpoints", json!({})).await;

    let (status, first) = s
        .call_as(Some(&reviewer), Method::GET, "/checkpoints?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let next = first["next"].as_str().unwrap();
    let second = s.get(&format!("/checkpoints?limit=1&cursor={next}")).await;
    assert!(second["items"][0]["id"].as_i64() > first["items"][0]["id"].as_i64());
    assert_eq!(second["next"], Value::Null);
    s.expect(
        Method::GET,
        "/checkpoints?cursor=x",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let (status, v) = s
        .call_as(Some(&reviewer), Method::GET, "/verify", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["chains"][0]["chain"], "admin_audit");
    assert_eq!(
        v["chains"][0]["reaches_checkpoint"],
        second["items"][0]["id"]
    );
    let (status, _) = s.call_as(None, Method::GET, "/verify", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Sends a request head that announces a 4 MiB body and never sends it; the
/// answer must come from the head alone (the role is checked before the body).
async fn head_only(addr: &str, method: &str, path: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 4194304\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        // The status line and headers are enough.
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    };
    let waited = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
    assert!(
        waited.is_ok(),
        "{method} {path}: no answer within 5 s while the body is outstanding (the server waits for the body)"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

async fn state_changes_check_the_role_before_reading_the_body(s: Server) {
    let security = s.token(Role::Security).await;
    let operator = s.token(Role::Operator).await;
    let addr = s
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .to_string();
    // Every state-changing operation the OpenAPI document lists.
    let doc = s.get("/openapi.json").await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method == "get" {
                continue;
            }
            // Path parameters filled with values that parse (a UID, a date, ids).
            let concrete = path
                .replace("{uid}", "04a1b2c3d4e5f6")
                .replace("{date}", "2026-01-01")
                .split('/')
                .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            // The security reviewer signs off the monthly review: an
            // operator is the role refused there.
            let token = if path.ends_with("/sign-off") {
                &operator
            } else {
                &security
            };
            let answer = head_only(&addr, &method.to_uppercase(), &concrete, token).await;
            assert!(
                answer.starts_with("HTTP/1.1 403"),
                "{method} {path}: {answer}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked}");
}

async fn answers_say_nosniff_and_no_store(s: Server) {
    let root = s.base.trim_end_matches("/api/v1").to_string();
    let security = s.token(Role::Security).await;
    for (method, url, token, status) in [
        (
            Method::GET,
            format!("{}/sites", s.base),
            Some(s.admin.clone()),
            200,
        ),
        (Method::GET, format!("{}/openapi.json", s.base), None, 200),
        (Method::GET, format!("{}/sites", s.base), None, 401),
        (
            Method::POST,
            format!("{}/sites", s.base),
            Some(security),
            403,
        ),
        (
            Method::GET,
            format!("{}/sites/999", s.base),
            Some(s.admin.clone()),
            404,
        ),
        (
            Method::GET,
            format!("{}/events.csv", s.base),
            Some(s.admin.clone()),
            200,
        ),
        (Method::GET, format!("{}/nowhere", s.base), None, 404),
        (Method::GET, format!("{root}/sync/v1/snapshot"), None, 401),
        (Method::POST, format!("{root}/sync/v1/events"), None, 401),
    ] {
        let mut req = s.http.request(method.clone(), &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.json(&json!({"name": "x"})).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {url}");
        let h = resp.headers();
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{method} {url}"
        );
        assert_eq!(
            h.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{method} {url}"
        );
    }
}

async fn names_refuse_bidi_overrides_and_invisible_characters(s: Server) {
    for (bad, code) in [
        ("Main\u{202e}llah", "U+202E"),
        ("Main\u{200b}hall", "U+200B"),
        ("Main\u{2066}hall", "U+2066"),
        ("Main\u{2028}hall", "U+2028"),
        ("\u{feff}Main hall", "U+FEFF"),
        ("Main\u{00ad}hall", "U+00AD"),
        ("Main\u{0085}hall", "U+0085"),
        ("Main\u{e0041}hall", "U+E0041"),
    ] {
        let v = s
            .expect(
                Method::POST,
                "/sites",
                Some(json!({"name": bad})),
                StatusCode::BAD_REQUEST,
            )
            .await;
        let message = v["message"].as_str().unwrap();
        assert!(
            message.contains("name") && message.contains(code),
            "{code}: {message}"
        );
    }
    let v = s
        .expect(
            Method::POST,
            "/people",
            Some(json!({"kind": "staff", "name": "山田 太郎", "organisation": "Fin\u{200f}ance"})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("organisation") && message.contains("U+200F"),
        "{message}"
    );
    // Ordinary names, Japanese included, still pass.
    s.post("/sites", json!({"name": "市役所 本館 (Main hall)"}))
        .await;
}

/// The audit entries with `action`, newest first.
async fn audited(s: &Server, action: &str) -> Vec<Value> {
    let page = s.get("/audit?limit=500").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

async fn reads_of_personal_data_are_audited(s: Server) {
    let person = s
        .post("/people", json!({"kind": "staff", "name": "山田 太郎"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let security = s.token(Role::Security).await;
    let reader = |path: String| {
        let req = s
            .http
            .get(format!("{}{path}", s.base))
            .bearer_auth(&security);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            resp.text().await.unwrap()
        }
    };
    reader(format!("/events?person={person}&limit=5")).await;
    reader(format!("/events.csv?person={person}")).await;
    reader("/occupancy".into()).await;
    reader(format!("/people/{person}")).await;
    reader("/people?kind=staff".into()).await;
    let search = audited(&s, "events.search").await;
    assert_eq!(search.len(), 1, "{search:?}");
    assert_eq!(search[0]["actor"], "token:security");
    let detail: Value = serde_json::from_str(search[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["query"], format!("person={person}&limit=5"));
    assert_eq!(detail["rows"], 0);
    // The export is recorded when its stream ends; poll with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let export = loop {
        let found = audited(&s, "events.export").await;
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(export.len(), 1, "{export:?}");
    let detail: Value = serde_json::from_str(export[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["query"], format!("person={person}"));
    assert_eq!(detail["rows"], 0);
    assert_eq!(audited(&s, "occupancy.read").await.len(), 1);
    let person_read = audited(&s, "person.read").await;
    assert_eq!(person_read.len(), 1);
    assert_eq!(person_read[0]["target"], format!("person:{person}"));
    let people = audited(&s, "people.list").await;
    assert_eq!(people.len(), 1);
    let detail: Value = serde_json::from_str(people[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["rows"], 1);
    assert_eq!(detail["query"], "kind=staff");
    // Reading the audit log itself is not a read of personal data.
    assert!(audited(&s, "audit.read").await.is_empty());
}

/// Seeds the city hall of the store suite and its machine room's day: Sato
/// escorts Yamada in and leaves after 25 minutes; Yamada stays; before, Yamada
/// was refused alone. Returns the escorted entry's time.
async fn machine_room_day(s: &Server) -> i64 {
    use tobira_firmware::{
        AccessRecord, Chain, ChainEpoch, DoorId, EventKind, PersonId, Reason, SecurityLevel, Side,
        Timestamp, Warnings,
    };
    support::seed(&s.store).await;
    let access = |side, person: i64, reason, escort: Option<i64>| {
        EventKind::Access(AccessRecord {
            door: DoorId(support::MACHINE_DOOR as u32),
            side,
            level: Some(SecurityLevel::L4),
            reason,
            person: Some(PersonId(person as u32)),
            card: support::uid_of(person).parse().ok(),
            escort: escort.map(|e| PersonId(e as u32)),
            warnings: Warnings::default(),
        })
    };
    let t = tobira_web::store::now_ms() - 3_600_000;
    let mut chain = Chain::genesis(support::C1);
    let batch: Vec<_> = [
        (
            t - 60_000,
            access(Side::Entry, support::YAMADA, Reason::EscortMissing, None),
        ),
        (t, access(Side::Entry, support::SATO, Reason::Granted, None)),
        (
            t,
            access(
                Side::Entry,
                support::YAMADA,
                Reason::GrantedWithEscort,
                Some(support::SATO),
            ),
        ),
        (
            t + 25 * 60_000,
            access(Side::Exit, support::SATO, Reason::Granted, None),
        ),
    ]
    .into_iter()
    .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
    .collect();
    s.store
        .ingest(support::C1, ChainEpoch::FIRST, &batch)
        .await
        .unwrap();
    t
}

async fn the_history_pairs_entries_and_exits_as_json_and_excel_csv(s: Server) {
    let t = machine_room_day(&s).await;
    // Default: every level-4 zone, the last 30 days.
    let h = s.get("/history").await;
    assert_eq!(h["zone_ids"], json!([support::MACHINE]));
    let visits = h["visits"]["items"].as_array().unwrap();
    assert_eq!(visits.len(), 2, "{h}");
    let yamada = visits
        .iter()
        .find(|v| v["person_id"] == support::YAMADA)
        .unwrap();
    assert_eq!(yamada["entered_at"], t);
    assert_eq!(yamada["still_inside"], true);
    assert_eq!(yamada["left_at"], Value::Null);
    assert_eq!(yamada["companion_role"], "escort");
    assert_eq!(yamada["companion_name"], "Sato");
    assert_eq!(yamada["person_kind"], "visitor");
    let sato = visits
        .iter()
        .find(|v| v["person_id"] == support::SATO)
        .unwrap();
    assert_eq!(sato["duration_ms"], 25 * 60_000);
    assert_eq!(sato["exit_door_name"], "Machine room");
    assert_eq!(sato["companion_role"], "partner");
    let denied = h["denied"]["items"].as_array().unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["reason"], "escort_missing");
    // Paging by cursor, one visit a page.
    let first = s.get("/history?limit=1").await;
    let next = first["visits"]["next"].as_str().unwrap().to_string();
    let second = s.get(&format!("/history?limit=1&cursor={next}")).await;
    assert_eq!(second["visits"]["items"].as_array().unwrap().len(), 1);
    assert_ne!(first["visits"]["items"][0], second["visits"]["items"][0]);
    assert_eq!(second["visits"]["next"], Value::Null);
    // Filters.
    let only = s.get(&format!("/history?person={}", support::SATO)).await;
    assert_eq!(only["visits"]["items"].as_array().unwrap().len(), 1);
    assert!(only["denied"]["items"].as_array().unwrap().is_empty());
    let refused = s.get("/history?outcome=denied").await;
    assert!(refused["visits"]["items"].as_array().unwrap().is_empty());
    assert_eq!(refused["denied"]["items"].as_array().unwrap().len(), 1);
    let office = s.get(&format!("/history?zone={}", support::OFFICE)).await;
    assert!(office["visits"]["items"].as_array().unwrap().is_empty());

    // Bad input is a 400 with a reason, never a crash.
    for bad in [
        "/history?from=yesterday",
        "/history?from=2026-01-01",
        "/history?from=20&to=10",
        "/history?from=0&to=99999999999",
        "/history?zone=0",
        "/history?level=9",
        "/history?card=xyz",
        "/history?outcome=maybe",
        "/history?cursor=!!",
        "/history.csv?to=-5",
        "/history.csv?utc_offset_minutes=5000",
    ] {
        let (status, body) = s.call(Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "bad_request", "{bad}: {body}");
    }

    // CSV for Excel: BOM, CRLF, a header row, every field quoted.
    let resp = s
        .http
        .get(format!("{}/history.csv?utc_offset_minutes=540", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "a UTF-8 BOM");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
    assert_eq!(
        lines[0],
        [
            "record",
            "zone_id",
            "zone_name",
            "person_id",
            "person_name",
            "person_kind",
            "card",
            "entered_at",
            "entry_door_id",
            "entry_door_name",
            "left_at",
            "exit_door_id",
            "exit_door_name",
            "still_inside",
            "minutes_inside",
            "companion_role",
            "companion_id",
            "companion_name",
            "level",
            "reason",
            "entered_at_ms",
            "left_at_ms",
        ]
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",")
    );
    assert_eq!(
        lines.len(),
        5,
        "header, two visits, one denial, the end: {lines:?}"
    );
    let yamada_line = lines
        .iter()
        .find(|l| l.contains("\"Yamada\",\"visitor\""))
        .unwrap();
    assert!(
        yamada_line.starts_with("\"visit\",\"12\",\"Machine room\",\"101\""),
        "{yamada_line}"
    );
    assert!(
        yamada_line.contains("+09:00\""),
        "local times: {yamada_line}"
    );
    assert!(
        yamada_line.contains("\"yes\",\"\",\"escort\",\"100\",\"Sato\""),
        "{yamada_line}"
    );
    let sato_line = lines
        .iter()
        .find(|l| l.contains("\"Sato\",\"staff\""))
        .unwrap();
    assert!(
        sato_line.contains("\"no\",\"25\""),
        "25 minutes inside: {sato_line}"
    );
    assert!(lines[3].starts_with("\"denied\"") && lines[3].contains("escort_missing"));
    assert_eq!(audited(&s, "history.read").await.len(), 6);
    assert_eq!(audited(&s, "history.export").await.len(), 1);

    // Who is inside every tracked zone, with the visitor's escort.
    let inside = s.get("/inside").await;
    let machine = inside
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone_id"] == support::MACHINE)
        .unwrap();
    assert_eq!(machine["people"][0]["person_id"], support::YAMADA);
    assert_eq!(machine["people"][0]["escort_id"], support::SATO);
    assert_eq!(machine["people"][0]["escort_name"], "Sato");
    assert_eq!(audited(&s, "who_is_inside.read").await.len(), 1);
}

/// A threat level change waits for a second admin: listed, not in effect,
/// refused to its requester and to a non-admin, decided once only; a refusal
/// needs a comment.
async fn four_eyes_threat_changes_wait_for_a_second_admin(s: Server) {
    let site = s.post("/sites", json!({"name": "Annex"})).await["id"]
        .as_i64()
        .unwrap();
    let pending = s
        .expect(
            Method::PUT,
            &format!("/sites/{site}/threat"),
            Some(json!({"threat": "high"})),
            StatusCode::ACCEPTED,
        )
        .await;
    let id = pending["id"].as_i64().unwrap();
    assert_eq!(pending["change"]["kind"], "site_threat");
    assert_eq!(pending["change"]["threat"], "high");
    assert_eq!(pending["target"], format!("site:{site}"));
    assert_eq!(s.get(&format!("/sites/{site}")).await["threat"], "normal");
    let listed = s.get("/approvals").await;
    assert_eq!(listed["items"][0]["id"], id);
    assert_eq!(s.get(&format!("/approvals/{id}")).await["state"], "pending");
    // Asking for the level the site has is no change: answered at once.
    let same = s
        .put(
            &format!("/sites/{site}/threat"),
            json!({"threat": "normal"}),
        )
        .await;
    assert_eq!(same["threat"], "normal");

    let own = s
        .expect(
            Method::POST,
            &format!("/approvals/{id}/approve"),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(own["message"].as_str().unwrap().contains("second"), "{own}");
    let operator = s.token(Role::Operator).await;
    let (st, _) = s
        .call_as(
            Some(&operator),
            Method::POST,
            &format!("/approvals/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, seen) = s
        .call_as(
            Some(&operator),
            Method::GET,
            &format!("/approvals/{id}"),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "anyone who reads sees the change: {seen}"
    );

    let second = s
        .store
        .create_token("test", "second-admin", Role::Admin, 1)
        .await
        .unwrap();
    for blank in [json!({"comment": ""}), json!({"comment": "   "}), json!({})] {
        let (st, v) = s
            .call_as(
                Some(&second),
                Method::POST,
                &format!("/approvals/{id}/refuse"),
                Some(blank.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{blank}: {v}");
    }
    let (st, refused) = s
        .call_as(
            Some(&second),
            Method::POST,
            &format!("/approvals/{id}/refuse"),
            Some(json!({"comment": "not during opening hours"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{refused}");
    assert_eq!(refused["state"], "refused");
    assert_eq!(refused["decided_by"], "token:second-admin");
    assert_eq!(s.get(&format!("/sites/{site}")).await["threat"], "normal");
    let (st, _) = s
        .call_as(
            Some(&second),
            Method::POST,
            &format!("/approvals/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "a decided change stays decided");
    assert!(s.get("/approvals").await["items"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        s.get("/approvals?state=refused").await["items"][0]["id"],
        id
    );
    s.expect(
        Method::GET,
        "/approvals/999999",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    s.expect(
        Method::GET,
        "/approvals?state=maybe",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Approved by the second admin, it is in effect.
    let zone = s
        .put_approved(
            &format!("/sites/{site}/threat"),
            json!({"threat": "elevated"}),
        )
        .await;
    assert_eq!(zone["threat"], "elevated");
    assert_eq!(s.get(&format!("/sites/{site}")).await["threat"], "elevated");
    let audit = s.get("/audit?limit=20").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "approval.request",
        "approval.refuse",
        "approval.approve",
        "site.threat",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

/// The seqs of a page of `GET /api/v1/audit{query}`.
async fn audit_seqs(s: &Server, query: &str) -> (Vec<i64>, Value) {
    let page = s.get(&format!("/audit{query}")).await;
    let seqs = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    (seqs, page["next"].clone())
}

async fn the_audit_log_is_searched_by_actor_action_target_words_and_period(s: Server) {
    let sato = s
        .post("/people", json!({"kind": "staff", "name": "佐藤 一郎"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let kato = s
        .post("/people", json!({"kind": "visitor", "name": "加藤 次郎"}))
        .await["id"]
        .as_i64()
        .unwrap();
    s.put(
        &format!("/people/{sato}"),
        json!({"kind": "staff", "name": "佐藤 一朗"}),
    )
    .await;
    let security = s.token(Role::Security).await;
    let (status, _) = s
        .call_as(
            Some(&security),
            Method::GET,
            &format!("/people/{kato}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let all = s.get("/audit?limit=500").await;
    let seq_of = |action: &str, target: &str| {
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["target"] == target)
            .map(|e| e["seq"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let (created_sato, created_kato) = (
        seq_of("person.create", &format!("person:{sato}")),
        seq_of("person.create", &format!("person:{kato}")),
    );
    let updated = seq_of("person.update", &format!("person:{sato}"));
    let read = seq_of("person.read", &format!("person:{kato}"));
    assert_eq!((created_sato.len(), updated.len(), read.len()), (1, 1, 1));
    // An action prefix ends with a dot; an exact name does not.
    let (prefix, _) = audit_seqs(&s, "?action=person.").await;
    assert_eq!(
        prefix,
        vec![read[0], updated[0], created_kato[0], created_sato[0]]
    );
    let (exact, _) = audit_seqs(&s, "?action=person.read").await;
    assert_eq!(exact, read);
    let (target, _) = audit_seqs(&s, &format!("?target=person:{sato}")).await;
    assert_eq!(target, vec![updated[0], created_sato[0]]);
    let (actor, _) = audit_seqs(&s, "?actor=token:security").await;
    assert_eq!(actor, read);
    // Words in the detail: the new name is only in the update.
    let (words, _) = audit_seqs(&s, &format!("?text={}", "一朗")).await;
    assert_eq!(words, updated);
    let (one, _) = audit_seqs(&s, &format!("?seq={}", updated[0])).await;
    assert_eq!(one, updated);
    // A period long past finds nothing; one up to the far future, all.
    let (past, _) = audit_seqs(&s, "?from=0&to=1000").await;
    assert!(past.is_empty());
    let (future, _) = audit_seqs(&s, "?action=person.&from=1000&to=253402300799999").await;
    assert_eq!(future.len(), 4);
    // Filtered pages go on by seq, the filter kept.
    let (first, next) = audit_seqs(&s, "?action=person.&limit=3").await;
    assert_eq!(first, prefix[..3].to_vec());
    let cursor = next.as_str().unwrap().to_string();
    let (second, next) = audit_seqs(&s, &format!("?action=person.&limit=3&cursor={cursor}")).await;
    assert_eq!(second, prefix[3..].to_vec());
    assert!(next.is_null());
    // Bad filters are refused with a clear message.
    for (query, says) in [
        ("?from=5000&to=5000", "period"),
        ("?seq=0", "seq"),
        ("?from=yesterday", "from"),
        (&*format!("?text={}", "x".repeat(201)), "text"),
    ] {
        let v = s
            .expect(
                Method::GET,
                &format!("/audit{query}"),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert!(
            v["message"].as_str().unwrap().contains(says),
            "{query}: {v}"
        );
    }
}

/// The monthly review and re-certification endpoints: a bad month is a 400,
/// only the security reviewer or an admin signs off (with a comment, once,
/// after the month), only facilities or admins re-certify.
async fn monthly_reviews_are_prepared_signed_off_once_and_zones_recertified(s: Server) {
    support::seed(&s.store).await;
    let list = s.get("/reviews").await;
    let month = list["default_month"].as_str().unwrap().to_string();
    assert_eq!(list["months"].as_array().unwrap().len(), 13);
    assert_eq!(list["months"][1]["month"], month.as_str());
    assert_eq!(list["months"][1]["ended"], true);
    assert_eq!(list["months"][0]["ended"], false);
    let review = s.get(&format!("/reviews/{month}")).await;
    assert_eq!(review["zone_ids"], json!([support::MACHINE]));
    assert_eq!(review["scope"], "level4");
    for section in [
        "entries",
        "denied",
        "doors",
        "out_of_hours",
        "access_changes",
    ] {
        assert!(review["counts"][section].is_i64(), "{section}: {review}");
    }
    for bad in ["2026-13", "26-01", "2026-1", "latest"] {
        s.expect(
            Method::GET,
            &format!("/reviews/{bad}"),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let path = format!("/reviews/{month}/sign-off");
    let facilities = s.token(Role::Facilities).await;
    let operator = s.token(Role::Operator).await;
    let security = s.token(Role::Security).await;
    for token in [&facilities, &operator] {
        let (status, _) = s
            .call_as(
                Some(token),
                Method::POST,
                &path,
                Some(json!({"comment": "ok"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = s
        .call_as(
            Some(&security),
            Method::POST,
            &path,
            Some(json!({"comment": "  "})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let current = list["months"][0]["month"].as_str().unwrap();
    let (status, _) = s
        .call_as(
            Some(&security),
            Method::POST,
            &format!("/reviews/{current}/sign-off"),
            Some(json!({"comment": "too early"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, signed) = s
        .call_as(
            Some(&security),
            Method::POST,
            &path,
            Some(json!({"comment": "checked"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{signed}");
    assert_eq!(signed["signed_by"], "token:security");
    assert_eq!(signed["comment"], "checked");
    assert_eq!(signed["counts"], review["counts"]);
    s.expect(
        Method::POST,
        &path,
        Some(json!({"comment": "again"})),
        StatusCode::CONFLICT,
    )
    .await;
    s.expect(
        Method::POST,
        "/reviews/2026-13/sign-off",
        Some(json!({"comment": "x"})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let list = s.get("/reviews").await;
    assert_eq!(list["sign_offs"][0]["month"], month.as_str());
    assert_eq!(list["months"][1]["sign_off"]["comment"], "checked");

    // Who can enter the machine room (the default zone), and a pass over it.
    let access = s.get("/reviews/access").await;
    assert_eq!(access["zone_id"], support::MACHINE);
    assert_eq!(access["people"][0]["person_id"], support::SATO);
    assert_eq!(access["people"][0]["routes"][0]["kind"], "group");
    assert_eq!(
        access["people"][0]["routes"][0]["other_zones"][0]["name"],
        "Office"
    );
    s.expect(
        Method::GET,
        "/reviews/access?zone=999",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    s.expect(
        Method::GET,
        "/reviews/access?zone=x",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let pass = json!({"zone_id": support::MACHINE, "revoke": [support::SATO], "comment": "moved"});
    let (status, _) = s
        .call_as(
            Some(&security),
            Method::POST,
            "/recertifications",
            Some(pass.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.expect(
        Method::POST,
        "/recertifications",
        Some(json!({"zone_id": support::MACHINE, "revoke": [support::ONO]})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let (status, done) = s
        .call_as(
            Some(&facilities),
            Method::POST,
            "/recertifications",
            Some(pass),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(
        (done["confirmed"].as_i64(), done["revoked"].as_i64()),
        (Some(0), Some(1))
    );
    let access = s
        .get(&format!("/reviews/access?zone={}", support::MACHINE))
        .await;
    assert_eq!(access["people"], json!([]));
    let listed = s.get("/recertifications").await;
    assert_eq!(listed[0]["id"], done["id"]);
    assert_eq!(listed[0]["people"][0]["decision"], "revoke");
}

/// Fetches a CSV download and checks the Excel conventions: a BOM, CRLF
/// only, quoted fields; answers its lines.
async fn excel_csv_lines(s: &Server, path: &str) -> Vec<String> {
    let resp = s
        .http
        .get(format!("{}{path}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let bytes = resp.bytes().await.unwrap();
    assert!(
        bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "{path}: a UTF-8 BOM"
    );
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.ends_with("\r\n"), "{path}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "{path}: CRLF only"
    );
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

async fn reports_answer_json_and_excel_csv_and_refuse_bad_periods(s: Server) {
    machine_room_day(&s).await;
    // Unused for 90 days (default): Ono's card, never used.
    let unused = s.get("/reports/unused-cards").await;
    assert_eq!(unused["days"], 90);
    let cards = unused["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{unused}");
    assert_eq!(cards[0]["card"], support::uid_of(support::ONO));
    assert_eq!(cards[0]["last_used_at"], Value::Null);
    // Denials in the last 30 days (default).
    let denials = s.get("/reports/denials").await;
    let rows = denials["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{denials}");
    assert_eq!(rows[0]["reason"], "escort_missing");
    assert_eq!(rows[0]["count"], 1);
    assert_eq!(rows[0]["person_name"], "Yamada");
    assert_eq!(denials["period"]["time_zone"], "Asia/Tokyo");
    assert!(s.get("/reports/door-alarms").await["doors"]
        .as_array()
        .unwrap()
        .is_empty());
    let rooms = s
        .get("/reports/room-utilisation?from=2026-11-02&to=2026-11-15")
        .await;
    assert_eq!(rooms["weeks"], json!(["2026-W45", "2026-W46"]));
    assert_eq!(rooms["period"]["from_date"], "2026-11-02");
    let busiest = s.get("/reports/busiest-doors").await;
    assert_eq!(busiest["doors"][0]["door_id"], support::MACHINE_DOOR);
    assert_eq!(busiest["doors"][0]["total"], 2, "{busiest}");
    assert_eq!(busiest["doors"][0]["hours"].as_array().unwrap().len(), 24);

    // Each CSV: its header, then its rows.
    let mut busiest_header = vec!["door_id", "door_name", "total"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    busiest_header.extend((0..24).map(|h| format!("h{h:02}")));
    for (path, header, rows) in [
        (
            "/reports/unused-cards.csv?days=90",
            vec![
                "card",
                "person_id",
                "person_name",
                "issued_at",
                "last_used_at",
                "never_used",
            ],
            1,
        ),
        (
            "/reports/denials.csv",
            vec![
                "card",
                "person_id",
                "person_name",
                "door_id",
                "door_name",
                "reason",
                "count",
                "last_at",
            ],
            1,
        ),
        (
            "/reports/door-alarms.csv",
            vec![
                "door_id",
                "door_name",
                "zone_id",
                "zone_name",
                "forced",
                "held_open",
                "last_at",
            ],
            0,
        ),
        (
            "/reports/room-utilisation.csv",
            vec![
                "zone_id",
                "zone_name",
                "week",
                "booked_hours",
                "used_hours",
                "booked_minutes",
            ],
            0,
        ),
    ] {
        let lines = excel_csv_lines(&s, path).await;
        let quoted: Vec<String> = header.iter().map(|h| format!("\"{h}\"")).collect();
        assert_eq!(lines[0], quoted.join(","), "{path}");
        assert_eq!(lines.len(), 1 + rows, "{path}: {lines:?}");
    }
    let lines = excel_csv_lines(&s, "/reports/busiest-doors.csv").await;
    let quoted: Vec<String> = busiest_header.iter().map(|h| format!("\"{h}\"")).collect();
    assert_eq!(lines[0], quoted.join(","));
    assert!(
        lines[1].starts_with(&format!(
            "\"{}\",\"Machine room\",\"2\"",
            support::MACHINE_DOOR
        )),
        "{lines:?}"
    );
    let unused = excel_csv_lines(&s, "/reports/unused-cards.csv").await;
    assert!(
        unused[1].contains("\"Ono\"") && unused[1].ends_with("\"\",\"yes\""),
        "{unused:?}"
    );

    // Bad parameters: a 400 that says why.
    for (bad, why) in [
        ("/reports/denials?from=yesterday", "YYYY-MM-DD"),
        ("/reports/denials?to=2026-02-30", "YYYY-MM-DD"),
        (
            "/reports/door-alarms?from=2026-11-10&to=2026-11-09",
            "after",
        ),
        (
            "/reports/busiest-doors?from=2025-01-01&to=2026-01-02",
            "366",
        ),
        (
            "/reports/room-utilisation.csv?from=2026-11-10&to=2026-11-01",
            "after",
        ),
        ("/reports/unused-cards?days=0", "days"),
        ("/reports/unused-cards?days=3651", "days"),
        ("/reports/unused-cards.csv?days=-1", "days"),
        ("/reports/unused-cards?days=many", "days"),
        // A blank date is not "today": the API documents a date (schemathesis
        // found `to=` accepted).
        ("/reports/busiest-doors?to=", "not blank"),
        ("/reports/denials.csv?from=%20", "not blank"),
    ] {
        let (status, body) = s.call(Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "bad_request", "{bad}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{bad}: {body}"
        );
    }
    assert_eq!(audited(&s, "report.read").await.len(), 5);
    assert_eq!(audited(&s, "report.export").await.len(), 6);
}
