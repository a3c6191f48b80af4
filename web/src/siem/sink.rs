//! Where records go: a TCP or TLS connection to the SIEM, or a file of JSON
//! lines; opened, written and flushed, and checked for a receiver that went
//! away.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::SiemError;

/// How long a connection attempt or one batch's write may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a target's records go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Plain TCP (`tcp://host:port`).
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// TLS (`tls://host:port`), the server checked against `ca`.
    Tls {
        /// `host:port`.
        address: String,
        /// The name the server's certificate must carry.
        server_name: rustls::pki_types::ServerName<'static>,
        /// Trusts the SIEM's CA only.
        config: Arc<rustls::ClientConfig>,
    },
    /// Appended to a file (`file:PATH`).
    File {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a CA file (PEM) into a client configuration that trusts it alone.
pub fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, SiemError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| SiemError::Ca(e.to_string()))?;
        roots.add(cert).map_err(|e| SiemError::Ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(SiemError::Ca("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SiemError::Ca(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connection to the SIEM, plain or TLS.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Connection for T {}

/// An open destination.
#[derive(Debug)]
pub enum Sink {
    /// A connection to the SIEM.
    Stream(Box<dyn Connection>),
    /// A file opened for appending.
    File(tokio::fs::File),
}

async fn within<T>(
    what: &str,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, SiemError> {
    match tokio::time::timeout(IO_TIMEOUT, future).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SiemError::Io(format!("{what}: {e}"))),
        Err(_) => Err(SiemError::Io(format!(
            "{what}: no progress within {} s",
            IO_TIMEOUT.as_secs()
        ))),
    }
}

impl Destination {
    /// Connects (or opens the file).
    pub async fn open(&self) -> Result<Sink, SiemError> {
        match self {
            Destination::Tcp { address } => {
                let tcp = within("connect", TcpStream::connect(address.as_str())).await?;
                let _ = tcp.set_nodelay(true);
                Ok(Sink::Stream(Box::new(tcp)))
            }
            Destination::Tls {
                address,
                server_name,
                config,
            } => {
                let tcp = within("connect", TcpStream::connect(address.as_str())).await?;
                let _ = tcp.set_nodelay(true);
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls =
                    within("TLS handshake", connector.connect(server_name.clone(), tcp)).await?;
                Ok(Sink::Stream(Box::new(tls)))
            }
            Destination::File { path } => {
                let mut options = tokio::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                options.mode(0o600);
                let file = within("open", options.open(path)).await?;
                Ok(Sink::File(file))
            }
        }
    }
}

impl Sink {
    /// Whether the receiver is still there: a syslog receiver never sends,
    /// so anything readable now is its end of the connection (or an error).
    /// Checked before each batch, so that a batch is not written into a
    /// connection that is already closed.
    pub async fn alive(&mut self) -> bool {
        let Sink::Stream(stream) = self else {
            return true;
        };
        let mut byte = [0u8; 1];
        // Ready at once only if the peer closed or sent something.
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
            Err(_) => true,
            Ok(Ok(n)) => n > 0,
            Ok(Err(_)) => false,
        }
    }

    /// Writes one batch and flushes it (a file is also synced to disk).
    pub async fn write_batch(&mut self, bytes: &[u8]) -> Result<(), SiemError> {
        match self {
            Sink::Stream(stream) => {
                within("write", async {
                    stream.write_all(bytes).await?;
                    stream.flush().await
                })
                .await
            }
            Sink::File(file) => {
                within("write", async {
                    file.write_all(bytes).await?;
                    file.flush().await?;
                    file.sync_data().await
                })
                .await
            }
        }
    }

    /// Closes a connection politely (TLS close_notify).
    pub async fn close(mut self) {
        if let Sink::Stream(stream) = &mut self {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        }
    }
}
