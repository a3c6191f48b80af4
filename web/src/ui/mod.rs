//! The web admin: server-rendered pages for people with a login, beside the
//! Bearer-only JSON API; sessions by cookie, CSRF-checked forms, strict headers.

pub mod account;
pub mod assets;
pub mod csrf;
pub mod form_data;
pub mod i18n;
pub mod import;
pub mod login;
pub mod page;
pub mod session;
pub mod users;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::store::sessions::SessionPolicy;
use crate::AppState;

/// How the pages run, set on the service.
#[derive(Debug, Clone, Default)]
pub struct UiOptions {
    /// Session timeouts.
    pub sessions: SessionPolicy,
    /// The service speaks HTTPS: cookies get `Secure` and forms must come
    /// from `https://` origins.
    pub tls: bool,
    /// Where the pages read the time.
    pub clock: Clock,
}

/// The time the pages go by: the system clock, or one a test sets.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that moves only when told to (ms since the epoch).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// Now, in ms since the epoch.
    pub fn now(&self) -> i64 {
        match self {
            Self::System => crate::store::now_ms(),
            Self::Manual(at) => at.load(Ordering::SeqCst),
        }
    }
}

/// The Content-Security-Policy of every page: nothing from another origin,
/// no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every state-changing page route, in one place: each goes through the CSRF
/// guard, and the tests walk this list.
pub fn page_posts() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/login", post(login::submit)),
        ("/logout", post(login::logout)),
        ("/account/password", post(account::change_password)),
        ("/users/new", post(users::create)),
        ("/users/{id}/role", post(users::set_role)),
        ("/users/{id}/disabled", post(users::set_disabled)),
        ("/users/{id}/password", post(users::reset_password)),
        (
            "/import/preview",
            post(import::preview).layer(DefaultBodyLimit::max(import::MAX_UPLOAD_FORM)),
        ),
        (
            "/import/apply",
            post(import::apply).layer(DefaultBodyLimit::max(import::MAX_UPLOAD_FORM)),
        ),
    ]
}

/// The paths of [`page_posts`].
pub fn page_post_paths() -> Vec<&'static str> {
    page_posts().into_iter().map(|(path, _)| path).collect()
}

/// The page routes (the JSON API and sync routes are elsewhere).
pub fn router(state: AppState, options: UiOptions) -> Router<AppState> {
    let mut posts = Router::new();
    for (path, route) in page_posts() {
        posts = posts.route(path, route);
    }
    let posts = posts.route_layer(axum::middleware::from_fn_with_state(state, csrf::guard));
    Router::new()
        .route("/", get(account::start))
        .route("/login", get(login::form))
        .route("/account/password", get(account::password_form))
        .route("/lang/{code}", get(login::switch_language))
        .route("/users", get(users::list))
        .route("/users/new", get(users::new_form))
        .route("/users/{id}", get(users::show))
        .route("/import", get(import::form))
        .route("/assets/{name}", get(assets::serve))
        .merge(posts)
        .layer(axum::middleware::from_fn(page_headers))
        .layer(axum::Extension(options))
}

/// The security headers of every page answer (redirects and errors too);
/// pages are never cached, the stylesheet is (its URL changes with it).
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
