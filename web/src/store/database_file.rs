//! The central's files that hold personal data (the SQLite database,
//! backups, retention archives): created readable and writable by their owner
//! only, so that the database's write-ahead log and shared-memory files are too.

use std::path::Path;

use super::StoreError;

/// The file a `sqlite:` URL names, if it names one (not `:memory:` nor a
/// `mode=memory` database).
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!memory).then_some(path)
}

/// Creates the database file empty with mode 0600 unless it exists. SQLite
/// gives the `-wal` and `-shm` files it creates the mode of the database file,
/// so none of the three is readable by group or others (SQLite itself would
/// create them with the process umask, usually 0644).
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    match create_new_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a new file with mode 0600 for writing; an existing file is an
/// error (a backup or an archive never overwrites one).
pub(crate) fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// A file operation's failure as the store reports it: what was being done.
pub(crate) fn io_error(what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Invalid(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files_or_memory() {
        assert_eq!(sqlite_path("sqlite:///var/c.db"), Some("/var/c.db"));
        assert_eq!(sqlite_path("sqlite://c.db?mode=rwc"), Some("c.db"));
        assert_eq!(sqlite_path("sqlite:c.db"), Some("c.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://x?mode=memory"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
