//! The central service: store (SQLite or PostgreSQL), controller sync (signed
//! snapshots, deltas, long-poll, event ingest), the JSON API and the web admin pages.

pub mod accept;
pub mod api;
pub mod auth;
pub mod error;
pub mod json;
pub mod monitor;
pub mod server;
pub mod siem;
pub mod store;
pub mod sync;
pub mod ui;

use std::sync::Arc;

use tobira_protocol::PolicySigner;

pub use accept::{ConnectionLimits, Tls, TlsError};
pub use server::{router, serve, ServeOptions};
pub use store::Store;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The central policy signing key.
    pub signer: Arc<PolicySigner>,
    /// The live monitor over the store.
    pub monitor: monitor::Monitor,
}

impl AppState {
    /// The state of a service over `store`, signing with `signer`.
    pub fn new(store: Store, signer: Arc<PolicySigner>) -> Self {
        AppState {
            monitor: monitor::Monitor::new(store.clone()),
            store,
            signer,
        }
    }
}
