//! The HTTP server: routes, body limits, health check, request log, the
//! controller-offline watch, graceful shutdown (connections: [`crate::accept`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::auth::ActorSlot;
use crate::error::WebError;
use crate::store::{now_ms, Store};
use crate::AppState;

/// Largest request body accepted (an event batch of 1000 events fits easily).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// How long a controller may stay silent before `controller_offline`, by default.
pub const DEFAULT_OFFLINE_AFTER: Duration = Duration::from_secs(600);

/// How often signed checkpoints are made, by default.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(600);

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A controller silent this long raises a `controller_offline` alarm.
    pub offline_after: Duration,
    /// An alarm nobody acknowledges this long is escalated.
    pub escalate_after: Duration,
    /// How often signed checkpoints of the chains are made (chains whose
    /// head did not move are skipped).
    pub checkpoint_every: Duration,
    /// Timeouts and connection limits of the accept loop.
    pub limits: crate::accept::ConnectionLimits,
    /// The certificate and key to speak HTTPS with; plain HTTP without.
    pub tls: Option<crate::accept::Tls>,
    /// Retention of event chains; `None` keeps every event.
    pub retention: Option<Retention>,
    /// The web admin pages: session timeouts, TLS (secure cookies).
    pub ui: crate::ui::UiOptions,
}

/// How long events are kept and where the archives of older ones go.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Events older than this many days are archived and removed.
    pub events_days: u32,
    /// The directory the signed archive files go to.
    pub archive_dir: std::path::PathBuf,
    /// How often retention runs (it also runs at start).
    pub every: Duration,
}

impl Retention {
    /// The cutoff (ms) at `now`: events dated before it are due.
    pub fn cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(i64::from(self.events_days).saturating_mul(86_400_000))
    }
}

/// Logs every request: method, path (never the query or headers), status,
/// duration and who was authenticated; never a token or secret.
async fn log_request(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let actor = ActorSlot::default();
    request.extensions_mut().insert(actor.clone());
    let response = next.run(request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        actor = actor.get().unwrap_or("-"),
        "request"
    );
    response
}

/// Every answer, errors included, tells browsers not to guess its type and
/// caches not to keep it: answers carry personal data and secrets shown once.
async fn hardening_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The one exception is an answer that set its own policy: the
    // stylesheet, whose URL changes with its content.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> WebError {
    WebError::NotFound("route".into())
}

/// All routes, the pages with their default options.
pub fn router(state: AppState) -> Router {
    router_with_ui(state, crate::ui::UiOptions::default())
}

/// All routes, the pages with `ui`.
pub fn router_with_ui(state: AppState, ui: crate::ui::UiOptions) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::sync::router())
        .merge(crate::api::router())
        .merge(crate::ui::router(state.clone(), ui))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::map_response(hardening_headers))
        .with_state(state)
}

/// Binds the listening socket; call before announcing the service, so that a
/// taken port is an error and not a "listening" line followed by one.
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}

/// Serves on `listener` until SIGINT/SIGTERM, watching for silent controllers.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "central service listening");
    let store = state.store.clone();
    let watch = tokio::spawn(watch_controllers(store.clone(), options.offline_after));
    let escalation = tokio::spawn(escalate_alarms(store.clone(), options.escalate_after));
    let checkpoints = tokio::spawn(make_checkpoints(state.clone(), options.checkpoint_every));
    let retention = options
        .retention
        .clone()
        .map(|r| tokio::spawn(apply_retention(state.clone(), r)));
    crate::accept::accept_loop(
        listener,
        router_with_ui(state, options.ui.clone()),
        options.tls,
        options.limits,
        shutdown_signal(),
    )
    .await;
    watch.abort();
    escalation.abort();
    checkpoints.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    store.close().await;
    Ok(())
}

/// Checks for silent controllers a few times per `offline_after` (at least
/// once a minute) and logs each disconnect; the alarm is the store's.
async fn watch_controllers(store: Store, offline_after: Duration) {
    let every = (offline_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let after_ms = i64::try_from(offline_after.as_millis()).unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.raise_offline_alarms(now_ms(), after_ms).await {
            Ok(offline) => {
                for c in offline {
                    tracing::warn!(
                        controller = c.id,
                        name = %c.name,
                        last_contact = %crate::store::utc_text(c.last_contact_ms),
                        "controller disconnected: no contact for longer than the offline limit; controller_offline alarm raised"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot check for offline controllers"),
        }
    }
}

/// Escalates alarms nobody acknowledged within `after`, checking a few
/// times per `after` (at least once a minute).
async fn escalate_alarms(store: Store, after: Duration) {
    let every = (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.escalate_alarms(now_ms(), after_ms).await {
            Ok(escalated) => {
                for a in escalated {
                    tracing::warn!(alarm = a.id.get(), kind = %a.kind, priority = a.priority, "alarm escalated: nobody acknowledged it in time");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot escalate alarms"),
        }
    }
}

/// Signs a checkpoint of every moved chain at start and every `every`; a
/// chain that no longer reaches its last checkpoint is refused loudly.
async fn make_checkpoints(state: AppState, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match state.store.make_checkpoints(&state.signer, now_ms()).await {
            Ok(run) => {
                for c in &run.made {
                    tracing::info!(id = c.id, chain = %c.chain, count = c.count, "checkpoint signed");
                }
                for refused in &run.refused {
                    tracing::error!(%refused, "checkpoint refused: the chain no longer reaches its last checkpoint");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot make checkpoints"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Applies retention at start and every `retention.every`; a chain that
/// cannot be cut is logged (and raised as an alarm by the store).
async fn apply_retention(state: AppState, retention: Retention) {
    let mut ticks = tokio::time::interval(retention.every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = now_ms();
        match state
            .store
            .apply_retention(
                &state.signer,
                &retention.archive_dir,
                retention.cutoff(now),
                now,
            )
            .await
        {
            Ok(run) => {
                for c in &run.cuts {
                    tracing::info!(chain = %c.chain, first = c.first_seq, through = c.through_seq, archive = %c.archive, "events archived and removed");
                }
                for refused in &run.refused {
                    tracing::error!(%refused, "retention refused");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot apply retention"),
        }
    }
}
