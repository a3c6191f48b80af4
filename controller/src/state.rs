//! The controller's SQLite state database: opening it durably and running its migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Errors of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite refused.
    #[error("state database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The state database file cannot be created.
    #[error("state database file {0}: {1}")]
    File(String, std::io::Error),
    /// A stored row could not be read back.
    #[error("state database holds an unreadable {what}: {detail}")]
    Corrupt {
        /// Which row.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The stored chain belongs to another controller.
    #[error("state database belongs to controller {found}, this is controller {expected}")]
    WrongController {
        /// Configured id.
        expected: u32,
        /// Stored id.
        found: i64,
    },
}

/// Opens (creating if needed) the state database at `path`.
///
/// WAL with `synchronous=FULL`: a commit is on disk when it returns, which is
/// what "the event is recorded before the relay fires" needs across a power cut.
pub async fn open(path: &Path) -> Result<SqlitePool, StateError> {
    create_private(path).map_err(|e| StateError::File(path.display().to_string(), e))?;
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // No automatic checkpoints: SQLite would run them inside whichever
        // commit crosses the threshold, which may be the outbox commit a
        // door is waiting on. `checkpoint` runs them off the decision path.
        .pragma("wal_autocheckpoint", "0");
    // Few connections: the decision loop writes events, the sync client reads
    // and acknowledges them, the policy store replaces the snapshot.
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .connect_with(options)
        .await?;
    sqlx::migrate!("../migrations/controller")
        .run(&pool)
        .await?;
    Ok(pool)
}

/// Creates the database file empty with mode 0600 unless it exists: it holds
/// card UIDs and who went where. SQLite gives the `-wal` and `-shm` files the
/// database file's mode, so they are private too (SQLite alone would use the
/// umask, usually 0644).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Copies the write-ahead log into the database file without blocking
/// readers or writers. The daemon calls it when the doors are quiet and at
/// shutdown, so checkpoints never run inside a door's commit.
pub async fn checkpoint(pool: &SqlitePool) -> Result<(), StateError> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_state_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.sqlite");
        let pool = open(&path).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        for file in [
            "controller.sqlite",
            "controller.sqlite-wal",
            "controller.sqlite-shm",
        ] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
    }
}
