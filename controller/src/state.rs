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

/// Copies the write-ahead log into the database file without blocking
/// readers or writers. The daemon calls it when the doors are quiet and at
/// shutdown, so checkpoints never run inside a door's commit.
pub async fn checkpoint(pool: &SqlitePool) -> Result<(), StateError> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(pool)
        .await?;
    Ok(())
}
