//! The event outbox: events numbered, hash-chained and committed to disk before the door acts, kept until the central service acknowledges them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sqlx::SqlitePool;
use tobira_firmware::{
    Chain, ChainEpoch, ChainLink, ControllerId, EventKind, SealedEvent, Timestamp,
};
use tokio::sync::{Mutex, Notify};

use crate::memory::MemoryChange;
use crate::state::StateError;

/// The outbox. Clones share the same chain and database.
#[derive(Debug, Clone)]
pub struct Outbox {
    pool: SqlitePool,
    chain: Arc<Mutex<Chain>>,
    appended: Arc<Notify>,
    /// Milliseconds since `origin` of the last append, for idle detection.
    last_append: Arc<AtomicI64>,
    origin: Instant,
}

impl Outbox {
    /// Opens the outbox and restores the chain position. A fresh database
    /// starts a chain of a new random epoch at its genesis and records it at
    /// once, so the epoch is the state's from its first moment.
    pub async fn open(pool: SqlitePool, controller: ControllerId) -> Result<Self, StateError> {
        let row: Option<(i64, i64, i64, String)> =
            sqlx::query_as("SELECT controller, epoch, next_seq, last_link FROM chain WHERE id = 1")
                .fetch_optional(&pool)
                .await?;
        let chain = match row {
            Some((stored, epoch, next_seq, last_link)) => {
                if stored != i64::from(controller.0) {
                    return Err(StateError::WrongController {
                        expected: controller.0,
                        found: stored,
                    });
                }
                let last: ChainLink = last_link.parse().map_err(|_| StateError::Corrupt {
                    what: "chain link",
                    detail: last_link.clone(),
                })?;
                let next_seq = u64::try_from(next_seq).map_err(|_| StateError::Corrupt {
                    what: "chain sequence number",
                    detail: next_seq.to_string(),
                })?;
                let epoch = u64::try_from(epoch)
                    .ok()
                    .and_then(ChainEpoch::new)
                    .ok_or_else(|| StateError::Corrupt {
                        what: "chain epoch",
                        detail: epoch.to_string(),
                    })?;
                Chain {
                    controller,
                    epoch,
                    next_seq,
                    last,
                }
            }
            None => {
                let chain = Chain::start(controller, ChainEpoch::from_random(rand::random()));
                write_chain(&pool, &chain).await?;
                tracing::info!(controller = controller.0, epoch = %chain.epoch, "new event chain epoch");
                chain
            }
        };
        Ok(Self {
            pool,
            chain: Arc::new(Mutex::new(chain)),
            appended: Arc::new(Notify::new()),
            last_append: Arc::new(AtomicI64::new(0)),
            origin: Instant::now(),
        })
    }

    /// Seals `kinds` in order and commits them with the new chain position in
    /// one transaction. Returns only after the commit is on disk; on any error
    /// nothing was recorded and the chain did not move.
    pub async fn append(
        &self,
        at: Timestamp,
        kinds: Vec<EventKind>,
    ) -> Result<Vec<SealedEvent>, StateError> {
        self.append_with(at, kinds, &MemoryChange::default()).await
    }

    /// As [`Outbox::append`], and writes how the brain's memory changed in
    /// the same transaction: the events and the memory they imply reach the
    /// disk together or not at all.
    pub async fn append_with(
        &self,
        at: Timestamp,
        kinds: Vec<EventKind>,
        memory: &MemoryChange,
    ) -> Result<Vec<SealedEvent>, StateError> {
        if kinds.is_empty() && memory.is_empty() {
            return Ok(Vec::new());
        }
        let mut chain = self.chain.lock().await;
        let mut next = *chain;
        let mut sealed = Vec::with_capacity(kinds.len());
        for kind in kinds {
            sealed.push(next.seal(at, kind).map_err(|e| StateError::Corrupt {
                what: "event",
                detail: e.to_string(),
            })?);
        }
        let mut tx = self.pool.begin().await?;
        for event in &sealed {
            let text = serde_json::to_string(event).map_err(|e| StateError::Corrupt {
                what: "event",
                detail: e.to_string(),
            })?;
            sqlx::query("INSERT INTO outbox (seq, at, event) VALUES (?, ?, ?)")
                .bind(seq_i64(event.event.seq))
                .bind(event.event.at.0)
                .bind(text)
                .execute(&mut *tx)
                .await?;
        }
        write_chain(&mut *tx, &next).await?;
        memory.write(&mut tx, at).await?;
        tx.commit().await?;
        *chain = next;
        drop(chain);
        self.last_append.store(self.elapsed_ms(), Ordering::Relaxed);
        self.appended.notify_one();
        Ok(sealed)
    }

    /// The oldest `limit` unacknowledged events, in sequence order.
    pub async fn pending(&self, limit: usize) -> Result<Vec<SealedEvent>, StateError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT event FROM outbox ORDER BY seq LIMIT ?")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(text,)| {
                serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                    what: "outbox event",
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    /// Deletes every event up to and including `through`, which the central
    /// service has stored. Returns how many were deleted.
    pub async fn acknowledge(&self, through: u64) -> Result<u64, StateError> {
        let done = sqlx::query("DELETE FROM outbox WHERE seq <= ?")
            .bind(seq_i64(through))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// How many events wait for the central service.
    pub async fn depth(&self) -> Result<u64, StateError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The state database the outbox lives in.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The chain position: the next sequence number and the last link.
    pub async fn chain(&self) -> Chain {
        *self.chain.lock().await
    }

    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// How long since the last append (or since opening).
    pub fn idle_for(&self) -> std::time::Duration {
        let ms = self
            .elapsed_ms()
            .saturating_sub(self.last_append.load(Ordering::Relaxed));
        std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// Wakes when events were appended (the sync client pushes promptly).
    pub fn appended(&self) -> Arc<Notify> {
        Arc::clone(&self.appended)
    }
}

/// Records the chain position (its epoch never changes once written).
async fn write_chain<'c>(
    db: impl sqlx::SqliteExecutor<'c>,
    chain: &Chain,
) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO chain (id, controller, epoch, next_seq, last_link) VALUES (1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET next_seq = excluded.next_seq, last_link = excluded.last_link",
    )
    .bind(i64::from(chain.controller.0))
    .bind(seq_i64(chain.epoch.value()))
    .bind(seq_i64(chain.next_seq))
    .bind(chain.last.to_string())
    .execute(db)
    .await?;
    Ok(())
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
