//! SIEM forwarding: one task per target sends events, alarms and admin-audit
//! entries from the database to a SIEM, after a durable cursor, at least once.
//!
//! The task reads rows after its cursor in batches, writes and flushes each
//! batch, and only then moves the cursor in the database. Ingest never waits
//! on it: it only reads what ingest has committed. A SIEM that is down or
//! slow holds back this task alone, which backs off and reconnects, and then
//! sends everything from its cursor on. Records sent twice (after a broken
//! connection) carry the same kind and id. Several central instances on one
//! PostgreSQL would each send everything (the cursor is not shared safely
//! between them): not supported yet.

pub mod format;
pub mod sink;

use std::time::Duration;

use tokio::time::Instant;

use crate::store::siem::{Order, Position, Source, SOURCES};
use crate::store::{now_ms, Store, StoreError};
pub use format::{Format, Origin};
pub use sink::Destination;
use sink::Sink;

/// A SIEM target that cannot be set up or reached.
#[derive(Debug, thiserror::Error)]
pub enum SiemError {
    /// The target text is not `tcp://HOST:PORT`, `tls://HOST:PORT` or `file:PATH`.
    #[error("{0:?} is not a SIEM target (tcp://HOST:PORT, tls://HOST:PORT or file:PATH)")]
    Target(String),
    /// A TLS target without a CA file, or a CA file that does not parse.
    #[error("SIEM CA: {0}")]
    Ca(String),
    /// Connecting, writing or flushing failed.
    #[error("{0}")]
    Io(String),
    /// Reading rows or storing the cursor failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where and how one SIEM gets the records.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as configured; also the cursor's key in the database.
    pub name: String,
    /// Where the records go.
    pub destination: Destination,
    /// How they are written.
    pub format: Format,
}

impl Target {
    /// Reads `tcp://HOST:PORT`, `tls://HOST:PORT` (needs `ca`, the SIEM's CA
    /// certificates in PEM) or `file:PATH` (always JSON lines).
    pub fn parse(text: &str, format: Format, ca: Option<&[u8]>) -> Result<Target, SiemError> {
        let bad = || SiemError::Target(text.to_string());
        let address = |rest: &str| -> Result<(String, String), SiemError> {
            let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad());
            }
            Ok((host.to_string(), rest.to_string()))
        };
        let destination = if let Some(rest) = text.strip_prefix("tcp://") {
            Destination::Tcp {
                address: address(rest)?.1,
            }
        } else if let Some(rest) = text.strip_prefix("tls://") {
            let (host, address) = address(rest)?;
            let ca = ca.ok_or_else(|| {
                SiemError::Ca(format!("{text} needs the SIEM's CA file (--siem-ca)"))
            })?;
            let server_name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|_| bad())?
                .to_owned();
            Destination::Tls {
                address,
                server_name,
                config: sink::tls_config(ca)?,
            }
        } else if let Some(path) = text.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad());
            }
            return Ok(Target {
                name: text.to_string(),
                destination: Destination::File { path: path.into() },
                format: Format::JsonLines,
            });
        } else {
            return Err(bad());
        };
        Ok(Target {
            name: text.to_string(),
            destination,
            format,
        })
    }
}

/// How a forwarder paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Rows per batch and source.
    pub batch: i64,
    /// How often to look for new rows when all were sent.
    pub poll: Duration,
    /// The first wait after a failure; doubles up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// How long a gap in a source's ids may stay before rows after it are
    /// sent (an id taken by a transaction that has not committed yet).
    pub gap_wait: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            batch: 500,
            poll: Duration::from_millis(500),
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            gap_wait: Duration::from_secs(5),
        }
    }
}

/// A gap in a source's ids, first seen at `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The last id before the gap.
    after: i64,
    /// When the forwarder first saw it.
    since: Instant,
}

