//! The central store: one SQL schema on SQLite (embedded default) or PostgreSQL,
//! the policy version counter and change log, and the hash-chained admin audit.
//!
//! Both backends run the same SQL: placeholders are `$1, $2, …` in order of
//! appearance (valid in both), times are BIGINT milliseconds, flags 0/1.

pub mod alarms;
pub mod approvals;
pub mod audit;
pub mod audit_search;
pub mod auth;
pub mod backup;
pub mod browse;
pub mod chain;
pub mod chains;
pub mod checkpoints;
mod database_file;
pub mod events;
pub mod history;
mod ids;
pub mod import;
pub mod lockdowns;
pub mod monitor;
pub mod muster;
pub mod passages;
pub mod policy;
pub mod presence;
pub mod queries;
pub mod recertification;
pub mod reports;
pub mod resources;
pub mod retention;
pub mod reviews;
pub mod sessions;
pub mod siem;
pub mod trust;
pub mod users;
pub mod verify;

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file, WAL mode.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule would break (the message names the clashing key), or
    /// the row is still referred to.
    #[error("{0}")]
    Conflict(String),
    /// The request refers to a row that does not exist, e.g. `no person 99`.
    #[error("{0}")]
    MissingReference(String),
    /// A combination of settings that the level rules make meaningless
    /// (`docs/security-levels.md`, "Combinations refused").
    #[error("{0}")]
    Meaningless(String),
    /// A value the store refuses.
    #[error("{0}")]
    Invalid(String),
    /// The database URL is not one we support.
    #[error("unsupported database URL (use sqlite://FILE or postgres://…)")]
    Url,
    /// The database server did not answer in time.
    #[error("no answer from the database server at {0} within {1} s")]
    Unreachable(String, u64),
    /// Database failure (logged, never shown to clients).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migration failure.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored JSON that does not parse: the database was edited by hand.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The SQLite database file cannot be created.
    #[error("database file {0}: {1}")]
    File(String, String),
    /// Who asks may not do this, whatever the data: deciding their own
    /// change, or deciding one without being an admin.
    #[error("{0}")]
    NotAllowed(String),
}

impl StoreError {
    /// Maps a constraint violation to what it means, with `what` as the
    /// message: a foreign key to `MissingReference`, a uniqueness or check
    /// rule to `Conflict`. Writers check their references and keys first, so
    /// that the message can name the row; this is the backstop for a row that
    /// went away meanwhile.
    pub fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_foreign_key_violation() {
                return StoreError::MissingReference(what.to_string());
            }
            if db.is_unique_violation() || db.is_check_violation() {
                return StoreError::Conflict(what.to_string());
            }
        }
        StoreError::Database(e)
    }

    /// Maps a foreign-key violation of a delete (the row is still referred
    /// to) to `Conflict`, with `in_use` as the message.
    pub fn in_use_or(e: sqlx::Error, in_use: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_foreign_key_violation() {
                return StoreError::Conflict(in_use.to_string());
            }
        }
        StoreError::Database(e)
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the epoch, now. The store stamps rows with it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// UTC text of a time in milliseconds since the epoch: `2027-01-15T08:00:00Z`.
pub fn utc_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// How long the first connection to PostgreSQL may take before the service
/// gives up with a clear error (sqlx would otherwise retry for 30 s, silently).
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The central store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Writes go here: on SQLite one connection, so that transactions never
    /// need to upgrade a read lock (which WAL mode refuses instead of waiting).
    writer: AnyPool,
    backend: Backend,
    versions: tokio::sync::watch::Sender<PolicyVersion>,
    /// Controllers that checked in since this process started and have not
    /// been found offline since: their next contact is not a "connect".
    online: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    /// Bumped when an enrollment job is queued (wakes the controllers' long-polls).
    jobs: tokio::sync::watch::Sender<u64>,
    /// Bumped when events are stored or alarms change (wakes the live monitor).
    activity: tokio::sync::watch::Sender<u64>,
    /// Each ingested batch's range, for the live monitor to read.
    stored: tokio::sync::broadcast::Sender<events::StoredRange>,
}

/// The current policy version and whether the last change was urgent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Version number.
    pub version: u64,
    /// The newest version that carried an urgent change (lost card, threat level).
    pub last_urgent: u64,
}

/// What a policy change touches; decides whether a delta can carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeScope {
    /// A card (state, validity, owner).
    Card,
    /// A person (kind, group membership, enrollments).
    Person,
    /// Bookings.
    Booking,
    /// A threat level.
    Threat,
    /// Zones, doors, grants, schedules, holidays, controllers: full snapshot.
    Structure,
}

impl ChangeScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Person => "person",
            Self::Booking => "booking",
            Self::Threat => "threat",
            Self::Structure => "structure",
        }
    }

    fn parse(s: &str) -> ChangeScope {
        match s {
            "card" => Self::Card,
            "person" => Self::Person,
            "booking" => Self::Booking,
            "threat" => Self::Threat,
            _ => Self::Structure,
        }
    }
}

