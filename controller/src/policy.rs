//! The policy cache: the current snapshot in memory, persisted in SQLite as a stream of chunks, replaced atomically.

use std::io::{BufReader, Read, Write};
use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::SqlitePool;
use tobira_firmware::{Snapshot, SnapshotData, Timestamp};
use tokio::sync::{mpsc, watch};

use crate::state::StateError;

/// Size of one stored piece of snapshot JSON.
const CHUNK: usize = 256 * 1024;

/// The snapshot the doors decide with, and where it is kept.
///
/// Readers get an `Arc<Snapshot>` and keep deciding with it while a new one is
/// built; [`PolicyStore::replace`] stores the new snapshot first and only then
/// publishes it, so a crash never leaves the door deciding with a policy that
/// would be lost at restart. Storing is one transaction (the `policy` row and
/// all its chunks): after a crash the old snapshot or the new one is there,
/// never a mix.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    pool: SqlitePool,
    current: Arc<watch::Sender<Current>>,
}

/// The snapshot in force and when it was stored.
#[derive(Debug, Clone)]
pub struct Current {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    /// When this controller stored it.
    pub stored_at: Timestamp,
    /// When the central service last confirmed it is current (0 = never).
    pub confirmed_at: Timestamp,
}

impl PolicyStore {
    /// Loads the cached snapshot, if any. An empty cache gives an empty
    /// version-0 snapshot: every card is unknown and every door stays shut.
    /// So does an unreadable one — logged as an error — because a controller
    /// that refused to start would leave maglocks unpowered (open).
    pub async fn load(pool: SqlitePool) -> Result<Self, StateError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT stored_at, confirmed_at FROM policy WHERE id = 1")
                .fetch_optional(&pool)
                .await?;
        let current = match row {
            Some((stored_at, confirmed_at)) => match read_snapshot(&pool).await {
                Ok(snapshot) => Current {
                    snapshot: Arc::new(snapshot),
                    stored_at: Timestamp(stored_at),
                    confirmed_at: Timestamp(confirmed_at),
                },
                Err(e) => {
                    tracing::error!(error = %e, "cached policy unreadable; starting with none (every door shut) until the central service sends one");
                    empty()?
                }
            },
            None => empty()?,
        };
        let (tx, _) = watch::channel(current);
        Ok(Self {
            pool,
            current: Arc::new(tx),
        })
    }

    /// The snapshot in force.
    pub fn current(&self) -> Current {
        self.current.borrow().clone()
    }

    /// The version in force (0 = nothing cached yet).
    pub fn version(&self) -> u64 {
        self.current.borrow().snapshot.version()
    }

    /// Wakes on every replacement.
    pub fn subscribe(&self) -> watch::Receiver<Current> {
        self.current.subscribe()
    }

    /// Stores `snapshot`, then makes it the one in force. `from_central` says
    /// whether the central service just sent it (a policy file gives no
    /// confirmation that it is current).
    pub async fn replace(
        &self,
        snapshot: Snapshot,
        now: Timestamp,
        from_central: bool,
    ) -> Result<(), StateError> {
        let confirmed = if from_central {
            now
        } else {
            self.current.borrow().confirmed_at
        };
        let snapshot = Arc::new(snapshot);
        // Serialise on a blocking thread into 256 KiB pieces that this task
        // inserts as they come: the JSON text is never whole in memory.
        let (tx, mut chunks) = mpsc::channel::<Vec<u8>>(2);
        let writer = {
            let snapshot = Arc::clone(&snapshot);
            tokio::task::spawn_blocking(move || {
                let mut out = ChunkWriter {
                    buf: Vec::with_capacity(CHUNK),
                    tx,
                };
                serde_json::to_writer(&mut out, snapshot.data())?;
                out.flush()?;
                Ok::<(), std::io::Error>(())
            })
        };
        let mut txn = self.pool.begin().await?;
        sqlx::query("DELETE FROM policy_chunks")
            .execute(&mut *txn)
            .await?;
        let mut n: i64 = 0;
        let mut size: i64 = 0;
        while let Some(chunk) = chunks.recv().await {
            size += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            sqlx::query("INSERT INTO policy_chunks (n, bytes) VALUES (?, ?)")
                .bind(n)
                .bind(chunk)
                .execute(&mut *txn)
                .await?;
            n += 1;
        }
        writer
            .await
            .map_err(|e| corrupt(e.to_string()))?
            .map_err(|e| corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO policy (id, version, issued_at, stored_at, confirmed_at, size)
             VALUES (1, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version,
                 issued_at = excluded.issued_at, stored_at = excluded.stored_at,
                 confirmed_at = excluded.confirmed_at, size = excluded.size",
        )
        .bind(i64::try_from(snapshot.version()).unwrap_or(i64::MAX))
        .bind(snapshot.issued_at().0)
        .bind(now.0)
        .bind(confirmed.0)
        .bind(size)
        .execute(&mut *txn)
        .await?;
        txn.commit().await?;
        self.current.send_replace(Current {
            snapshot,
            stored_at: now,
            confirmed_at: confirmed,
        });
        // The snapshot just went through the write-ahead log (~10 MB for
        // 100k cards) and automatic checkpoints are off. Checkpointing now
        // bounds the log, and once it is copied back SQLite starts the log
        // again from its beginning, so the next outbox commits overwrite
        // space the file already has: an overwrite's flush needs no
        // filesystem journal commit, which keeps a door's commit short.
        if let Err(e) = crate::state::checkpoint(&self.pool).await {
            tracing::warn!(error = %e, "checkpoint after storing the policy failed; the daemon retries when the doors are quiet");
        }
        Ok(())
    }

    /// Records that the central service says the policy in force is current.
    pub async fn confirm(&self, now: Timestamp) -> Result<(), StateError> {
        sqlx::query("UPDATE policy SET confirmed_at = ? WHERE id = 1")
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        self.current.send_modify(|c| c.confirmed_at = now);
        Ok(())
    }
}

