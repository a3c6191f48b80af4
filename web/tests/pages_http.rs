//! The web admin pages over real HTTP (no browser): login, sessions, the
//! CSRF guard on every page form, throttling, expiry, headers, language.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use tobira_protocol::PolicySigner;
use tobira_web::store::auth::Role;
use tobira_web::store::sessions::SessionPolicy;
use tobira_web::ui::{Clock, UiOptions, CONTENT_SECURITY_POLICY};
use tobira_web::{AppState, Store};

const PASSWORD: &str = "Kasumigaseki-Blue-Heron-42";
const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

struct Pages {
    base: String,
    store: Store,
    clock: Arc<AtomicI64>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Pages {
    let (store, dir) = support::sqlite().await;
    let clock = Arc::new(AtomicI64::new(T0));
    let state = AppState::new(store.clone(), Arc::new(PolicySigner::generate()));
    let ui = UiOptions {
        sessions: SessionPolicy::default(),
        tls: false,
        clock: Clock::Manual(clock.clone()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            tobira_web::server::router_with_ui(state, ui)
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    support::seed(&store).await;
    let booking: tobira_web::store::resources::access::BookingInput = serde_json::from_value(
        serde_json::json!({"person_id": 101, "room_zone_id": 13, "path": [22], "start_at": T0, "end_at": T0 + 3_600_000}),
    )
    .unwrap();
    store.create_booking("seed", &booking).await.unwrap();
    // An alarm about a moment (no door to stay open): the console's forms act on it.
    sqlx::query("INSERT INTO alarms (at, kind, controller_id, message, priority) VALUES ($1, 'access:card_lost', 1, 'card 04A00065 reported lost, tried at the lobby', 2)")
        .bind(T0)
        .execute(store.pool())
        .await
        .unwrap();
    // Two changes waiting for a second admin, asked for by someone else:
    // change 1 (the site's threat level) and change 2 (the machine room's).
    for change in [
        serde_json::json!({"kind": "site_threat", "site_id": 1, "threat": "high"}),
        serde_json::json!({"kind": "zone_threat", "zone_id": 12, "threat": "high"}),
    ] {
        store
            .request_change("seed", &serde_json::from_value(change).unwrap())
            .await
            .unwrap();
    }
    for (name, role) in [
        ("tanaka", Role::Facilities),
        ("kenji", Role::Security),
        ("aiko", Role::Admin),
    ] {
        store
            .create_user("cli", name, PASSWORD, role)
            .await
            .unwrap();
    }
    Pages {
        base: format!("http://{addr}"),
        store,
        clock,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _dir: dir,
    }
}

/// A logged-in browser: its session cookie and the CSRF token of its forms.
struct Browser {
    cookie: String,
    csrf: String,
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("tobira_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

fn hidden_csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_string()
}

impl Pages {
    fn own_origin(&self) -> &str {
        &self.base
    }

    async fn login_form(
        &self,
        username: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/login", self.base))
            .header(ORIGIN, self.own_origin())
            .form(&[
                ("username", username),
                ("password", password),
                ("next", "/"),
            ]);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    async fn login(&self, username: &str) -> Browser {
        let response = self.login_form(username, PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = session_cookie(response.headers()).expect("a session cookie");
        let page = self.get("/", Some(&cookie)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = hidden_csrf(&page.text().await.unwrap());
        Browser { cookie, csrf }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    async fn post(
        &self,
        path: &str,
        cookie: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .form(form);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send().await.unwrap()
    }

    async fn audit_len(&self) -> usize {
        self.store.audit_entries(None, 100_000).await.unwrap().len()
    }

    async fn logged_in(&self, browser: &Browser) -> bool {
        self.get("/", Some(&browser.cookie)).await.status() == StatusCode::OK
    }

    async fn password_is(&self, user: &str, password: &str) -> bool {
        self.store
            .verify_user(user, password)
            .await
            .unwrap()
            .is_some()
    }
}

/// A route pattern with the seeded city hall's rows put in for `{key}`.
fn concrete(pattern: &str) -> String {
    let key = match pattern.split('/').nth(1).unwrap_or("") {
        "sites" => "1".to_string(),
        "zones" => "13".into(),
        "schedules" => "40".into(),
        "doors" => "22".into(),
        "controllers" => "2".into(),
        "people" => "102".into(),
        "enrollments" => "9-1".into(),
        "cards" => support::uid_of(102),
        "groups" => "32".into(),
        "grants" => "52".into(),
        "bookings" => "1".into(),
        _ => String::new(),
    };
    // Refusing takes the second seeded change (the first is approved).
    if pattern == "/approvals/{id}/refuse" {
        return pattern.replace("{id}", "2");
    }
    // Users: tanaka, the first one created; changes: the first seeded.
    pattern
        .replace("{key}", &key)
        .replace("{id}", "1")
        .replace("{month}", &last_month())
}

/// A valid form for each page POST route, token included.
fn valid_form<'a>(path: &str, csrf: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut form = match path {
        "/login" => return vec![("username", "tanaka"), ("password", PASSWORD)],
        "/logout" => vec![],
        "/account/password" => vec![
            ("current", PASSWORD),
            ("new", "Another-Long-Passphrase-77"),
            ("repeat", "Another-Long-Passphrase-77"),
        ],
        p if p.ends_with("/delete") && !p.contains("holidays") => vec![("confirm", "on")],
        "/sites/new" | "/sites/{key}" => {
            vec![("name", "Annex building"), ("time_zone", "Asia/Tokyo")]
        }
        "/sites/{key}/holidays" => vec![("date", "2027-01-01"), ("name", "元日")],
        "/sites/{key}/holidays/delete" => vec![("date", "2026-11-23")],
        "/zones/new" | "/zones/{key}" => {
            vec![("site_id", "1"), ("name", "Store room"), ("level", "2")]
        }
        "/schedules/new" | "/schedules/{key}" => vec![
            ("name", "weekend"),
            ("windows.0.days", "32"),
            ("windows.0.start", "09:00"),
            ("windows.0.end", "12:00"),
        ],
        "/doors/new" | "/doors/{key}" => vec![
            ("name", "Back door"),
            ("kind", "door"),
            ("outside_zone_id", "10"),
            ("inside_zone_id", "13"),
            ("entry_reader.present", "on"),
        ],
        "/controllers/new" => vec![("site_id", "1"), ("name", "3F")],
        "/controllers/{key}/disabled" => vec![("disabled", "on")],
        "/sites/{key}/threat" | "/zones/{key}/threat" => vec![("threat", "elevated")],
        "/people/new" | "/people/{key}" => vec![("name", "Kato"), ("kind", "contractor")],
        "/enrollments/new" => vec![("person_id", "101"), ("module_id", "7"), ("slot", "9")],
        "/cards/new" => vec![("uid", "04 B0 00 01"), ("person_id", "101")],
        "/cards/{key}" => vec![("valid_until", "2030-01-01T00:00")],
        "/cards/{key}/action" => vec![("action", "suspend"), ("note", "test"), ("confirm", "on")],
        "/groups/new" | "/groups/{key}" => vec![("name", "cleaners")],
        "/groups/{key}/members" | "/groups/{key}/members/remove" => vec![("person_id", "100")],
        "/grants/new" | "/grants/{key}" => vec![("group_id", "32"), ("zones", "13")],
        "/bookings/new" | "/bookings/{key}" => vec![
            ("person_id", "101"),
            ("room_zone_id", "13"),
            ("start_at", "2027-02-01T10:00"),
            ("end_at", "2027-02-01T11:00"),
        ],
        "/users/new" => vec![
            ("username", "suzuki"),
            ("role", "operator"),
            ("password", "Another-Long-Passphrase-77"),
            ("repeat", "Another-Long-Passphrase-77"),
        ],
        "/users/{id}/role" => vec![("role", "security")],
        "/users/{id}/disabled" => vec![("disabled", "1"), ("confirm", "1")],
        "/users/{id}/password" => vec![
            ("new", "Another-Long-Passphrase-77"),
            ("repeat", "Another-Long-Passphrase-77"),
        ],
        "/import/preview" => vec![("file", IMPORT_CSV)],
        "/alarms/{id}/ack" | "/alarms/{id}/clear" => vec![("comment", "checked on site")],
        "/import/apply" => vec![("file", IMPORT_CSV)],
        "/inside/muster/mark" => vec![("zone_id", "12"), ("person_id", "100")],
        "/inside/muster/new" => vec![("zone_id", "12"), ("confirm", "1")],
        "/approvals/{id}/approve" => vec![("confirm", "1")],
        "/approvals/{id}/refuse" => vec![("comment", "not during opening hours")],
        "/lockdown" => vec![
            ("scope", "zone:12"),
            ("reason", "door forced"),
            ("confirm", "1"),
        ],
        "/lockdown/{id}/release" => vec![("comment", "intruder caught"), ("confirm", "1")],
        "/audit/verify" => vec![],
        "/reviews/{month}/sign-off" => vec![("comment", "entries and denials checked")],
        "/reviews/access" => vec![("zone", "12"), ("decision-100", "confirm"), ("comment", "")],
        other => panic!("the test has no form for the page POST route {other}; add one"),
    };
    form.push(("csrf", csrf));
    form
}

#[tokio::test]
async fn every_page_form_refuses_a_missing_or_wrong_token_and_changes_nothing() {
    let pages = start().await;
    let browser = pages.login("kenji").await;
    let posts = tobira_web::ui::page_post_paths();
    assert!(posts.iter().any(|p| p == "/account/password") && posts.iter().any(|p| p == "/logout"));
    assert!(
        posts.len() > 30,
        "the resource forms are in the list: {posts:?}"
    );
    for pattern in posts.iter().filter(|p| *p != "/login") {
        let form = valid_form(pattern, &browser.csrf);
        let path = &concrete(pattern);
        let without: Vec<_> = form.iter().filter(|(k, _)| *k != "csrf").cloned().collect();
        let wrong: Vec<_> = form
            .iter()
            .map(|(k, v)| {
                if *k == "csrf" {
                    (*k, "0".repeat(64).leak() as &str)
                } else {
                    (*k, *v)
                }
            })
            .collect();
        for (what, form) in [("without a token", without), ("with a wrong token", wrong)] {
            let before = pages.audit_len().await;
            let response = pages
                .post(path, &browser.cookie, Some(pages.own_origin()), &form)
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {what}");
            let headers = response.headers().clone();
            assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert!(response.text().await.unwrap().contains("フォームは無効"));
            assert_eq!(
                pages.audit_len().await,
                before,
                "{path} {what} changed nothing"
            );
            assert!(pages.logged_in(&browser).await, "{path} {what}");
            assert!(pages.password_is("kenji", PASSWORD).await, "{path} {what}");
        }
    }
}

#[tokio::test]
async fn every_page_form_from_another_origin_is_refused() {
    let pages = start().await;
    let browser = pages.login("kenji").await;
    for pattern in tobira_web::ui::page_post_paths() {
        let form = valid_form(&pattern, &browser.csrf);
        let path = &concrete(&pattern);
        for origin in ["http://evil.example", "null"] {
            let before = pages.audit_len().await;
            let response = pages.post(path, &browser.cookie, Some(origin), &form).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} from {origin}"
            );
            assert_eq!(pages.audit_len().await, before, "{path} from {origin}");
        }
        // Without Origin, a foreign Referer is refused the same way.
        let response = pages
            .http
            .post(format!("{}{path}", pages.base))
            .header(COOKIE, &browser.cookie)
            .header("referer", "http://evil.example/form.html")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} by Referer"
        );
    }
    assert!(pages.logged_in(&browser).await);
    assert!(pages.password_is("kenji", PASSWORD).await);
    // The same forms with the token and from this site go through.
    let response = pages
        .post(
            "/account/password",
            &browser.cookie,
            Some(pages.own_origin()),
            &valid_form("/account/password", &browser.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        pages
            .password_is("kenji", "Another-Long-Passphrase-77")
            .await
    );
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_the_name_kept() {
    let pages = start().await;
    let response = pages.login_form("tanaka", "nope", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(response.headers()).is_none());
    let html = response.text().await.unwrap();
    assert!(
        html.contains("ユーザー名またはパスワードが違います"),
        "{html}"
    );
    assert!(html.contains("value=\"tanaka\""), "{html}");
    assert!(!html.contains("nope"), "the password is never shown again");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_same_site_strict_and_rotated_at_login() {
    let pages = start().await;
    let response = pages.login_form("tanaka", PASSWORD, None).await;
    let set: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(
        set[0].contains("; HttpOnly")
            && set[0].contains("; SameSite=Strict")
            && set[0].contains("; Path=/"),
        "{}",
        set[0]
    );
    assert!(!set[0].contains("Secure"), "plain HTTP in this test");
    let first = session_cookie(response.headers()).unwrap();
    // Logging in again with that cookie gives a new id and ends the old one.
    let again = pages.login_form("tanaka", PASSWORD, Some(&first)).await;
    let second = session_cookie(again.headers()).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        pages.get("/", Some(&first)).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(pages.get("/", Some(&second)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_page_without_a_session_sends_to_the_login_and_back_after() {
    let pages = start().await;
    let response = pages.get("/account/password", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/login?next=/account/password"
    );
    let login = pages
        .http
        .post(format!("{}/login", pages.base))
        .form(&[
            ("username", "tanaka"),
            ("password", PASSWORD),
            ("next", "/account/password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()[LOCATION], "/account/password");
    // Only paths on this site are followed.
    let login = pages
        .http
        .post(format!("{}/login", pages.base))
        .form(&[
            ("username", "tanaka"),
            ("password", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()[LOCATION], "/");
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let pages = start().await;
    let browser = pages.login("tanaka").await;
    let response = pages
        .post(
            "/logout",
            &browser.cookie,
            Some(pages.own_origin()),
            &[("csrf", &browser.csrf)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?out=1");
    assert!(response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie, kept by a careless or hostile browser, opens nothing.
    let again = pages.get("/", Some(&browser.cookie)).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()[LOCATION], "/login?next=/");
}

#[tokio::test]
async fn sessions_expire_when_idle_and_after_twelve_hours() {
    let pages = start().await;
    let browser = pages.login("tanaka").await;
    pages.clock.fetch_add(29 * MIN, Ordering::SeqCst);
    assert!(pages.logged_in(&browser).await);
    pages.clock.fetch_add(30 * MIN, Ordering::SeqCst);
    let response = pages.get("/", Some(&browser.cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=/&expired=1");
    let login = pages.get("/login?next=/&expired=1", None).await;
    assert!(login
        .text()
        .await
        .unwrap()
        .contains("セッションが終了しました"));
    // A busy session ends 12 hours after login all the same.
    let busy = pages.login("tanaka").await;
    for _ in 0..(12 * 60 / 20 - 1) {
        pages.clock.fetch_add(20 * MIN, Ordering::SeqCst);
        assert!(pages.logged_in(&busy).await);
    }
    pages.clock.fetch_add(20 * MIN, Ordering::SeqCst);
    assert!(!pages.logged_in(&busy).await);
}

#[tokio::test]
async fn repeated_failures_make_logins_wait_with_a_clear_message() {
    let pages = start().await;
    for _ in 0..5 {
        assert_eq!(
            pages.login_form("tanaka", "wrong", None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = pages.login_form("tanaka", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(session_cookie(response.headers()).is_none());
    let html = response.text().await.unwrap();
    // T0 + 1 s in the site's zone (Asia/Tokyo with no site yet).
    assert!(html.contains("しばらくログインできません"), "{html}");
    assert!(html.contains("2027-01-15 17:00:01 JST"), "{html}");
    pages.clock.fetch_add(1000, Ordering::SeqCst);
    assert_eq!(
        pages.login_form("tanaka", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn every_page_sends_the_security_headers() {
    let pages = start().await;
    let browser = pages.login("tanaka").await;
    let mut answers = vec![
        ("/login", pages.get("/login", None).await),
        ("/ (no session)", pages.get("/", None).await),
        ("/lang/en", pages.get("/lang/en?next=/", None).await),
        ("/lang/xx", pages.get("/lang/xx", None).await),
        (
            "/login POST",
            pages.login_form("tanaka", "wrong", None).await,
        ),
    ];
    for path in ["/", "/account/password"] {
        answers.push((path, pages.get(path, Some(&browser.cookie)).await));
    }
    for (what, response) in &answers {
        let h = response.headers();
        assert_eq!(
            h["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{what}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
    }
    // The stylesheet the pages link to is cached for long: its URL holds its hash.
    let html = pages
        .get("/", Some(&browser.cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script") && !html.contains("style=\""),
        "no inline script or style"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from another origin"
    );
    let at = html.find("/assets/tobira-").unwrap();
    let href = &html[at..at + html[at..].find('"').unwrap()];
    let css = pages.get(href, None).await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let etag = css.headers()["etag"].clone();
    let again = pages
        .http
        .get(format!("{}{href}", pages.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        pages.get("/assets/other.css", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pages_speak_japanese_unless_english_is_asked_for_or_chosen() {
    let pages = start().await;
    let ja = pages.get("/login", None).await.text().await.unwrap();
    assert!(ja.contains("<html lang=\"ja\">") && ja.contains("ユーザー名"));
    let en = pages
        .http
        .get(format!("{}/login", pages.base))
        .header(ACCEPT_LANGUAGE, "en-US,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("User name"));
    let switch = pages.get("/lang/en?next=/login", None).await;
    assert_eq!(switch.status(), StatusCode::SEE_OTHER);
    assert_eq!(switch.headers()[LOCATION], "/login");
    let lang = switch.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(lang.starts_with("tobira_lang=en;"), "{lang}");
    let remembered = pages
        .get("/login", Some(lang.split(';').next().unwrap()))
        .await
        .text()
        .await
        .unwrap();
    assert!(remembered.contains("User name"));
}

#[tokio::test]
async fn a_security_reviewer_sees_their_role_and_the_api_ignores_session_cookies() {
    let pages = start().await;
    let browser = pages.login("kenji").await;
    let html = pages
        .get("/", Some(&browser.cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("kenji") && html.contains("セキュリティ監査者（閲覧のみ）"),
        "{html}"
    );
    // The JSON API takes Bearer tokens only: a session cookie opens nothing there.
    let api = pages.get("/api/v1/zones", Some(&browser.cookie)).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

impl Pages {
    async fn page_as(&self, browser: &Browser, path: &str, lang: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &browser.cookie)
            .header(ACCEPT_LANGUAGE, lang)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn submit(
        &self,
        browser: &Browser,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let mut form = form.to_vec();
        form.push(("csrf", &browser.csrf));
        let response = self
            .post(path, &browser.cookie, Some(self.own_origin()), &form)
            .await;
        let status = response.status();
        let to = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, to, response.text().await.unwrap())
    }
}

/// Every visible input and select has a label: one that names its id, or
/// one around it.
fn every_field_has_a_label(html: &str, path: &str) {
    for opener in ["<input ", "<select "] {
        for (at, _) in html.match_indices(opener) {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            if tag.contains("type=\"hidden\"") {
                continue;
            }
            match tag.split("id=\"").nth(1).and_then(|r| r.split('"').next()) {
                Some(id) => assert!(
                    html.contains(&format!("for=\"{id}\"")),
                    "{path}: {tag} has no label"
                ),
                None => {
                    let before = &html[..at];
                    let open = before.rfind("<label").unwrap_or(0);
                    let close = before.rfind("</label>").unwrap_or(0);
                    assert!(open > close, "{path}: {tag} has no label");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_page_shows_in_both_languages_with_every_text_translated() {
    let pages = start().await;
    for user in ["tanaka", "kenji", "aiko"] {
        let browser = pages.login(user).await;
        let paths = tobira_web::ui::page_get_paths();
        assert!(paths.len() > 30, "{paths:?}");
        for pattern in paths.iter().filter(|p| *p != "/login") {
            let path = concrete(pattern);
            for lang in ["ja", "en"] {
                let (status, html) = pages.page_as(&browser, &path, lang).await;
                let not_for_the_role = (user != "aiko" && path.starts_with("/users"))
                    || (user == "kenji" && (path.ends_with("/new") || path == "/import"))
                    || (user == "tanaka" && path == "/controllers/new");
                let expected = if not_for_the_role {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::OK
                };
                assert_eq!(status, expected, "{user} {path} {lang}");
                if status == StatusCode::OK {
                    every_field_has_a_label(&html, &path);
                }
                assert!(
                    !html.contains("??"),
                    "{user} {path} {lang} has a text missing from the catalog"
                );
                assert!(
                    html.contains(&format!("<html lang=\"{lang}\"")),
                    "{path} {lang}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_zone_form_shows_each_error_beside_its_field_and_keeps_what_was_typed() {
    let pages = start().await;
    let browser = pages.login("tanaka").await;
    let (status, _, html) = pages
        .submit(
            &browser,
            "/zones/new",
            &[("name", "書庫"), ("level", "2"), ("site_id", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"f-site_id-error\""), "{html}");
    assert!(html.contains("入力してください"), "{html}");
    assert!(html.contains("value=\"書庫\""), "what was typed is kept");
    // Settings of its own, with a value out of range: the error is on that field.
    let (status, _, html) = pages
        .submit(
            &browser,
            "/zones/new",
            &[
                ("name", "書庫"),
                ("level", "2"),
                ("site_id", "1"),
                ("custom_settings", "on"),
                ("settings.anti_passback", "off"),
                ("settings.escort_window_ms", "5"),
                ("settings.dual_custody_window_ms", "60000"),
                ("settings.biometric_timeout_ms", "10000"),
                ("settings.kinds.staff", "alone"),
                ("settings.kinds.contractor", "alone"),
                ("settings.kinds.visitor", "escorted"),
                ("settings.kinds.citizen", "refused"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("id=\"f-settings-escort_window_ms-error\""),
        "{html}"
    );
    assert!(
        pages
            .store
            .list_zones(None, Some(100), None)
            .await
            .unwrap()
            .items
            .len()
            == 4
    );
    // Right, it is added with its level's defaults and the page says so.
    let (status, to, _) = pages
        .submit(
            &browser,
            "/zones/new",
            &[("name", "書庫"), ("level", "2"), ("site_id", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id: i64 = to
        .trim_start_matches("/zones/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let zone = pages
        .store
        .zone(tobira_web::store::resources::Id::new(id).unwrap())
        .await
        .unwrap();
    assert_eq!(zone.name, "書庫");
    let (_, html) = pages.page_as(&browser, &to, "ja").await;
    assert!(html.contains("保存しました"));
}

#[tokio::test]
async fn deleting_a_zone_still_in_use_explains_what_uses_it_and_keeps_it() {
    let pages = start().await;
    let browser = pages.login("tanaka").await;
    let (_, html) = pages.page_as(&browser, "/zones/11", "en").await;
    assert!(
        html.contains("Office gate") && html.contains("Machine room"),
        "the page lists the doors: {html}"
    );
    let (status, _, html) = pages.submit(&browser, "/zones/11/delete", &[]).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no confirmation, no deletion"
    );
    assert!(html.contains("削除することを確認"));
    let (status, _, html) = pages
        .submit(&browser, "/zones/11/delete", &[("confirm", "on")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains("まだ参照されている") && html.contains("Office gate"),
        "{html}"
    );
    assert!(pages
        .store
        .zone(tobira_web::store::resources::Id::new(11).unwrap())
        .await
        .is_ok());
    // A zone nothing refers to goes.
    let (status, to, _) = pages
        .submit(
            &browser,
            "/zones/new",
            &[("name", "空き部屋"), ("level", "1"), ("site_id", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let path = to.split('?').next().unwrap().to_string();
    let (status, to, _) = pages
        .submit(&browser, &format!("{path}/delete"), &[("confirm", "on")])
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/zones?deleted=1")
    );
    assert_eq!(
        pages.get(&path, Some(&browser.cookie)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_card_reported_lost_on_its_page_stops_with_the_reason_recorded() {
    let pages = start().await;
    let browser = pages.login("tanaka").await;
    let uid = support::uid_of(100);
    let (_, html) = pages
        .page_as(&browser, &format!("/cards/{uid}"), "ja")
        .await;
    assert!(
        html.contains("value=\"report_lost\"") && !html.contains("value=\"reactivate\""),
        "{html}"
    );
    // Without a reason or the confirmation nothing happens.
    for form in [
        vec![("action", "report_lost"), ("confirm", "on")],
        vec![("action", "report_lost"), ("note", "受付で届出")],
    ] {
        let (status, _, _) = pages
            .submit(&browser, &format!("/cards/{uid}/action"), &form)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let uid_value = tobira_web::store::resources::Uid::parse(&uid).unwrap();
    assert_eq!(
        pages.store.card(&uid_value).await.unwrap().state.as_str(),
        "active"
    );
    let (status, to, _) = pages
        .submit(
            &browser,
            &format!("/cards/{uid}/action"),
            &[
                ("action", "report_lost"),
                ("note", "受付で 9:12 に届出"),
                ("confirm", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let detail = pages.store.card_detail(&uid_value).await.unwrap();
    assert_eq!(detail.state.as_str(), "lost");
    assert_eq!(
        detail.history.last().unwrap().note.as_deref(),
        Some("受付で 9:12 に届出")
    );
    let (_, html) = pages.page_as(&browser, &to, "ja").await;
    assert!(html.contains("class=\"card-state\">紛失"), "{html}");
    assert!(html.contains("value=\"reactivate\""));
}

#[tokio::test]
async fn a_security_reviewer_sees_no_edit_controls_and_a_forged_post_is_refused() {
    let pages = start().await;
    let browser = pages.login("kenji").await;
    for path in [
        "/zones",
        "/zones/11",
        "/cards",
        &format!("/cards/{}", support::uid_of(100)),
        "/people/100",
        "/groups/30",
        "/sites/1",
    ] {
        let (status, html) = pages.page_as(&browser, path, "en").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !html.contains("method=\"post\" action=\"/zones") && !html.contains("/new\""),
            "{path}: {html}"
        );
        let posts = html.matches("method=\"post\"").count();
        assert_eq!(posts, 1, "{path}: only the logout form");
    }
    for pattern in tobira_web::ui::page_post_paths() {
        if ["/login", "/logout", "/account/password"].contains(&pattern.as_str()) {
            continue;
        }
        // Signing off the monthly review is the security reviewer's own
        // action (the review pages' test checks who may), and so is running
        // the chain check (every reader may; the audit test covers it).
        if pattern == "/reviews/{month}/sign-off" || pattern == "/audit/verify" {
            continue;
        }
        let before = pages.audit_len().await;
        let form = valid_form(&pattern, &browser.csrf);
        let response = pages
            .post(
                &concrete(&pattern),
                &browser.cookie,
                Some(pages.own_origin()),
                &form,
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{pattern}");
        assert_eq!(pages.audit_len().await, before, "{pattern} changed nothing");
    }
}

#[tokio::test]
async fn every_page_form_with_its_token_does_what_it_says() {
    let pages = start().await;
    let facilities = pages.login("tanaka").await;
    let admin = pages.login("aiko").await;
    // Deletions last, so that every other form still finds its row, and in
    // the reverse order (a grant before its group, which takes it along).
    let (mut deletes, mut patterns): (Vec<String>, Vec<String>) = tobira_web::ui::page_post_paths()
        .into_iter()
        .partition(|p| p.ends_with("/delete") && !p.contains("holidays"));
    deletes.reverse();
    patterns.extend(deletes);
    for pattern in patterns {
        // The user and import forms have tests of their own (their guard
        // rails and the multipart upload).
        if ["/login", "/logout", "/account/password"].contains(&pattern.as_str())
            || pattern.starts_with("/users")
            || pattern.starts_with("/import")
        {
            continue;
        }
        // The chain check answers its result page (200): tested on its own.
        if pattern == "/audit/verify" {
            continue;
        }
        let browser = if pattern.starts_with("/controllers")
            || pattern.ends_with("/threat")
            || pattern.starts_with("/alarms")
            || pattern.starts_with("/approvals")
            || pattern.starts_with("/lockdown")
            || pattern.starts_with("/reviews")
        {
            &admin
        } else {
            &facilities
        };
        let before = pages.audit_len().await;
        let form: Vec<(&str, &str)> = valid_form(&pattern, &browser.csrf)
            .into_iter()
            .filter(|(k, _)| *k != "csrf")
            .collect();
        let (status, _, html) = pages.submit(browser, &concrete(&pattern), &form).await;
        if status == StatusCode::CONFLICT {
            // The seeded row is still in use: refused with the reason, unchanged.
            assert!(
                pattern.ends_with("/delete") && html.contains("まだ参照されている"),
                "{pattern}: {html}"
            );
            assert_eq!(pages.audit_len().await, before, "{pattern}");
            continue;
        }
        assert!(
            status == StatusCode::SEE_OTHER || status == StatusCode::CREATED,
            "{pattern}: {status} {html}"
        );
        assert!(
            pages.audit_len().await > before,
            "{pattern} is in the audit log"
        );
    }
}

#[tokio::test]
async fn lists_filter_search_sort_and_page() {
    let pages = start().await;
    let browser = pages.login("kenji").await;
    let (_, html) = pages.page_as(&browser, "/people?kind=visitor", "en").await;
    assert!(html.contains("Yamada") && !html.contains("Sato"), "{html}");
    let (_, html) = pages.page_as(&browser, "/people?q=on", "en").await;
    assert!(html.contains("Ono") && !html.contains("Yamada"), "{html}");
    let (_, html) = pages
        .page_as(&browser, "/people?sort=name&dir=desc", "en")
        .await;
    let (y, s) = (html.find("Yamada").unwrap(), html.find("Sato").unwrap());
    assert!(y < s, "descending by name");
    assert!(html.contains("aria-sort=\"descending\""));
    for n in 0..60 {
        let input: tobira_web::store::resources::people::PersonInput = serde_json::from_value(
            serde_json::json!({"kind": "citizen", "name": format!("市民 {n:02}")}),
        )
        .unwrap();
        pages.store.create_person("seed", &input).await.unwrap();
    }
    let (_, html) = pages
        .page_as(&browser, "/people?kind=citizen&sort=name", "en")
        .await;
    assert!(
        html.contains("1–50 / 60") && html.contains("rel=\"next\""),
        "{html}"
    );
    assert!(html.contains("市民 00") && !html.contains("市民 59"));
    let (_, html) = pages
        .page_as(
            &browser,
            "/people?kind=citizen&sort=name&dir=asc&page=2",
            "en",
        )
        .await;
    assert!(
        html.contains("51–60 / 60") && html.contains("市民 59") && !html.contains("市民 00"),
        "{html}"
    );
    // A card is found by the start of its UID, typed as a reader shows it.
    let (_, html) = pages.page_as(&browser, "/cards?q=04a0%3A0065", "en").await;
    assert!(
        html.contains("04A00065") && !html.contains("04A00064"),
        "{html}"
    );
    assert!(html.contains("1–1 / 1"), "{html}");
    let (_, html) = pages.page_as(&browser, "/cards?q=04A0", "en").await;
    assert!(html.contains("1–3 / 3"), "{html}");
    let (_, html) = pages.page_as(&browser, "/cards?q=Sato", "en").await;
    assert!(html.contains("0–0 / 0"), "not hex, no card: {html}");
    // Unknown sort columns and filter values are ignored, never put in SQL.
    let (status, _) = pages
        .page_as(&browser, "/people?sort=name;DROP&kind=x'--&page=-4", "en")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn threat_levels_and_controllers_are_for_admins_only() {
    let pages = start().await;
    let facilities = pages.login("tanaka").await;
    let (_, html) = pages.page_as(&facilities, "/sites/1", "en").await;
    assert!(
        html.contains("Threat level") && !html.contains("action=\"/sites/1/threat\""),
        "{html}"
    );
    let (_, html) = pages.page_as(&facilities, "/controllers/1", "en").await;
    assert!(!html.contains("/disabled\""), "{html}");
    for (path, form) in [
        ("/sites/1/threat", vec![("threat", "lockdown")]),
        ("/zones/12/threat", vec![("threat", "lockdown")]),
        (
            "/controllers/new",
            vec![("site_id", "1"), ("name", "rogue")],
        ),
        ("/controllers/1/disabled", vec![("disabled", "on")]),
    ] {
        let before = pages.audit_len().await;
        let (status, _, _) = pages.submit(&facilities, path, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(pages.audit_len().await, before, "{path}");
    }
    let admin = pages.login("aiko").await;
    let (_, html) = pages.page_as(&admin, "/zones/12", "en").await;
    assert!(html.contains("action=\"/zones/12/threat\""));
    // A threat level change waits for a second admin, on its own page.
    let (status, to, _) = pages
        .submit(&admin, "/zones/12/threat", &[("threat", "lockdown")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        to.starts_with("/approvals/") && to.ends_with("?done=requested"),
        "{to}"
    );
    let zone_threat = || async {
        pages
            .store
            .zone(tobira_web::store::resources::Id::new(12).unwrap())
            .await
            .unwrap()
            .settings
            .threat
    };
    assert_eq!(zone_threat().await.as_str(), "normal");
    let (_, html) = pages.page_as(&admin, &to, "en").await;
    assert!(html.contains("Waiting for a second admin"), "{html}");
    assert!(
        html.contains("Threat level of zone Machine room (level 4): Normal → Lockdown"),
        "{html}"
    );
    assert!(
        !html.contains("/approve\""),
        "no approve button for the requester: {html}"
    );
    let change = to.trim_end_matches("?done=requested");
    let (status, _, _) = pages
        .submit(&admin, &format!("{change}/approve"), &[("confirm", "1")])
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the requester cannot approve"
    );
    assert_eq!(zone_threat().await.as_str(), "normal");
    let second = with_admin(&pages).await;
    let (status, _, _) = pages
        .submit(&second, &format!("{change}/approve"), &[("confirm", "1")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(zone_threat().await.as_str(), "lockdown");
    let (status, _, _) = pages
        .submit(&admin, "/zones/12/threat", &[("threat", "apocalypse")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Registering shows the secret once; the controller's page never again.
    let (status, _, html) = pages
        .submit(
            &admin,
            "/controllers/new",
            &[("site_id", "1"), ("name", "3F")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret_at = html.find("class=\"secret\">").unwrap() + 15;
    let secret = &html[secret_at..secret_at + 64];
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    let (_, page) = pages.page_as(&admin, "/controllers/3", "en").await;
    assert!(!page.contains(secret));
}

// ---- User administration (admins only) ----

const ADMIN: &str = "yamada";

async fn with_admin(pages: &Pages) -> Browser {
    pages
        .store
        .create_user("cli", ADMIN, PASSWORD, Role::Admin)
        .await
        .unwrap();
    pages.login(ADMIN).await
}

async fn id_of(pages: &Pages, name: &str) -> i64 {
    pages
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == name)
        .unwrap()
        .id
}

async fn page_text(pages: &Pages, path: &str, browser: &Browser) -> (StatusCode, String) {
    let response = pages.get(path, Some(&browser.cookie)).await;
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn an_admin_creates_a_user_who_can_then_log_in() {
    let pages = start().await;
    let admin = with_admin(&pages).await;
    let (status, html) = page_text(&pages, "/users", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("href=\"/users\""),
        "the menu shows Users to an admin"
    );
    assert!(
        html.contains("tanaka") && html.contains("施設管理者"),
        "{html}"
    );
    let (status, html) = page_text(&pages, "/users/new", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<label for=\"username\">"));
    // Field errors next to the field; the typed name and role kept, never the password.
    let response = pages
        .post(
            "/users/new",
            &admin.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", &admin.csrf),
                ("username", "suzuki"),
                ("role", "operator"),
                ("password", "Another-Long-Passphrase-77"),
                ("repeat", "Another-Long-Passphrase-78"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"password-error\""), "{html}");
    assert!(html.contains("パスワードが確認欄と一致しません"), "{html}");
    assert!(html.contains("value=\"suzuki\""), "{html}");
    assert!(html.contains("value=\"operator\" selected"), "{html}");
    assert!(!html.contains("Another-Long-Passphrase"), "{html}");
    let response = pages
        .post(
            "/users/new",
            &admin.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", &admin.csrf),
                ("username", "tanaka"),
                ("role", "operator"),
                ("password", "Another-Long-Passphrase-77"),
                ("repeat", "Another-Long-Passphrase-77"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("この名前のユーザーは既にいます"));
    let response = pages
        .post(
            "/users/new",
            &admin.cookie,
            Some(pages.own_origin()),
            &valid_form("/users/new", &admin.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = id_of(&pages, "suzuki").await;
    assert_eq!(
        response.headers()[LOCATION],
        format!("/users/{id}?done=created").as_str()
    );
    let (status, html) = page_text(&pages, &format!("/users/{id}?done=created"), &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("ユーザーを追加しました") && html.contains("オペレーター"));
    let login = pages
        .login_form("suzuki", "Another-Long-Passphrase-77", None)
        .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        pages.get("/users/9999", Some(&admin.cookie)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        pages.get("/users/abc", Some(&admin.cookie)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn disabling_a_user_ends_their_live_session() {
    let pages = start().await;
    let admin = with_admin(&pages).await;
    let tanaka = pages.login("tanaka").await;
    let id = id_of(&pages, "tanaka").await;
    let path = format!("/users/{id}/disabled");
    // Without the confirmation nothing happens.
    let response = pages
        .post(
            &path,
            &admin.cookie,
            Some(pages.own_origin()),
            &[("csrf", &admin.csrf), ("disabled", "1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("id=\"state-error\""));
    assert!(pages.logged_in(&tanaka).await);
    let (_, html) = page_text(&pages, &format!("/users/{id}"), &admin).await;
    assert!(
        html.contains("セッションはすぐに終了"),
        "the form says so: {html}"
    );
    let response = pages
        .post(
            &path,
            &admin.cookie,
            Some(pages.own_origin()),
            &valid_form("/users/{id}/disabled", &admin.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!pages.logged_in(&tanaka).await, "the session ended at once");
    assert_eq!(
        pages.login_form("tanaka", PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, html) = page_text(&pages, "/users", &admin).await;
    assert!(html.contains("無効"), "{html}");
    let response = pages
        .post(
            &path,
            &admin.cookie,
            Some(pages.own_origin()),
            &[("csrf", &admin.csrf), ("disabled", "0")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        pages.login_form("tanaka", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_role_change_takes_effect_at_the_users_next_request() {
    let pages = start().await;
    let admin = with_admin(&pages).await;
    let tanaka = pages.login("tanaka").await;
    assert_eq!(
        pages.get("/import", Some(&tanaka.cookie)).await.status(),
        StatusCode::OK
    );
    let id = id_of(&pages, "tanaka").await;
    let response = pages
        .post(
            &format!("/users/{id}/role"),
            &admin.cookie,
            Some(pages.own_origin()),
            &valid_form("/users/{id}/role", &admin.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // It waits for a second admin: tanaka keeps the old role until then.
    let change = response.headers()[LOCATION]
        .to_str()
        .unwrap()
        .trim_end_matches("?done=requested")
        .to_string();
    assert_eq!(
        pages.get("/import", Some(&tanaka.cookie)).await.status(),
        StatusCode::OK
    );
    let aiko = pages.login("aiko").await;
    let (status, _, _) = pages
        .submit(&aiko, &format!("{change}/approve"), &[("confirm", "1")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The same session, now a security reviewer.
    assert_eq!(
        pages.get("/import", Some(&tanaka.cookie)).await.status(),
        StatusCode::FORBIDDEN
    );
    let (_, html) = page_text(&pages, "/", &tanaka).await;
    assert!(html.contains("セキュリティ監査者"), "{html}");
    assert!(!html.contains("href=\"/import\""), "{html}");
    // An admin's password reset ends the user's sessions too.
    let response = pages
        .post(
            &format!("/users/{id}/password"),
            &admin.cookie,
            Some(pages.own_origin()),
            &valid_form("/users/{id}/password", &admin.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!pages.logged_in(&tanaka).await);
    assert!(
        pages
            .password_is("tanaka", "Another-Long-Passphrase-77")
            .await
    );
}

#[tokio::test]
async fn a_facilities_user_gets_403_on_every_users_route_and_nothing_changes() {
    let pages = start().await;
    let tanaka = pages.login("tanaka").await;
    let kenji = id_of(&pages, "kenji").await;
    let (_, home) = page_text(&pages, "/", &tanaka).await;
    assert!(!home.contains("href=\"/users\""), "no Users link: {home}");
    for path in ["/users", "/users/new", &format!("/users/{kenji}")] {
        assert_eq!(
            pages.get(path, Some(&tanaka.cookie)).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let users_before = pages.store.list_users().await.unwrap();
    let audit_before = pages.audit_len().await;
    for route in tobira_web::ui::page_post_paths()
        .into_iter()
        .filter(|p| p.starts_with("/users"))
    {
        let path = route.replace("{id}", &kenji.to_string());
        let response = pages
            .post(
                &path,
                &tanaka.cookie,
                Some(pages.own_origin()),
                &valid_form(&route, &tanaka.csrf),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(pages.store.list_users().await.unwrap(), users_before);
    assert_eq!(pages.audit_len().await, audit_before);
    assert!(pages.logged_in(&tanaka).await);
    assert!(pages.password_is("kenji", PASSWORD).await);
}

#[tokio::test]
async fn an_admin_cannot_disable_or_demote_themselves_nor_the_last_admin() {
    let pages = start().await;
    let admin = with_admin(&pages).await;
    let me = id_of(&pages, ADMIN).await;
    let response = pages
        .post(
            &format!("/users/{me}/disabled"),
            &admin.cookie,
            Some(pages.own_origin()),
            &valid_form("/users/{id}/disabled", &admin.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("自分自身に対してこの変更はできません"),
        "{html}"
    );
    let response = pages
        .post(
            &format!("/users/{me}/role"),
            &admin.cookie,
            Some(pages.own_origin()),
            &[("csrf", &admin.csrf), ("role", "facilities")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(pages.logged_in(&admin).await);
    // The last admin, seen from another admin whom this one then disables.
    pages
        .store
        .create_user("cli", "sato", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let sato = pages.login("sato").await;
    let sato_id = id_of(&pages, "sato").await;
    let response = pages
        .post(
            &format!("/users/{sato_id}/disabled"),
            &admin.cookie,
            Some(pages.own_origin()),
            &valid_form("/users/{id}/disabled", &admin.csrf),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!pages.logged_in(&sato).await);
    let user = pages.store.user(me).await.unwrap();
    assert!(user.role == Role::Admin && !user.disabled);
}

// ---- CSV import ----

/// A file with two good lines and one bad one (line 3: an unknown kind).
const IMPORT_CSV: &str = "external_id,name,kind,organisation,card_uid\nE001,佐藤 花子,staff,総務課,04A23B1C\nE002,鈴木 一郎,boss,営業部,\nE003,高橋 次郎,contractor,,0A0B0C0D\n";

/// A multipart field: name, file name (for a file), value.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn multipart(fields: &[Part]) -> (String, Vec<u8>) {
    let boundary = "tobira-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, file_name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Pages {
    async fn post_multipart(
        &self,
        path: &str,
        cookie: &str,
        origin: Option<&str>,
        fields: &[Part<'_>],
    ) -> reqwest::Response {
        let (ctype, body) = multipart(fields);
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .header("content-type", ctype)
            .body(body);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send().await.unwrap()
    }

    async fn people(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM people")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn cards(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM cards")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

/// The value of hidden field `name` (HTML entities the templates write undone).
fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html.find(&needle).expect("the hidden field") + needle.len();
    let rest = &html[at..];
    rest[..rest.find('"').unwrap()]
        .replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#x2f;", "/")
        .replace("&#61;", "=")
}

#[tokio::test]
async fn an_import_preview_shows_the_bad_line_and_creates_nothing_and_apply_creates() {
    let pages = start().await;
    // The seeded city hall is there before the import.
    let (people0, cards0) = (pages.people().await, pages.cards().await);
    let tanaka = pages.login("tanaka").await;
    let (status, html) = page_text(&pages, "/import", &tanaka).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("enctype=\"multipart/form-data\"") && html.contains("<label for=\"file\">")
    );
    assert!(html.contains("href=\"/import\""), "the menu shows Import");
    let response = pages
        .post_multipart(
            "/import/preview",
            &tanaka.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", None, tanaka.csrf.as_bytes()),
                ("file", Some("people.csv"), IMPORT_CSV.as_bytes()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("取り込み内容の確認"), "{html}");
    assert!(
        html.contains("<tr><td>3</td><td>E002</td><td class=\"reason\">kind（区分）が"),
        "the bad line with its number and why: {html}"
    );
    assert!(
        html.contains("<td>E001</td>") && html.contains("04A23B1C"),
        "{html}"
    );
    assert_eq!(
        pages.people().await - people0,
        0,
        "a preview creates nothing"
    );
    let file = hidden(&html, "file");
    let digest = hidden(&html, "sha256");
    // A file changed on the way to the apply is refused, and nothing is imported.
    let response = pages
        .post_multipart(
            "/import/apply",
            &tanaka.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", None, tanaka.csrf.as_bytes()),
                ("sha256", None, digest.as_bytes()),
                ("file", None, format!("{file}AAAA").as_bytes()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("確認したファイルと内容が一致しません"));
    assert_eq!(pages.people().await - people0, 0);
    let response = pages
        .post_multipart(
            "/import/apply",
            &tanaka.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", None, tanaka.csrf.as_bytes()),
                ("sha256", None, digest.as_bytes()),
                ("file", None, file.as_bytes()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("取り込みました"), "{html}");
    assert!(html.contains(&digest));
    assert_eq!(pages.people().await - people0, 2);
    assert_eq!(pages.cards().await - cards0, 2);
    // A file that cannot be read at all is said next to the file input.
    let response = pages
        .post_multipart(
            "/import/preview",
            &tanaka.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", None, tanaka.csrf.as_bytes()),
                ("file", Some("x.csv"), b"who,what\n1,2\n"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("id=\"file-error\""));
}

#[tokio::test]
async fn a_multipart_form_without_the_token_or_from_another_site_is_refused() {
    let pages = start().await;
    // The seeded city hall is there before the import.
    let people0 = pages.people().await;
    let tanaka = pages.login("tanaka").await;
    let wrong = "0".repeat(64);
    for path in ["/import/preview", "/import/apply"] {
        let cases: [(&str, Option<&str>, Vec<Part>); 3] = [
            (
                "without a token",
                Some(pages.own_origin()),
                vec![("file", Some("p.csv"), IMPORT_CSV.as_bytes())],
            ),
            (
                "with a wrong token",
                Some(pages.own_origin()),
                vec![
                    ("csrf", None, wrong.as_bytes()),
                    ("file", Some("p.csv"), IMPORT_CSV.as_bytes()),
                ],
            ),
            (
                "from another site",
                Some("http://evil.example"),
                vec![
                    ("csrf", None, tanaka.csrf.as_bytes()),
                    ("file", Some("p.csv"), IMPORT_CSV.as_bytes()),
                ],
            ),
        ];
        for (what, origin, fields) in cases {
            let before = pages.audit_len().await;
            let response = pages
                .post_multipart(path, &tanaka.cookie, origin, &fields)
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {what}");
            assert_eq!(pages.audit_len().await, before, "{path} {what}");
        }
    }
    // An ordinary form may not send an upload's size.
    let big = "x".repeat(100 * 1024);
    let response = pages
        .post(
            "/account/password",
            &tanaka.cookie,
            Some(pages.own_origin()),
            &[("csrf", &tanaka.csrf), ("current", &big)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(pages.people().await - people0, 0);
}

#[tokio::test]
async fn a_security_reviewer_cannot_import() {
    let pages = start().await;
    // The seeded city hall is there before the import.
    let people0 = pages.people().await;
    let kenji = pages.login("kenji").await;
    assert_eq!(
        pages.get("/import", Some(&kenji.cookie)).await.status(),
        StatusCode::FORBIDDEN
    );
    let (_, home) = page_text(&pages, "/", &kenji).await;
    assert!(!home.contains("href=\"/import\""));
    let response = pages
        .post_multipart(
            "/import/preview",
            &kenji.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", None, kenji.csrf.as_bytes()),
                ("file", Some("p.csv"), IMPORT_CSV.as_bytes()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let file = base64_of(IMPORT_CSV.as_bytes());
    let digest = sha256_of(IMPORT_CSV.as_bytes());
    let response = pages
        .post_multipart(
            "/import/apply",
            &kenji.cookie,
            Some(pages.own_origin()),
            &[
                ("csrf", None, kenji.csrf.as_bytes()),
                ("sha256", None, digest.as_bytes()),
                ("file", None, file.as_bytes()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(pages.people().await - people0, 0);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every `id` of an input or select that is not hidden.
fn field_ids(html: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for tag in ["<input ", "<select "] {
        for (at, _) in html.match_indices(tag) {
            let element = &html[at..at + html[at..].find('>').unwrap()];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let id = element.split("id=\"").nth(1).expect("a field with an id");
            ids.push(id[..id.find('"').unwrap()].to_string());
        }
    }
    ids
}

#[tokio::test]
async fn the_user_and_import_pages_have_every_text_and_a_label_for_every_field() {
    let pages = start().await;
    let admin = with_admin(&pages).await;
    let tanaka = id_of(&pages, "tanaka").await;
    for lang in ["ja", "en"] {
        let mut seen = Vec::new();
        for path in [
            "/users".to_string(),
            "/users/new".to_string(),
            format!("/users/{tanaka}"),
            "/import".to_string(),
        ] {
            let response = pages
                .http
                .get(format!("{}{path}", pages.base))
                .header(COOKIE, &admin.cookie)
                .header(ACCEPT_LANGUAGE, lang)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            seen.push((path, response.text().await.unwrap()));
        }
        let (ctype, body) = multipart(&[
            ("csrf", None, admin.csrf.as_bytes()),
            ("file", Some("p.csv"), IMPORT_CSV.as_bytes()),
        ]);
        let preview = pages
            .http
            .post(format!("{}/import/preview", pages.base))
            .header(COOKIE, &admin.cookie)
            .header(ORIGIN, pages.own_origin())
            .header(ACCEPT_LANGUAGE, lang)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(preview.status(), StatusCode::OK);
        seen.push(("/import/preview".into(), preview.text().await.unwrap()));
        for (path, html) in &seen {
            assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{path}");
            assert!(
                !html.contains("??"),
                "{path} in {lang} lacks a text: {html}"
            );
            for id in field_ids(html) {
                assert!(
                    html.contains(&format!("<label for=\"{id}\">")),
                    "{path}: the field {id} has no label"
                );
            }
        }
    }
}

// ---- The security pages: history, event search, who is inside, muster ----

/// Sato escorts Yamada (a visitor) into the machine room two hours before
/// T0 and leaves; Yamada stays; an earlier attempt of Yamada's alone was refused.
async fn machine_room_events(pages: &Pages) {
    use tobira_firmware::{
        AccessRecord, Chain, ChainEpoch, DoorId, EventKind, PersonId, Reason, SecurityLevel, Side,
        Timestamp, Warnings,
    };
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
    let t = T0 - 120 * MIN;
    let mut chain = Chain::genesis(support::C1);
    let batch: Vec<_> = [
        (
            t - 10 * MIN,
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
            t + 25 * MIN,
            access(Side::Exit, support::SATO, Reason::Granted, None),
        ),
    ]
    .into_iter()
    .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
    .collect();
    pages
        .store
        .ingest_at(support::C1, ChainEpoch::FIRST, &batch, T0)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_security_pages_show_history_events_and_who_is_inside_with_every_text_and_label() {
    let pages = start().await;
    machine_room_events(&pages).await;
    let kenji = pages.login("kenji").await;
    for (lang, escort, still, denied) in [
        ("ja", "付添者: Sato", "在室中", "拒否"),
        ("en", "Escort: Sato", "Still inside", "Denied"),
    ] {
        for path in [
            "/history",
            "/events",
            "/inside",
            "/inside/muster",
            "/inside/muster?zone=12",
        ] {
            let (status, html) = pages.page_as(&kenji, path, lang).await;
            assert_eq!(status, StatusCode::OK, "{path} {lang}");
            assert!(
                !html.contains("??"),
                "{path} in {lang} lacks a text: {html}"
            );
            for id in field_ids(&html) {
                assert!(
                    html.contains(&format!("<label for=\"{id}\">")),
                    "{path}: the field {id} has no label"
                );
            }
            // A security reviewer reads; the muster's buttons are not theirs.
            assert!(!html.contains("/inside/muster/mark"), "{path}");
        }
        let (_, history) = pages.page_as(&kenji, "/history", lang).await;
        assert!(history.contains(escort), "{lang}: {history}");
        assert!(history.contains(still), "{lang}");
        assert!(history.contains("0:25"), "Sato's 25 minutes: {history}");
        assert!(
            history.contains("escort_missing"),
            "the refused attempt beside"
        );
        assert!(history.contains("href=\"/history.csv\""), "a CSV link");
        let (_, events) = pages.page_as(&kenji, "/events?outcome=denied", lang).await;
        // Colour and word: never colour alone.
        assert!(
            events.contains(&format!("<span class=\"outcome denied\">{denied}</span>")),
            "{events}"
        );
        assert!(events.contains("href=\"/events.csv?outcome=denied\""));
        let (_, inside) = pages.page_as(&kenji, "/inside", lang).await;
        assert!(
            inside.contains("Yamada") && inside.contains("Sato"),
            "{inside}"
        );
    }
    // Filters narrow; bad ones are named beside their field.
    let (_, sato) = pages.page_as(&kenji, "/history?person=100", "en").await;
    assert!(!sato.contains("escort_missing"));
    let (status, bad) = pages
        .page_as(&kenji, "/history?from=15%2F01%2F2027&person=x", "en")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("Enter dates as YYYY-MM-DD.") && bad.contains("positive whole number"));
    let (status, _) = pages
        .page_as(&kenji, "/history?from=2026-01-01&to=2027-12-31", "en")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "more than 367 days");
    let (status, _) = pages.page_as(&kenji, "/inside/muster?zone=10", "en").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the lobby tracks nobody");

    // The CSV download of the page's filters: Excel's BOM, CRLF, the columns.
    let csv = pages.get("/history.csv?zone=12", Some(&kenji.cookie)).await;
    assert_eq!(csv.status(), StatusCode::OK);
    let bytes = csv.bytes().await.unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with("\u{feff}\"record\",\"zone_id\""), "{text}");
    assert!(text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'));
    assert!(text.contains("\"visit\",\"12\",\"Machine room\",\"101\",\"Yamada\",\"visitor\""));
    assert!(text.contains("\"denied\""));
    let events_csv = pages
        .get("/events.csv?outcome=denied", Some(&kenji.cookie))
        .await;
    assert_eq!(events_csv.status(), StatusCode::OK);
    assert!(events_csv.text().await.unwrap().contains("escort_missing"));
    // The events export is recorded when its stream ends: polled, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for action in [
        "history.read",
        "history.export",
        "events.search",
        "events.export",
        "who_is_inside.read",
        "muster.read",
    ] {
        loop {
            let audit = pages.store.audit_entries(None, 1000).await.unwrap();
            if audit
                .iter()
                .any(|e| e.action == action && e.actor == "kenji")
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{action} is recorded");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn operators_mark_people_safe_in_a_muster_and_reviewers_cannot() {
    let pages = start().await;
    machine_room_events(&pages).await;
    let tanaka = pages.login("tanaka").await;
    let kenji = pages.login("kenji").await;
    let (_, html) = pages.page_as(&tanaka, "/inside/muster?zone=12", "en").await;
    assert!(html.contains("Unaccounted for: 1"), "{html}");
    assert!(html.contains("action=\"/inside/muster/mark\""));
    let form = [("zone_id", "12"), ("person_id", "101")];
    // A security reviewer's forged form is refused and changes nothing.
    let before = pages.audit_len().await;
    let (status, _, _) = pages.submit(&kenji, "/inside/muster/mark", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(pages.audit_len().await, before);
    let (status, to, _) = pages.submit(&tanaka, "/inside/muster/mark", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/inside/muster?zone=12&done=marked");
    let (_, html) = pages.page_as(&tanaka, &to, "en").await;
    assert!(
        html.contains("Marked safe.") && html.contains("Unaccounted for: 0"),
        "{html}"
    );
    assert!(html.contains("Marked by: tanaka"), "{html}");
    // A new muster needs the confirmation; then everyone is unaccounted again.
    let (status, _, html) = pages
        .submit(&tanaka, "/inside/muster/new", &[("zone_id", "12")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Form answers come in Japanese (no Accept-Language).
    assert!(html.contains("確認欄にチェックを入れてください。"));
    let (status, to, _) = pages
        .submit(
            &tanaka,
            "/inside/muster/new",
            &[("zone_id", "12"), ("confirm", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = pages.page_as(&tanaka, &to, "en").await;
    assert!(
        html.contains("Unaccounted for: 1") && html.contains("Earlier musters"),
        "{html}"
    );
    // Bad input: an unknown person, a zone that is not a number.
    let (status, _, html) = pages
        .submit(
            &tanaka,
            "/inside/muster/mark",
            &[("zone_id", "12"), ("person_id", "999")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("その人物は登録されていません。"));
    let (status, _, _) = pages
        .submit(
            &tanaka,
            "/inside/muster/mark",
            &[("zone_id", "x"), ("person_id", "101")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let actions: Vec<String> = pages
        .store
        .audit_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "tanaka")
        .map(|e| e.action)
        .collect();
    assert!(
        actions.iter().any(|a| a == "muster.mark_safe"),
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "muster.start").count(),
        2,
        "{actions:?}"
    );
}

// ---- Four-eyes approval ----

#[tokio::test]
async fn a_change_waits_for_a_second_admin_who_approves_or_refuses_it_on_its_page() {
    let pages = start().await;
    // Change 1 was asked for by "seed": every role sees it, in words.
    let kenji = pages.login("kenji").await;
    let (status, html) = pages.page_as(&kenji, "/approvals", "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Threat level of site City Hall: Normal → High"),
        "{html}"
    );
    assert!(
        html.contains("href=\"/approvals\""),
        "the menu links the approvals"
    );
    let (_, html) = pages.page_as(&kenji, "/approvals/1", "en").await;
    assert!(
        !html.contains("/approvals/1/approve"),
        "only admins decide: {html}"
    );
    let facilities = pages.login("tanaka").await;
    let before = pages.audit_len().await;
    let (status, _, _) = pages
        .submit(&facilities, "/approvals/1/approve", &[("confirm", "1")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(pages.audit_len().await, before);

    let admin = pages.login("aiko").await;
    // (A login is audited too.)
    let before = pages.audit_len().await;
    let (_, html) = pages.page_as(&admin, "/approvals/1", "en").await;
    assert!(html.contains("action=\"/approvals/1/approve\""), "{html}");
    // Approving needs the tick, refusing a comment.
    let (status, _, html) = pages.submit(&admin, "/approvals/1/approve", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("確認のチェック"), "{html}");
    let (status, _, html) = pages
        .submit(&admin, "/approvals/2/refuse", &[("comment", "  ")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("却下の理由"), "{html}");
    assert_eq!(pages.audit_len().await, before);
    let site = |pages: &Pages| {
        let store = pages.store.clone();
        async move {
            store
                .site(tobira_web::store::resources::Id::new(1).unwrap())
                .await
                .unwrap()
                .threat
        }
    };
    assert_eq!(site(&pages).await.as_str(), "normal");

    let (status, to, _) = pages
        .submit(&admin, "/approvals/1/approve", &[("confirm", "1")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/approvals/1?done=approved");
    assert_eq!(site(&pages).await.as_str(), "high");
    let (status, _, html) = pages
        .submit(&admin, "/approvals/1/approve", &[("confirm", "1")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "decided once only");
    assert!(html.contains("すでに判断されています"), "{html}");

    let (status, to, _) = pages
        .submit(
            &admin,
            "/approvals/2/refuse",
            &[("comment", "no drill today")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = pages.page_as(&admin, &to, "en").await;
    assert!(
        html.contains("Refused") && html.contains("no drill today"),
        "{html}"
    );
    let zone = pages
        .store
        .zone(tobira_web::store::resources::Id::new(12).unwrap())
        .await
        .unwrap();
    assert_eq!(zone.settings.threat.as_str(), "normal");
}

#[tokio::test]
async fn a_lockdown_is_started_with_its_confirmation_and_released_only_by_an_admin() {
    let pages = start().await;
    let tanaka = pages.login("tanaka").await;
    let kenji = pages.login("kenji").await;
    let aiko = pages.login("aiko").await;
    // A reviewer sees the lockdowns but no form; a forged one is refused.
    let (status, html) = pages.page_as(&kenji, "/lockdown", "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No lockdown is in force.") && !html.contains("action=\"/lockdown\""));
    let start = [
        ("scope", "zone:12"),
        ("reason", "door forced"),
        ("confirm", "1"),
    ];
    let before = pages.audit_len().await;
    let (status, _, _) = pages.submit(&kenji, "/lockdown", &start).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Without the confirmation nothing happens, and the typed reason stays.
    let (status, _, html) = pages.submit(&tanaka, "/lockdown", &start[..2]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("封鎖するには確認のチェックが必要です。"),
        "{html}"
    );
    assert!(html.contains(">door forced</textarea>"), "{html}");
    let (status, _, html) = pages
        .submit(
            &tanaka,
            "/lockdown",
            &[("scope", "zone:x"), ("reason", "r"), ("confirm", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("対象のサイトまたはゾーンを選んでください。"),
        "{html}"
    );
    assert_eq!(pages.audit_len().await, before);

    let (status, to, _) = pages.submit(&tanaka, "/lockdown", &start).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/lockdown#lockdown-1");
    let (_, html) = pages.page_as(&tanaka, "/lockdown", "en").await;
    assert!(
        html.contains("City Hall — Machine room") && html.contains("door forced"),
        "{html}"
    );
    assert!(html.contains("Controllers not reached yet: 2"), "{html}");
    assert!(
        html.contains("An admin releases the lockdown.") && !html.contains("/lockdown/1/release")
    );
    // The same scope twice is refused with the reason.
    let (status, _, html) = pages.submit(&tanaka, "/lockdown", &start).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("the zone is already locked down (lockdown 1)"),
        "{html}"
    );

    let release = [("comment", "intruder caught"), ("confirm", "1")];
    let (status, _, _) = pages.submit(&tanaka, "/lockdown/1/release", &release).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "facilities staff do not release"
    );
    let (status, _, html) = pages
        .submit(&aiko, "/lockdown/1/release", &release[..1])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("解除するには確認のチェックが必要です。"),
        "{html}"
    );
    let (_, html) = pages.page_as(&aiko, "/lockdown", "en").await;
    assert!(html.contains("action=\"/lockdown/1/release\""), "{html}");
    let (status, _, _) = pages.submit(&aiko, "/lockdown/1/release", &release).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = pages.page_as(&aiko, "/lockdown", "en").await;
    assert!(
        html.contains("No lockdown is in force.") && html.contains("intruder caught"),
        "{html}"
    );
    let (status, _, _) = pages.submit(&aiko, "/lockdown/99/release", &release).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_trail_reads_as_old_to_new_is_searched_and_verifies_every_chain() {
    let pages = start().await;
    let tanaka = pages.login("tanaka").await;
    let kenji = pages.login("kenji").await;
    let uid = support::uid_of(102);
    let (status, _, html) = pages
        .submit(
            &tanaka,
            &format!("/cards/{uid}/action"),
            &[
                ("action", "suspend"),
                ("note", "lent to a visitor"),
                ("confirm", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    for (lang, label) in [("ja", "カードを一時停止"), ("en", "Card suspended")] {
        let (status, html) = pages.page_as(&kenji, "/audit?action=card.", lang).await;
        assert_eq!(status, StatusCode::OK, "{lang}");
        assert!(!html.contains("??"), "{lang}: {html}");
        every_field_has_a_label(&html, "/audit");
        for id in [
            "f-actor", "f-action", "f-target", "f-text", "f-from", "f-to", "f-seq",
        ] {
            assert!(html.contains(&format!("<label for=\"{id}\">")), "{id}");
        }
        // The readable label, the raw name beside it, the target's page,
        // and the change as old → new.
        assert!(html.contains(label), "{lang}: {html}");
        assert!(html.contains("<code class=\"tag\">card.suspend</code>"));
        assert!(html.contains(&format!("href=\"/cards/{uid}\"")), "{html}");
        assert!(
            html.contains("<del>active</del> → <ins>suspended</ins>"),
            "{html}"
        );
        assert!(html.contains("lent to a visitor"));
        assert!(
            html.contains("action=\"/audit/verify\""),
            "the Verify button"
        );
    }
    // Filters narrow; a bad one is named beside its field.
    let (_, other) = pages.page_as(&kenji, "/audit?actor=aiko", "en").await;
    assert!(!other.contains("card.suspend"));
    let (status, bad) = pages
        .page_as(&kenji, "/audit?from=15%2F01%2F2027&seq=x", "en")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("Enter a date as YYYY-MM-DD.") && bad.contains("Enter a whole number"));
    // Reading the history of a person is in the trail, readably.
    let (status, _) = pages.page_as(&kenji, "/history?person=102", "en").await;
    assert_eq!(status, StatusCode::OK);
    let (_, reads) = pages
        .page_as(&kenji, "/audit?action=history.read", "en")
        .await;
    assert!(reads.contains("Viewed the history"), "{reads}");
    assert!(
        reads.contains("<span class=\"tag\">person</span>: 102"),
        "{reads}"
    );

    // Verify: intact, and recorded as run.
    let before = pages.audit_len().await;
    let (status, _, result) = pages.submit(&kenji, "/audit/verify", &[]).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert!(
        result.contains("すべてのチェーンは改ざんされていません。"),
        "{result}"
    );
    assert!(result.contains("admin_audit") && result.contains("tobira central verify"));
    assert_eq!(pages.audit_len().await, before + 1);
    let last = pages.store.audit_entries(None, 1).await.unwrap().remove(0);
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("kenji", "chains.verify")
    );
    assert!(last.detail.contains("\"ok\":true"), "{}", last.detail);
    // An entry edited by hand: the first broken link names it and links to it.
    let seq = pages
        .store
        .search_audit(
            &tobira_web::store::audit_search::AuditFilter {
                action: Some("card.suspend".into()),
                ..Default::default()
            },
            None,
            1,
        )
        .await
        .unwrap()[0]
        .seq;
    sqlx::query(
        "UPDATE admin_audit SET detail = '{\"from\":\"active\",\"to\":\"active\"}' WHERE seq = $1",
    )
    .bind(seq)
    .execute(pages.store.pool())
    .await
    .unwrap();
    let (status, _, broken) = pages.submit(&kenji, "/audit/verify", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(broken.contains("最初に壊れているつながり"), "{broken}");
    assert!(broken.contains(&format!("<dd>{seq}</dd>")), "{broken}");
    assert!(
        broken.contains(&format!("href=\"/audit?seq={seq}\"")),
        "{broken}"
    );
    let last = pages.store.audit_entries(None, 1).await.unwrap().remove(0);
    assert!(last.detail.contains("\"ok\":false"), "{}", last.detail);
    // Every role reads the trail and may run the check.
    let (status, _) = pages.page_as(&tanaka, "/audit", "en").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = pages.submit(&tanaka, "/audit/verify", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let anonymous = pages.get("/audit", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

/// The last completed month in the seeded site's time zone (Asia/Tokyo).
fn last_month() -> String {
    tobira_web::store::reviews::Month::containing(tobira_web::store::now_ms(), "Asia/Tokyo")
        .unwrap()
        .previous()
        .to_string()
}

#[tokio::test]
async fn the_review_pages_prepare_a_month_sign_it_off_once_and_recertify_a_zone() {
    let pages = start().await;
    let month = last_month();
    let kenji = pages.login("kenji").await;
    let tanaka = pages.login("tanaka").await;
    let aiko = pages.login("aiko").await;
    for lang in ["ja", "en"] {
        for path in [
            "/reviews".to_string(),
            format!("/reviews/{month}"),
            "/reviews/access".to_string(),
            "/reviews/access?zone=11".to_string(),
        ] {
            let (status, html) = pages.page_as(&kenji, &path, lang).await;
            assert_eq!(status, StatusCode::OK, "{path} {lang}");
            assert!(
                !html.contains("??"),
                "{path} in {lang} lacks a text: {html}"
            );
            for id in field_ids(&html) {
                assert!(
                    html.contains(&format!("<label for=\"{id}\">")),
                    "{path}: the field {id} has no label"
                );
            }
        }
    }
    let (_, list) = pages.page_as(&kenji, "/reviews", "en").await;
    assert!(
        list.contains(&format!("href=\"/reviews/{month}\"")),
        "{list}"
    );
    assert!(
        list.contains("href=\"/reviews\""),
        "the menu links the reviews"
    );
    let (_, page) = pages
        .page_as(&kenji, &format!("/reviews/{month}"), "en")
        .await;
    for section in [
        "Level-4 entries",
        "Denied attempts",
        "Doors forced or held open",
        "Cards used out of hours",
        "Grant and membership changes",
    ] {
        assert!(page.contains(section), "{section}: {page}");
    }
    assert!(page.contains("07:00–20:00"), "the usual hours are said");
    assert!(page.contains(&format!("action=\"/reviews/{month}/sign-off\"")));
    // Facilities staff do not sign off: no form, and the POST is refused.
    let (_, page) = pages
        .page_as(&tanaka, &format!("/reviews/{month}"), "en")
        .await;
    assert!(!page.contains("/sign-off\""), "{page}");
    let (status, _, _) = pages
        .submit(
            &tanaka,
            &format!("/reviews/{month}/sign-off"),
            &[("comment", "ok")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A comment is required; the current month is not over; a bad month is not found.
    let (status, _, html) = pages
        .submit(
            &kenji,
            &format!("/reviews/{month}/sign-off"),
            &[("comment", " ")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("Enter a comment") || html.contains("コメントを入力"),
        "{html}"
    );
    let current = tobira_web::store::reviews::Month::parse(&month)
        .unwrap()
        .next();
    let (status, _, _) = pages
        .submit(
            &kenji,
            &format!("/reviews/{current}/sign-off"),
            &[("comment", "early")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = pages.page_as(&kenji, "/reviews/2026-13", "en").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, to, _) = pages
        .submit(
            &kenji,
            &format!("/reviews/{month}/sign-off"),
            &[("comment", "all entries explained")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, format!("/reviews/{month}?done=signed"));
    let (_, page) = pages.page_as(&kenji, &to, "en").await;
    assert!(page.contains("The month is signed off."), "{page}");
    assert!(page.contains("all entries explained"));
    assert!(!page.contains("/sign-off\""), "no second form");
    let (status, _, _) = pages
        .submit(
            &aiko,
            &format!("/reviews/{month}/sign-off"),
            &[("comment", "again")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "once only");
    let (_, list) = pages.page_as(&kenji, "/reviews", "en").await;
    assert!(list.contains("all entries explained"), "listed: {list}");

    // Re-certification of the machine room: Sato (staff group) is listed with
    // what revoking does; the security reviewer may not record a pass.
    let (_, access) = pages.page_as(&tanaka, "/reviews/access", "en").await;
    assert!(access.contains("data-person=\"100\""), "{access}");
    assert!(
        access.contains("revoking removes the membership"),
        "{access}"
    );
    assert!(access.contains("The group also opens:"), "{access}");
    assert!(access.contains("name=\"decision-100\" value=\"confirm\" checked"));
    let (status, _, _) = pages
        .submit(
            &kenji,
            "/reviews/access",
            &[("zone", "12"), ("decision-100", "revoke")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = pages
        .submit(
            &tanaka,
            "/reviews/access",
            &[("zone", "12"), ("decision-100", "maybe")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, html) = pages
        .submit(
            &tanaka,
            "/reviews/access",
            &[("zone", "12"), ("decision-102", "revoke")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "Ono cannot enter: {html}");
    let (status, to, _) = pages
        .submit(
            &tanaka,
            "/reviews/access",
            &[
                ("zone", "12"),
                ("decision-100", "revoke"),
                ("comment", "left the team"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/reviews/access?zone=12&done=recertified");
    let (_, access) = pages.page_as(&tanaka, &to, "en").await;
    assert!(
        !access.contains("data-person=\"100\""),
        "Sato is gone: {access}"
    );
    assert!(access.contains("left the team"), "the pass is listed");
}

// ---- The reports ----

#[tokio::test]
async fn the_report_pages_show_their_texts_labelled_fields_the_room_chart_and_csv() {
    let pages = start().await;
    machine_room_events(&pages).await;
    // A meeting room booked two hours the day before T0.
    sqlx::query("INSERT INTO zones (id, site_id, name, level, settings) SELECT 14, 1, 'Room A', 2, settings FROM zones WHERE id = 11")
        .execute(pages.store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO bookings (person_id, room_zone_id, path, start_at, end_at) VALUES (100, 14, '[]', $1, $2)")
        .bind(T0 - 24 * 60 * MIN)
        .bind(T0 - 22 * 60 * MIN)
        .execute(pages.store.pool())
        .await
        .unwrap();
    let kenji = pages.login("kenji").await;
    for (lang, index, rooms, never, booked) in [
        ("ja", "レポート", "会議室の利用率", "未使用", "予約時間"),
        (
            "en",
            "Reports",
            "Meeting-room utilisation",
            "never",
            "Booked hours",
        ),
    ] {
        let (status, html) = pages.page_as(&kenji, "/reports", lang).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(index) && html.contains(rooms),
            "{lang}: {html}"
        );
        for name in tobira_web::store::reports::REPORTS {
            assert!(
                html.contains(&format!("href=\"/reports/{name}\"")),
                "{name}"
            );
        }
        let (status, html) = pages.page_as(&kenji, "/reports/unused-cards", lang).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("for=\"f-days\"") && html.contains(never),
            "{lang}: {html}"
        );
        assert!(html.contains("Ono"), "Ono's card is unused");
        assert!(html.contains("href=\"/reports/unused-cards.csv\""));
        let (status, html) = pages.page_as(&kenji, "/reports/denials", lang).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("for=\"f-from\"") && html.contains("for=\"f-to\""));
        assert!(
            html.contains("escort_missing") && html.contains("Yamada"),
            "{html}"
        );
        let (status, html) = pages
            .page_as(&kenji, "/reports/room-utilisation", lang)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<svg") && html.contains("Room A"), "{html}");
        assert!(html.contains(booked));
        // Each chart's legend has two swatches; two bars per week with a tooltip each.
        let charts = html.matches("<svg").count();
        let bars = html.matches("<rect class=\"bar ").count() - 2 * charts;
        let weeks = html.matches("<th scope=\"row\">").count();
        assert!(weeks >= 5, "30 days touch five or six weeks: {weeks}");
        assert_eq!(bars, 2 * weeks);
        assert!(html.contains("<title>"));
        let (status, html) = pages.page_as(&kenji, "/reports/busiest-doors", lang).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Machine room") && html.contains("shade5"),
            "{html}"
        );
        // A bad date names its field; an impossible period says so.
        let (status, html) = pages
            .page_as(&kenji, "/reports/denials?from=01%2F11%2F2026", lang)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("aria-invalid=\"true\"") && html.contains("id=\"e-from\""));
        let (status, html) = pages
            .page_as(
                &kenji,
                "/reports/door-alarms?from=2026-11-10&to=2026-11-01",
                lang,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("role=\"alert\""), "{html}");
        let (status, _) = pages.page_as(&kenji, "/reports/nothing", lang).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let csv = pages
        .get("/reports/busiest-doors.csv", Some(&kenji.cookie))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with("\u{feff}\"door_id\",\"door_name\",\"total\",\"h00\""),
        "{text}"
    );
    assert!(text.contains("\"Machine room\",\"2\""));
    let bad = pages
        .get("/reports/unused-cards.csv?days=0", Some(&kenji.cookie))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
