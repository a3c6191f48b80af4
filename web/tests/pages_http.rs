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
    for (name, role) in [("tanaka", Role::Facilities), ("kenji", Role::Security)] {
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

/// A valid form for each page POST route, token included.
fn valid_form<'a>(path: &str, csrf: &'a str) -> Vec<(&'static str, &'a str)> {
    match path {
        "/login" => vec![("username", "tanaka"), ("password", PASSWORD)],
        "/logout" => vec![("csrf", csrf)],
        "/account/password" => vec![
            ("csrf", csrf),
            ("current", PASSWORD),
            ("new", "Another-Long-Passphrase-77"),
            ("repeat", "Another-Long-Passphrase-77"),
        ],
        other => panic!("the test has no form for the page POST route {other}; add one"),
    }
}

#[tokio::test]
async fn every_page_form_refuses_a_missing_or_wrong_token_and_changes_nothing() {
    let pages = start().await;
    let browser = pages.login("kenji").await;
    let posts = tobira_web::ui::page_post_paths();
    assert!(posts.contains(&"/account/password") && posts.contains(&"/logout"));
    for path in posts.into_iter().filter(|p| *p != "/login") {
        let form = valid_form(path, &browser.csrf);
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
    for path in tobira_web::ui::page_post_paths() {
        let form = valid_form(path, &browser.csrf);
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
