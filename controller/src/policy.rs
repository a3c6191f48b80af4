//! The policy cache: the current snapshot in memory, persisted as a file named in SQLite, replaced atomically.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
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
///
/// On disk: the snapshot is streamed to `policy-<version>-<ms>.json.tmp`,
/// synced, renamed, and only then named in the `policy` row (one
/// transaction); the previous file is deleted after that commit. A crash at
/// any point leaves the row naming a complete file.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    pool: SqlitePool,
    dir: PathBuf,
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
    /// Loads the cached snapshot from `dir`, if any. An empty cache gives an
    /// empty version-0 snapshot: every card is unknown and every door stays
    /// shut. So does an unreadable one — logged as an error — because a
    /// controller that refused to start would leave maglocks unpowered (open).
    pub async fn load(pool: SqlitePool, dir: &Path) -> Result<Self, StateError> {
        let row: Option<(i64, i64, String)> =
            sqlx::query_as("SELECT stored_at, confirmed_at, file FROM policy WHERE id = 1")
                .fetch_optional(&pool)
                .await?;
        let empty = || -> Result<Current, StateError> {
            Ok(Current {
                snapshot: Arc::new(empty_snapshot()?),
                stored_at: Timestamp(0),
                confirmed_at: Timestamp(0),
            })
        };
        let current = match row {
            Some((stored_at, confirmed_at, file)) => {
                let path = dir.join(&file);
                match tokio::task::spawn_blocking(move || read_snapshot(&path)).await {
                    Ok(Ok(snapshot)) => Current {
                        snapshot: Arc::new(snapshot),
                        stored_at: Timestamp(stored_at),
                        confirmed_at: Timestamp(confirmed_at),
                    },
                    Ok(Err(e)) => {
                        tracing::error!(file = %file, error = %e, "cached policy unreadable; starting with none (every door shut) until the central service sends one");
                        empty()?
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "loading the cached policy failed");
                        empty()?
                    }
                }
            }
            None => empty()?,
        };
        let (tx, _) = watch::channel(current);
        let store = Self {
            pool,
            dir: dir.to_owned(),
            current: Arc::new(tx),
        };
        store.remove_stale_files().await;
        Ok(store)
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
        let version = snapshot.version();
        let file = format!("policy-{version}-{}.json", now.0);
        {
            let snapshot = Arc::clone(&snapshot);
            let path = self.dir.join(&file);
            tokio::task::spawn_blocking(move || write_snapshot(&path, snapshot.data()))
                .await
                .map_err(|e| corrupt(e.to_string()))??;
        }
        let old: Option<(String,)> = sqlx::query_as("SELECT file FROM policy WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO policy (id, version, issued_at, stored_at, confirmed_at, file)
             VALUES (1, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version,
                 issued_at = excluded.issued_at, stored_at = excluded.stored_at,
                 confirmed_at = excluded.confirmed_at, file = excluded.file",
        )
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(snapshot.issued_at().0)
        .bind(now.0)
        .bind(confirmed.0)
        .bind(&file)
        .execute(&self.pool)
        .await?;
        if let Some((old,)) = old.filter(|(old,)| *old != file) {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
        self.current.send_replace(Current {
            snapshot,
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

    /// Deletes snapshot files no row names (left by a crash mid-replace).
    async fn remove_stale_files(&self) {
        let named: Option<(String,)> = sqlx::query_as("SELECT file FROM policy WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .unwrap_or(None);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("policy-")
                && (name.ends_with(".json") || name.ends_with(".json.tmp"));
            if ours && named.as_ref().is_none_or(|(n,)| *n != name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn corrupt(detail: String) -> StateError {
    StateError::Corrupt {
        what: "policy snapshot",
        detail,
    }
}

/// Streams the snapshot to `path` through a temporary file: written, synced,
/// renamed, directory synced.
fn write_snapshot(path: &Path, data: &SnapshotData) -> Result<(), StateError> {
    let io = |e: std::io::Error| corrupt(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("json.tmp");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    serde_json::to_writer(&mut out, data).map_err(|e| corrupt(e.to_string()))?;
    out.flush().map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

fn read_snapshot(path: &Path) -> Result<Snapshot, StateError> {
    let file =
        std::fs::File::open(path).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
    let data: SnapshotData = serde_json::from_reader(BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| corrupt(e.to_string()))?;
    Snapshot::new(data).map_err(|e| corrupt(e.to_string()))
}

fn empty_snapshot() -> Result<Snapshot, StateError> {
    Snapshot::new(SnapshotData::default()).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(version: u64) -> SnapshotData {
        SnapshotData {
            version,
            issued_at: Timestamp(5),
            ..SnapshotData::default()
        }
    }

    #[tokio::test]
    async fn a_snapshot_survives_a_restart_and_leftovers_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::state::open(&dir.path().join("c.sqlite"))
            .await
            .unwrap();
        let store = PolicyStore::load(pool.clone(), dir.path()).await.unwrap();
        assert_eq!(store.version(), 0);
        store
            .replace(Snapshot::new(data(3)).unwrap(), Timestamp(10), true)
            .await
            .unwrap();
        store
            .replace(Snapshot::new(data(4)).unwrap(), Timestamp(20), false)
            .await
            .unwrap();
        // A crash mid-replace leaves a temporary file behind.
        std::fs::write(dir.path().join("policy-5-30.json.tmp"), "{\"vers").unwrap();
        let again = PolicyStore::load(pool.clone(), dir.path()).await.unwrap();
        let current = again.current();
        assert_eq!(current.snapshot.version(), 4);
        assert_eq!(
            current.confirmed_at,
            Timestamp(10),
            "a file load does not confirm"
        );
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("policy-"))
            .collect();
        assert_eq!(files, ["policy-4-20.json"]);
        // A damaged file gives an empty policy (doors shut), not a refusal to start.
        std::fs::write(dir.path().join("policy-4-20.json"), "garbage").unwrap();
        let damaged = PolicyStore::load(pool, dir.path()).await.unwrap();
        assert_eq!(damaged.version(), 0);
    }
}