/// One direct connection attempt with a deadline, so that an unreachable or
/// misconfigured server is reported at once, with its cause.
async fn probe(options: &AnyConnectOptions) -> StoreResult<()> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let server = options
        .database_url
        .host_str()
        .map(|h| match options.database_url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
        .unwrap_or_default();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Database(e)),
        Err(_) => Err(StoreError::Unreachable(server, CONNECT_TIMEOUT.as_secs())),
    }
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url);
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        if let Some(file) = database_file::sqlite_path(&url) {
            database_file::create_private(std::path::Path::new(file))
                .map_err(|e| StoreError::File(file.to_owned(), e.to_string()))?;
        }
        let options = AnyConnectOptions::from_str(&url)?;
        if backend == Backend::Postgres {
            probe(&options).await?;
        }
        let pool = Self::pool_options(
            backend,
            match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            },
        )
        .connect_with(options.clone())
        .await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL;").await?;
        }
        let writer = match backend {
            Backend::Sqlite => Self::pool_options(backend, 1).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        match backend {
            Backend::Sqlite => {
                sqlx::migrate!("../migrations/sqlite").run(&writer).await?;
                ids::never_reuse_sqlite_ids(&writer).await?;
            }
            Backend::Postgres => {
                sqlx::migrate!("../migrations/postgres")
                    .run(&writer)
                    .await?
            }
        }
        let (versions, _) = tokio::sync::watch::channel(PolicyVersion::default());
        let (jobs, _) = tokio::sync::watch::channel(0);
        let (activity, _) = tokio::sync::watch::channel(0);
        // Sized for bursts of small batches; a monitor that falls further
        // behind reads what it missed from the table.
        let (stored, _) = tokio::sync::broadcast::channel(4096);
        let store = Store {
            pool,
            writer,
            backend,
            versions,
            online: std::sync::Arc::default(),
            jobs,
            activity,
            stored,
        };
        let current = store.load_policy_version().await?;
        store.versions.send_replace(current);
        Ok(store)
    }

    /// The set of controllers online since start (see [`Store::online`]).
    pub(crate) fn online(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<i64>> {
        // A panic elsewhere while holding it leaves a plain set: still usable.
        self.online
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pool_options(backend: Backend, size: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(size)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Per connection: enforce references, wait for the writer
                        // instead of failing, fsync at checkpoints (WAL), and a
                        // 64 MiB page cache: the event indexes outgrow the 2 MiB
                        // default quickly, and every insert then misses it. A
                        // 64 MiB WAL between checkpoints: index pages rewritten by
                        // several batches are copied back once (+33 % ingest).
                        conn.execute(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 16384;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
    }

    /// The pool for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.writer.begin().await?)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The placeholder for the `n`th (1-based) parameter of a generated statement.
    /// SQLite gets a plain positional `?`: sqlx resolves `$N` names one by one,
    /// which made statements with thousands of parameters thirty times slower.
    pub fn param(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// Closes the pool (waits for connections to finish).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn load_policy_version(&self) -> StoreResult<PolicyVersion> {
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM policy_changes")
            .fetch_one(&self.pool)
            .await?;
        let urgent: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM policy_changes WHERE urgent = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(PolicyVersion {
            version: version.unwrap_or(0).max(0) as u64,
            last_urgent: urgent.unwrap_or(0).max(0) as u64,
        })
    }

    /// The current policy version.
    pub fn policy_version(&self) -> PolicyVersion {
        *self.versions.borrow()
    }

    /// Watches for stored events and changed alarms (for the live monitor).
    pub fn watch_activity(&self) -> tokio::sync::watch::Receiver<u64> {
        self.activity.subscribe()
    }

    /// Tells the live monitor that events were stored or alarms changed.
    pub(crate) fn note_activity(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Each batch of events as it is stored (for the live monitor).
    pub fn subscribe_stored(&self) -> tokio::sync::broadcast::Receiver<events::StoredRange> {
        self.stored.subscribe()
    }

    pub(crate) fn note_stored(&self, range: events::StoredRange) {
        // No monitor listening is no error.
        let _ = self.stored.send(range);
    }

    /// Watches policy versions (for the controllers' long-poll).
    pub fn watch_versions(&self) -> tokio::sync::watch::Receiver<PolicyVersion> {
        self.versions.subscribe()
    }

    /// How many policy watchers (controllers' long-polls) are parked on the
    /// version channel now. A watcher counts from the moment it subscribes, so
    /// any change published after that wakes it.
    pub fn policy_watchers(&self) -> usize {
        self.versions.receiver_count()
    }

    /// Records a policy change inside `tx` and returns the new version. Call
    /// [`Store::publish`] after the transaction commits.
    pub async fn record_change(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        scope: ChangeScope,
        subject: &str,
        urgent: bool,
    ) -> StoreResult<u64> {
        // The row lock of the insert serialises concurrent changes; a clash on
        // the primary key (two writers read the same MAX) retries.
        for _ in 0..5 {
            let next: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM policy_changes")
                    .fetch_one(&mut **tx)
                    .await?;
            let inserted = sqlx::query(
                "INSERT INTO policy_changes (version, at, scope, subject, urgent) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING",
            )
            .bind(next)
            .bind(now_ms())
            .bind(scope.as_str())
            .bind(subject)
            .bind(i64::from(urgent))
            .execute(&mut **tx)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(next as u64);
            }
        }
        Err(StoreError::Conflict(
            "policy is being changed concurrently; try again".into(),
        ))
    }

    /// Tells watchers about a committed change.
    pub fn publish(&self, version: u64, urgent: bool) {
        self.versions.send_modify(|v| {
            v.version = v.version.max(version);
            if urgent {
                v.last_urgent = v.last_urgent.max(version);
            }
        });
    }

    /// Scopes changed after `since`, oldest first, and the oldest version kept.
    pub async fn changes_since(&self, since: u64) -> StoreResult<Vec<(u64, ChangeScope, bool)>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, scope, urgent FROM policy_changes WHERE version > $1 ORDER BY version",
        )
        .bind(since as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(v, s, u)| (v as u64, ChangeScope::parse(&s), u == 1))
            .collect())
    }
}
