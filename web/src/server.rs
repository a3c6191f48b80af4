//! The HTTP server: routes, body limits, health check, graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::error::WebError;
use crate::AppState;

/// Largest request body accepted (an event batch of 1000 events fits easily).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> WebError {
    WebError::NotFound("route".into())
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::sync::router())
        .merge(crate::api::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .with_state(state)
}

/// Serves until SIGINT/SIGTERM.
pub async fn serve(state: AppState, options: ServeOptions) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "central service listening");
    let store = state.store.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    store.close().await;
    Ok(())
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
