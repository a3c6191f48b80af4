//! The web admin: server-rendered pages for people with a login, beside the
//! Bearer-only JSON API; sessions by cookie, CSRF-checked forms, strict headers.

pub mod account;
pub mod alarms;
pub mod approvals;
pub mod assets;
pub mod audit;
pub mod csrf;
pub mod form_data;
pub mod forms;
pub mod history;
pub mod i18n;
pub mod import;
pub mod inside;
pub mod lockdown;
pub mod login;
pub mod monitor;
pub mod page;
pub mod reports;
pub mod resources;
pub mod reviews;
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
/// no inline script or style, no framing; scripts only the service's own
/// files (the live monitor's), which connect only back to it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

use resources::Routes;

/// The resource pages' routes: (GETs, POSTs).
fn resource_routes() -> (Routes, Routes) {
    use resources::{access, cards, doors, people, routes, structure};
    let mut gets = Vec::new();
    let mut posts = Vec::new();
    for (g, p) in [
        routes::<structure::Sites>(),
        routes::<structure::Zones>(),
        routes::<structure::Schedules>(),
        routes::<doors::Doors>(),
        routes::<doors::Controllers>(),
        routes::<people::People>(),
        routes::<people::Enrollments>(),
        routes::<cards::Cards>(),
        routes::<access::Groups>(),
        routes::<access::Grants>(),
        routes::<access::Bookings>(),
    ] {
        gets.extend(g);
        posts.extend(p);
    }
    (gets, posts)
}

/// Every state-changing page route, in one place: each goes through the CSRF
/// guard, and the tests walk this list.
pub fn page_posts() -> Vec<(String, MethodRouter<AppState>)> {
    let mut posts: Routes = vec![
        ("/login".into(), post(login::submit)),
        ("/logout".into(), post(login::logout)),
        ("/account/password".into(), post(account::change_password)),
        ("/users/new".into(), post(users::create)),
        ("/users/{id}/role".into(), post(users::set_role)),
        ("/users/{id}/disabled".into(), post(users::set_disabled)),
        ("/users/{id}/password".into(), post(users::reset_password)),
        ("/alarms/{id}/ack".into(), post(alarms::acknowledge)),
        ("/alarms/{id}/clear".into(), post(alarms::clear)),
        (
            "/import/preview".into(),
            post(import::preview).layer(DefaultBodyLimit::max(import::MAX_UPLOAD_FORM)),
        ),
        (
            "/import/apply".into(),
            post(import::apply).layer(DefaultBodyLimit::max(import::MAX_UPLOAD_FORM)),
        ),
        ("/inside/muster/mark".into(), post(inside::mark)),
        ("/inside/muster/new".into(), post(inside::start)),
        ("/approvals/{id}/approve".into(), post(approvals::approve)),
        ("/approvals/{id}/refuse".into(), post(approvals::refuse)),
        ("/lockdown".into(), post(lockdown::start)),
        ("/lockdown/{id}/release".into(), post(lockdown::release)),
        ("/audit/verify".into(), post(audit::verify)),
        ("/reviews/{month}/sign-off".into(), post(reviews::sign_off)),
        ("/reviews/access".into(), post(reviews::recertify)),
    ];
    posts.extend(resource_routes().1);
    posts
}

/// The paths of [`page_posts`].
pub fn page_post_paths() -> Vec<String> {
    page_posts().into_iter().map(|(path, _)| path).collect()
}

/// The paths of every page that shows something (GET), resources included.
pub fn page_get_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "/",
        "/login",
        "/account/password",
        "/users",
        "/users/new",
        "/users/{id}",
        "/import",
        "/monitor",
        "/alarms",
        "/history",
        "/events",
        "/inside",
        "/inside/muster",
        "/approvals",
        "/approvals/{id}",
        "/lockdown",
        "/audit",
        "/reviews",
        "/reviews/{month}",
        "/reviews/access",
        "/reports",
        "/reports/unused-cards",
        "/reports/denials",
        "/reports/door-alarms",
        "/reports/room-utilisation",
        "/reports/busiest-doors",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    paths.extend(resource_routes().0.into_iter().map(|(p, _)| p));
    paths
}

/// The page routes (the JSON API and sync routes are elsewhere).
pub fn router(state: AppState, options: UiOptions) -> Router<AppState> {
    let mut posts = Router::new();
    for (path, route) in page_posts() {
        posts = posts.route(&path, route);
    }
    let posts = posts.route_layer(axum::middleware::from_fn_with_state(state, csrf::guard));
    let mut pages = Router::new();
    for (path, route) in resource_routes().0 {
        pages = pages.route(&path, route);
    }
    pages
        .route("/", get(account::start))
        .route("/login", get(login::form))
        .route("/account/password", get(account::password_form))
        .route("/lang/{code}", get(login::switch_language))
        .route("/users", get(users::list))
        .route("/users/new", get(users::new_form))
        .route("/users/{id}", get(users::show))
        .route("/import", get(import::form))
        .route("/monitor", get(monitor::page))
        .route("/alarms", get(alarms::list))
        .route("/monitor/stream", get(monitor::stream))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::show))
        .route("/assets/{name}", get(assets::serve))
        .route("/history", get(history::history_page))
        .route("/history.csv", get(history::history_download))
        .route("/events", get(history::events_page))
        .route("/events.csv", get(history::events_download))
        .route("/inside", get(inside::inside_page))
        .route("/inside/muster", get(inside::muster))
        .route("/lockdown", get(lockdown::console))
        .route("/audit", get(audit::list))
        .route("/reviews", get(reviews::list))
        .route("/reviews/access", get(reviews::access))
        .route("/reviews/{month}", get(reviews::month))
        .route("/reports", get(reports::index))
        .route("/reports/{name}", get(reports::report))
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