fn empty() -> Result<Current, StateError> {
    Ok(Current {
        snapshot: Arc::new(
            Snapshot::new(SnapshotData::default()).map_err(|e| corrupt(e.to_string()))?,
        ),
        stored_at: Timestamp(0),
        confirmed_at: Timestamp(0),
    })
}

fn corrupt(detail: String) -> StateError {
    StateError::Corrupt {
        what: "policy snapshot",
        detail,
    }
}

/// Streams the stored chunks into the JSON parser on a blocking thread.
async fn read_snapshot(pool: &SqlitePool) -> Result<Snapshot, StateError> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(2);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        };
        let data: SnapshotData =
            serde_json::from_reader(BufReader::with_capacity(64 * 1024, reader))
                .map_err(|e| corrupt(e.to_string()))?;
        Snapshot::new(data).map_err(|e| corrupt(e.to_string()))
    });
    let mut rows =
        sqlx::query_as::<_, (Vec<u8>,)>("SELECT bytes FROM policy_chunks ORDER BY n").fetch(pool);
    // If the parser stops early (bad JSON) the send fails; its error is the one to report.
    while let Some((bytes,)) = rows.try_next().await? {
        if tx.send(bytes).await.is_err() {
            break;
        }
    }
    drop(rows);
    drop(tx);
    parser.await.map_err(|e| corrupt(e.to_string()))?
}

/// Cuts the serialiser's output into chunks sent to the storing task.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the storing task stopped"))
    }
}

/// Reads chunks as one byte stream.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(next) => {
                    self.chunk = next;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(version: u64) -> SnapshotData {
        // Enough people to span several chunks.
        SnapshotData {
            version,
            issued_at: Timestamp(5),
            time_zone: None,
            people: (1..=20_000)
                .map(|p| tobira_firmware::Person {
                    id: tobira_firmware::PersonId(p),
                    kind: tobira_firmware::PersonKind::Staff,
                    grants: vec![],
                    enrollments: vec![],
                })
                .collect(),
            ..SnapshotData::default()
        }
    }

    #[tokio::test]
    async fn a_snapshot_survives_a_restart_whole() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::state::open(&dir.path().join("c.sqlite"))
            .await
            .unwrap();
        let store = PolicyStore::load(pool.clone()).await.unwrap();
        assert_eq!(store.version(), 0);
        store
            .replace(Snapshot::new(big(3)).unwrap(), Timestamp(10), true)
            .await
            .unwrap();
        store
            .replace(Snapshot::new(big(4)).unwrap(), Timestamp(20), false)
            .await
            .unwrap();
        let (chunks,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM policy_chunks")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(chunks > 1, "{chunks} chunks");
        let again = PolicyStore::load(pool.clone()).await.unwrap();
        let current = again.current();
        assert_eq!(current.snapshot.version(), 4);
        assert_eq!(
            current.snapshot.data(),
            Snapshot::new(big(4)).unwrap().data()
        );
        assert_eq!(
            current.confirmed_at,
            Timestamp(10),
            "a file load does not confirm"
        );
        // A damaged chunk gives an empty policy (doors shut), not a refusal to start.
        sqlx::query("UPDATE policy_chunks SET bytes = x'7b7b7b' WHERE n = 1")
            .execute(&pool)
            .await
            .unwrap();
        let damaged = PolicyStore::load(pool).await.unwrap();
        assert_eq!(damaged.version(), 0);
    }
}
