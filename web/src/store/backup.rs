//! Consistent copies of a running SQLite store (`tobira central backup`).

use std::path::{Path, PathBuf};

use sqlx::{Connection as _, Row as _};

use super::database_file::{create_new_private, io_error};
use super::{Backend, Store, StoreError, StoreResult};

/// What a finished backup holds, read back from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Where the copy is.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Access events in the copy.
    pub events: i64,
    /// Admin-audit entries in the copy.
    pub audit_entries: i64,
}

impl Store {
    /// Writes a consistent copy of the SQLite database to `target`, a new
    /// file readable by the owner only, while the service keeps running.
    ///
    /// `VACUUM INTO` reads inside one transaction, so the copy is the database
    /// as of one instant even while controllers upload. The copy is written
    /// next to `target` first and renamed only after SQLite's integrity check
    /// passed on it, so a file at `target` is always a whole, checked backup.
    /// PostgreSQL is refused: its own tools (`pg_dump`, base backups) do this.
    pub async fn backup_to(&self, target: &Path) -> StoreResult<BackupReport> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid(
                "backup copies a SQLite database; for PostgreSQL use pg_dump or a base backup (docs/operations.md)".into(),
            ));
        }
        if target.exists() {
            return Err(StoreError::Conflict(format!(
                "{} exists; a backup never overwrites a file",
                target.display()
            )));
        }
        let partial = partial_name(target);
        let text = partial.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("{} is not a UTF-8 path", target.display()))
        })?;
        // Created empty and owner-only first: VACUUM INTO fills an empty file
        // and keeps its mode, so personal data never sits world-readable.
        create_new_private(&partial)
            .map_err(|e| io_error(&format!("creating {}", partial.display()), &e))?;
        let copied = self.copy_into(text).await;
        let checked = match copied {
            Ok(()) => check_copy(text).await,
            Err(e) => Err(e),
        };
        let (events, audit_entries) = match checked {
            Ok(counts) => counts,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, target)
            .map_err(|e| io_error("renaming the finished backup", &e))?;
        let bytes = std::fs::metadata(target)
            .map_err(|e| io_error("reading the backup's size", &e))?
            .len();
        Ok(BackupReport {
            file: target.to_path_buf(),
            bytes,
            events,
            audit_entries,
        })
    }

    async fn copy_into(&self, file: &str) -> StoreResult<()> {
        sqlx::query("VACUUM INTO $1")
            .bind(file.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// `FILE.partial` beside `FILE`.
fn partial_name(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

/// Opens the copy read-only on its own, runs SQLite's integrity check and
/// counts what it holds.
async fn check_copy(file: &str) -> StoreResult<(i64, i64)> {
    let url = format!("sqlite://{file}?mode=ro");
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    let verdict: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    if verdict != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the copy failed SQLite's integrity check: {verdict}"
        )));
    }
    let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table}");
    let events: i64 = sqlx::query(&count("events"))
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    let audit: i64 = sqlx::query(&count("admin_audit"))
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    conn.close().await?;
    Ok((events, audit))
}
