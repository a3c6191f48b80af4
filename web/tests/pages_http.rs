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
    let state = AppState {
        store: store.clone(),
        signer: Arc::new(PolicySigner::generate()),
    };
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
    pattern.replace("{key}", &key)
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
                let allowed = status == StatusCode::OK
                    || (user == "kenji"
                        && path.ends_with("/new")
                        && status == StatusCode::FORBIDDEN)
                    || (user == "tanaka"
                        && path == "/controllers/new"
                        && status == StatusCode::FORBIDDEN);
                assert!(allowed, "{user} {path} {lang}: {status}");
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
        if ["/login", "/logout", "/account/password"].contains(&pattern.as_str()) {
            continue;
        }
        let browser = if pattern.starts_with("/controllers") {
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
    let (status, _, _) = pages
        .submit(&admin, "/zones/12/threat", &[("threat", "high")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let zone = pages
        .store
        .zone(tobira_web::store::resources::Id::new(12).unwrap())
        .await
        .unwrap();
    assert_eq!(zone.settings.threat.as_str(), "high");
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
