//! The accept loop: plain TCP or TLS, the header, handshake and idle
//! timeouts, and the limits on open connections in total and per address.
//!
//! Why not `axum::serve`: it has none of these, and slow-header clients
//! held hundreds of connections until the process ran out of file
//! descriptors and nobody, controllers included, could connect.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How long a connection may take, at most, to finish after shutdown began
/// (a sync watch answers within 30 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);
/// A refused connection is logged at most this often (with how many were
/// refused since), so that a flood cannot flood the log too.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// After an accept error (out of file descriptors, say), wait this long: the
/// error would come back at once and spin the loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Timeouts and limits of the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in total; one more is closed at once.
    pub max_connections: usize,
    /// Open connections from one IP address; one more is closed at once.
    pub max_per_address: usize,
    /// Time a client has to send a request's headers (HTTP/1).
    pub header_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// A connection with no request in progress for this long is closed
    /// (requests that wait, such as the sync watch, keep it open).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            max_per_address: 64,
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why the service's TLS certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no PEM certificate.
    #[error("TLS certificate {path}: {detail}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The key file is missing, unreadable or holds no PEM private key.
    #[error("TLS key {path}: {detail}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The certificate and key do not make a server configuration (e.g. the
    /// key is not the certificate's).
    #[error("TLS certificate and key: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS side of the service: its certificate chain and key.
#[derive(Clone)]
pub struct Tls(TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Reads a PEM certificate chain (server certificate first) and its PEM
    /// private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Certificate {
                path: cert.to_owned(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Certificate {
                path: cert.to_owned(),
                detail: "no PEM certificate in the file".into(),
            });
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.to_owned(),
            detail: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, private)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls(TlsAcceptor::from(Arc::new(config))))
    }
}

/// Open connections per IP address; each entry is removed with its last connection.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerAddress`], given back when dropped.
#[derive(Debug)]
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = table.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Warns about refused connections at most once per [`REFUSAL_LOG_EVERY`].
#[derive(Debug, Default)]
struct RefusalLog {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RefusalLog {
    fn refused(&self, peer: SocketAddr, why: &str) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        let before = self.suppressed.swap(0, Ordering::Relaxed);
        tracing::warn!(%peer, refused_since_last_warning = before, "connection refused: {why}");
    }
}

/// When a connection last finished a request, and how many it has in progress.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last request's end (or 0).
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether nothing has happened on the connection for `idle`.
    fn idle_for(&self, idle: Duration) -> bool {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        self.in_flight.load(Ordering::Acquire) == 0
            && self
                .elapsed_ms()
                .saturating_sub(self.last_ms.load(Ordering::Acquire))
                >= idle_ms
    }
}

/// A request in progress; its end is stamped when dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_ms.store(self.0.elapsed_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the open
/// connections finish (for at most [`SHUTDOWN_GRACE`]).
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let per_address = Arc::new(PerAddress::default());
    let refusals = Arc::new(RefusalLog::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: the next accept may well succeed.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Over a limit: closed at once, before a byte is read or a task spawned.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            refusals.refused(peer, "too many open connections");
            continue;
        };
        let Some(slot) = PerAddress::take(&per_address, peer.ip(), limits.max_per_address) else {
            drop(stream);
            refusals.refused(peer, "too many open connections from this address");
            continue;
        };
        let app = app.clone();
        let tls = tls.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, peer, app, tls, limits, stop).await;
            drop((permit, slot));
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a permit: all of them back means all closed.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace time; closing them");
    }
}

/// One connection: the TLS handshake if any, then HTTP until the client
/// closes, the idle timeout, or shutdown.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    tls: Option<Tls>,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => http(stream, peer, app, limits, stop).await,
        Some(Tls(acceptor)) => {
            match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => http(stream, peer, app, limits, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn http<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let app = app.clone();
            // The client's address, for the login throttle (per address).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let in_flight = InFlight::begin(&activity);
            async move {
                let response = tower::ServiceExt::oneshot(app, request).await;
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let check_every = (limits.idle_timeout / 4).max(Duration::from_millis(50));
    let mut ticks = tokio::time::interval(check_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !closing => {
                // Finishes the request in progress, then closes.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = ticks.tick(), if !closing => {
                if activity.idle_for(limits.idle_timeout) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_slots_back_when_its_connections_close() {
        let table = Arc::new(PerAddress::default());
        let ip = IpAddr::from([127, 0, 0, 2]);
        let a = PerAddress::take(&table, ip, 2).unwrap();
        let b = PerAddress::take(&table, ip, 2).unwrap();
        assert!(PerAddress::take(&table, ip, 2).is_none());
        // Another address is not held back by this one.
        assert!(PerAddress::take(&table, IpAddr::from([127, 0, 0, 3]), 2).is_some());
        drop(a);
        let c = PerAddress::take(&table, ip, 2).unwrap();
        drop((b, c));
        assert!(table.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_request_in_progress_is_never_idle() {
        let activity = Arc::new(Activity::new());
        let request = InFlight::begin(&activity);
        assert!(!activity.idle_for(Duration::ZERO));
        drop(request);
        assert!(activity.idle_for(Duration::ZERO));
        assert!(!activity.idle_for(Duration::from_secs(3600)));
    }
}
