//! The policy cache: the current snapshot in memory, persisted in SQLite, replaced atomically.

use std::sync::Arc;

use sqlx::SqlitePool;
use tobira_firmware::{Snapshot, SnapshotData, Timestamp};
use tokio::sync::watch;

use crate::state::StateError;

/// The snapshot the doors decide with, and where it is kept.
///
/// Readers get an `Arc<Snapshot>` and keep deciding with it while a new one is
/// built; [`PolicyStore::replace`] stores the new snapshot on disk first and
/// only then publishes it, so a crash never leaves the door deciding with a
/// policy that would be lost at restart.
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
    pub async fn load(pool: SqlitePool) -> Result<Self, StateError> {
        let row: Option<(i64, i64, String)> =
            sqlx::query_as("SELECT stored_at, confirmed_at, data FROM policy WHERE id = 1")
                .fetch_optional(&pool)
                .await?;
        let current = match row {
            Some((stored_at, confirmed_at, data)) => {
                let data: SnapshotData =
                    serde_json::from_str(&data).map_err(|e| StateError::Corrupt {
                        what: "policy snapshot",
                        detail: e.to_string(),
                    })?;
                let snapshot = Snapshot::new(data).map_err(|e| StateError::Corrupt {
                    what: "policy snapshot",
                    detail: e.to_string(),
                })?;
                Current {
                    snapshot: Arc::new(snapshot),
                    stored_at: Timestamp(stored_at),
                    confirmed_at: Timestamp(confirmed_at),
                }
            }
            None => Current {
                snapshot: Arc::new(empty_snapshot()?),
                stored_at: Timestamp(0),
                confirmed_at: Timestamp(0),
            },
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

    /// Stores `snapshot` (one transaction: the old row or the new, never half),
    /// then makes it the one in force. `confirmed` says whether it came from
    /// the central service just now (a policy file gives no confirmation).
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
        let data = serde_json::to_string(snapshot.data()).map_err(|e| StateError::Corrupt {
            what: "policy snapshot",
            detail: e.to_string(),
        })?;
        let version = i64::try_from(snapshot.version()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO policy (id, version, issued_at, stored_at, confirmed_at, data)
             VALUES (1, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version,
                 issued_at = excluded.issued_at, stored_at = excluded.stored_at,
                 confirmed_at = excluded.confirmed_at, data = excluded.data",
        )
        .bind(version)
        .bind(snapshot.issued_at().0)
        .bind(now.0)
        .bind(confirmed.0)
        .bind(data)
        .execute(&self.pool)
        .await?;
        self.current.send_replace(Current {
            snapshot: Arc::new(snapshot),
            stored_at: now,
            confirmed_at: confirmed,
        });
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

fn empty_snapshot() -> Result<Snapshot, StateError> {
    Snapshot::new(SnapshotData::default()).map_err(|e| StateError::Corrupt {
        what: "empty policy",
        detail: e.to_string(),
    })
}