/// How many of `ids` (ascending, all after `after`) can be sent now: all up
/// to the first gap, and past a gap once it has stayed `wait` long (a
/// rolled-back or deleted row, not one still being committed).
pub fn sendable(
    after: Position,
    ids: &[i64],
    gap: &mut Option<Gap>,
    now: Instant,
    wait: Duration,
) -> usize {
    let mut last = match after {
        Position::Id(id) => id,
        _ => 0,
    };
    for (n, &id) in ids.iter().enumerate() {
        if last.checked_add(1) != Some(id) {
            match gap {
                Some(g) if g.after == last => {
                    if now.saturating_duration_since(g.since) < wait {
                        return n;
                    }
                }
                _ => {
                    *gap = Some(Gap {
                        after: last,
                        since: now,
                    });
                    return n;
                }
            }
        }
        last = id;
    }
    ids.len()
}

/// One target's forwarding state.
#[derive(Debug)]
struct Forwarder {
    store: Store,
    target: Target,
    origin: Origin,
    pace: Pace,
    /// Per source (as [`SOURCES`]): the position sent up to.
    cursors: Vec<Position>,
    /// Per source: where the batches written since the connection was last
    /// seen alive began; sent again if it turns out dead.
    unconfirmed: Vec<Option<Position>>,
    /// Per source: the gap it waits at.
    gaps: Vec<Option<Gap>>,
    sink: Option<Sink>,
}

/// Starts one forwarding task per target; they run until the runtime stops.
pub fn spawn(store: &Store, targets: Vec<Target>) -> Vec<tokio::task::JoinHandle<()>> {
    targets
        .into_iter()
        .map(|target| tokio::spawn(forward(store.clone(), target, Pace::default())))
        .collect()
}

/// Forwards to `target` until the task is aborted.
pub async fn forward(store: Store, target: Target, pace: Pace) {
    let mut f = Forwarder {
        store,
        target,
        origin: Origin::here(),
        pace,
        cursors: Vec::new(),
        unconfirmed: vec![None; SOURCES.len()],
        gaps: vec![None; SOURCES.len()],
        sink: None,
    };
    let mut backoff = pace.backoff;
    let mut failing = false;
    loop {
        match f.round().await {
            Ok(more) => {
                if failing {
                    tracing::info!(target = %f.target.name, "SIEM forwarding resumed");
                    failing = false;
                }
                backoff = pace.backoff;
                if !more {
                    tokio::time::sleep(pace.poll).await;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(target = %f.target.name, error = %e,
                        "SIEM forwarding stopped; retrying with backoff, nothing is skipped");
                    failing = true;
                }
                if matches!(e, SiemError::Io(_)) {
                    f.disconnect().await;
                }
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(pace.max_backoff);
            }
        }
    }
}

impl Forwarder {
    /// Drops the connection and goes back to where the batches that may not
    /// have arrived began.
    async fn disconnect(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink.close().await;
        }
        for (cursor, back) in self.cursors.iter_mut().zip(&mut self.unconfirmed) {
            if let Some(position) = back.take() {
                *cursor = position;
            }
        }
    }

    /// Sends one batch per source; whether any source has more waiting.
    async fn round(&mut self) -> Result<bool, SiemError> {
        if self.cursors.len() != SOURCES.len() {
            let mut cursors = Vec::with_capacity(SOURCES.len());
            for source in SOURCES {
                cursors.push(self.store.siem_cursor(&self.target.name, source).await?);
            }
            self.cursors = cursors;
        }
        let sink = match &mut self.sink {
            Some(sink) => {
                if !sink.alive().await {
                    return Err(SiemError::Io("the SIEM closed the connection".into()));
                }
                // Alive after the last batches: they were taken.
                self.unconfirmed.iter_mut().for_each(|u| *u = None);
                sink
            }
            None => {
                let sink = self.target.destination.open().await?;
                tracing::info!(target = %self.target.name, "SIEM connected");
                self.sink.insert(sink)
            }
        };
        let mut more = false;
        for (i, source) in SOURCES.iter().enumerate() {
            let sent = send_batch(
                &self.store,
                &self.target,
                &self.origin,
                &self.pace,
                source,
                sink,
                self.cursors[i],
                &mut self.gaps[i],
            )
            .await?;
            if let Some((position, full)) = sent {
                let before = std::mem::replace(&mut self.cursors[i], position);
                self.unconfirmed[i].get_or_insert(before);
                more |= full;
                self.store
                    .set_siem_cursor(&self.target.name, source, position)
                    .await?;
            }
        }
        Ok(more)
    }
}

