//! The central SQLite database file: created readable and writable by its
//! owner only, so that its write-ahead log and shared-memory files are too.

use std::path::Path;

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
