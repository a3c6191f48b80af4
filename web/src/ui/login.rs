//! Login, logout and the language switch.

use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::i18n::{cookie, Lang, LANG_COOKIE};
use super::page::{local_path, local_time, render, see_other, PageContext, PageError};
use super::session::{cleared_session_cookie, session_cookie, SESSION_COOKIE};
use super::UiOptions;
use crate::store::sessions::LoginOutcome;
use crate::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageContext,
    username: String,
    next: String,
    /// Catalog key of the message above the form, if any.
    message_key: &'static str,
    /// Text after the message (the time to try again).
    message_detail: String,
    /// The message reports a problem (rather than "logged out").
    problem: bool,
}

/// The login page's query.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    out: Option<String>,
}

/// `GET /login`.
pub async fn form(lang: Lang, Query(q): Query<LoginQuery>) -> Response {
    let (message_key, problem) = if q.expired.is_some() {
        ("login.expired", true)
    } else if q.out.is_some() {
        ("login.logged_out", false)
    } else {
        ("", false)
    };
    render(
        StatusCode::OK,
        &LoginPage {
            ctx: PageContext::anonymous(lang, "/login"),
            username: String::new(),
            next: local_path(q.next.as_deref()),
            message_key,
            message_detail: String::new(),
            problem,
        },
    )
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: a new session on success; otherwise the form again with
/// the name kept and a message (when to try again, if logins wait).
pub async fn submit(
    State(state): State<AppState>,
    Extension(options): Extension<UiOptions>,
    lang: Lang,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(login): Form<LoginForm>,
) -> Result<Response, PageError> {
    let address = peer.map_or_else(|| "unknown".to_string(), |p| p.0.ip().to_string());
    let next = local_path(login.next.as_deref());
    let outcome = state
        .store
        .login(
            &login.username,
            &login.password,
            &address,
            cookie(&headers, SESSION_COOKIE),
            options.sessions,
            options.clock.now(),
        )
        .await
        .map_err(|e| PageError::internal(lang, e))?;
    let (status, message_key, retry_at) = match outcome {
        LoginOutcome::Opened(session) => {
            let mut response = see_other(&next);
            if let Some(c) = session_cookie(&session.id, options.tls) {
                response.headers_mut().insert(header::SET_COOKIE, c);
            }
            return Ok(response);
        }
        LoginOutcome::Refused { retry_at, .. } => {
            (StatusCode::UNAUTHORIZED, "login.failed", retry_at)
        }
        LoginOutcome::Throttled { retry_at } => (
            StatusCode::TOO_MANY_REQUESTS,
            "login.throttled",
            Some(retry_at),
        ),
    };
    let message_detail = match retry_at {
        Some(at) => {
            let zone = state
                .store
                .display_time_zone()
                .await
                .map_err(|e| PageError::internal(lang, e))?;
            local_time(at, &zone)
        }
        None => String::new(),
    };
    let message_key = if retry_at.is_some() {
        "login.throttled"
    } else {
        message_key
    };
    Ok(render(
        status,
        &LoginPage {
            ctx: PageContext::anonymous(lang, "/login"),
            username: login.username,
            next,
            message_key,
            message_detail,
            problem: true,
        },
    ))
}

/// `POST /logout`: ends the session in the store, not only in the browser.
pub async fn logout(
    State(state): State<AppState>,
    Extension(options): Extension<UiOptions>,
    page: super::session::Signed,
) -> Result<Response, PageError> {
    state
        .store
        .logout(&page.session_id)
        .await
        .map_err(|e| PageError::internal(page.lang, e))?;
    let mut response = see_other("/login?out=1");
    if let Some(c) = cleared_session_cookie(options.tls) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// The language switch's query.
#[derive(Debug, Deserialize)]
pub struct SwitchQuery {
    next: Option<String>,
}

/// `GET /lang/{code}`: remembers the language for a year and goes back.
pub async fn switch_language(
    lang: Lang,
    Path(code): Path<String>,
    Query(q): Query<SwitchQuery>,
) -> Result<Response, PageError> {
    let chosen = Lang::parse(&code).ok_or(PageError::NotFound(lang))?;
    let mut response = see_other(&local_path(q.next.as_deref()));
    if let Ok(c) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; SameSite=Strict; Path=/; Max-Age=31536000",
        chosen.code()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(response)
}