/// Sends the rows of `source` after `after`; the new position and whether
/// the batch was full, or `None` if nothing was sendable.
#[allow(clippy::too_many_arguments)]
async fn send_batch(
    store: &Store,
    target: &Target,
    origin: &Origin,
    pace: &Pace,
    source: &Source,
    sink: &mut Sink,
    after: Position,
    gap: &mut Option<Gap>,
) -> Result<Option<(Position, bool)>, SiemError> {
    let rows = store.siem_rows(source, after, pace.batch, now_ms()).await?;
    let take = match source.order {
        Order::Received => rows.len(),
        Order::Id => {
            let ids: Vec<i64> = rows
                .iter()
                .map(|r| match r.position {
                    Position::Id(id) => id,
                    _ => 0,
                })
                .collect();
            sendable(after, &ids, gap, Instant::now(), pace.gap_wait)
        }
    };
    let Some(last) = rows[..take].last() else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    for row in &rows[..take] {
        bytes.extend(target.format.frame(&row.record, origin));
    }
    sink.write_batch(&bytes).await?;
    Ok(Some((last.position, rows.len() as i64 == pace.batch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait() -> Duration {
        Duration::from_secs(5)
    }

    #[test]
    fn rows_up_to_a_gap_are_sent_and_the_rest_once_the_gap_is_old() {
        let t0 = Instant::now();
        let mut gap = None;
        let ids = [1, 2, 4, 5];
        assert_eq!(sendable(Position::Start, &ids, &mut gap, t0, wait()), 2);
        // Still waiting for 3: nothing after 2 goes.
        let mut after = Position::Id(2);
        assert_eq!(
            sendable(
                after,
                &[4, 5],
                &mut gap,
                t0 + Duration::from_secs(1),
                wait()
            ),
            0
        );
        // 3 committed meanwhile: all go.
        assert_eq!(sendable(after, &[3, 4, 5], &mut gap.clone(), t0, wait()), 3);
        // 3 never came: after the wait, 4 and 5 go.
        assert_eq!(sendable(after, &[4, 5], &mut gap, t0 + wait(), wait()), 2);
        after = Position::Id(5);
        assert_eq!(sendable(after, &[6], &mut gap, t0 + wait(), wait()), 1);
    }

    #[test]
    fn a_new_gap_is_waited_for_again() {
        let t0 = Instant::now();
        let mut gap = Some(Gap {
            after: 2,
            since: t0,
        });
        assert_eq!(
            sendable(Position::Id(7), &[9], &mut gap, t0 + wait(), wait()),
            0
        );
        assert_eq!(
            gap,
            Some(Gap {
                after: 7,
                since: t0 + wait()
            })
        );
    }

    #[test]
    fn targets_parse_and_nonsense_is_refused() {
        let t = Target::parse("tcp://127.0.0.1:6514", Format::Rfc5424, None).unwrap();
        assert!(
            matches!(t.destination, Destination::Tcp { ref address } if address == "127.0.0.1:6514")
        );
        let f = Target::parse("file:/var/log/tobira.jsonl", Format::Rfc5424, None).unwrap();
        assert_eq!(f.format, Format::JsonLines);
        for bad in [
            "udp://h:1",
            "tcp://h",
            "tcp://:514",
            "tcp://h:0",
            "tcp://h:99999",
            "file:",
            "nonsense",
        ] {
            assert!(
                matches!(
                    Target::parse(bad, Format::Rfc5424, None),
                    Err(SiemError::Target(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Target::parse("tls://h:6514", Format::Rfc5424, None),
            Err(SiemError::Ca(_))
        ));
        assert!(matches!(
            Target::parse("tls://h:6514", Format::Rfc5424, Some(b"not pem")),
            Err(SiemError::Ca(_))
        ));
    }
}
