//! Opening the database: SQLite (embedded default) or Postgres (several replicas), one schema each.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, SqlSafeStr, Sqlite, Transaction};

use crate::error::{StoreError, query, redact_url};

/// How long an SQLite connection waits for another writer before giving up. Writers hold the
/// lock for one short transaction (a claim, an enqueue, a result); ten seconds absorbs a burst of
/// webhook enqueues and eight workers claiming at once with a wide margin.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per SQLite pool: readers run in parallel under WAL, writers queue on the lock.
const SQLITE_MAX_CONNECTIONS: u32 = 16;

/// Connections per Postgres pool (per replica): workers plus API readers, well under the
/// server's default `max_connections` of 100 even with several replicas.
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Handle on the database. Cheap to clone (the pool is shared); every method is a short
/// transaction, so a handle can be used from any number of tasks.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Backend>,
    /// SQLite takes one writer at a time; a writer that finds the lock taken sleeps in SQLite's
    /// busy handler in steps of up to 100 ms. Queueing this process's writers here instead
    /// turns that tail into a wait of one short transaction (docs/benchmarks.md, webhook
    /// intake). Other processes on the same file still meet the busy handler.
    writers: Arc<tokio::sync::Mutex<()>>,
    /// Largest JSON document [`Store::put_scan`] writes ([`MAX_DOCUMENT_BYTES`] unless set).
    pub(crate) max_document_bytes: usize,
}

/// Largest report, verdict or SBOM stored for one image (`stored-document-bytes`). Default
/// 192 MiB: an image at the scan's package cap (`image-packages`, 100,000) has a report of
/// ~36 MB and a (pretty-printed) SBOM of ~136 MB, and a real image with a few thousand
/// packages a few MB of each. It stays well below what the databases refuse themselves
/// (SQLite's `SQLITE_MAX_LENGTH` of 1e9 bytes, Postgres' 1 GiB per value), so an oversized
/// document is refused here, with a clear error, before it reaches the database, its WAL or
/// a retry loop.
pub const MAX_DOCUMENT_BYTES: usize = 192 << 20;

#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend. The body is compiled
/// once per backend, so the same SQL text and row decoding serve both (parameters are `$1`,
/// which SQLite accepts too; every integer is a 64-bit integer in both schemas).
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &*$store.inner {
            $crate::db::Backend::Sqlite($pool) => $body,
            $crate::db::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// What differs between the backends beyond SQL text shared by both.
pub(crate) trait Dialect {
    type Db: sqlx::Database;
    /// Takes the oldest ready job: `$1` worker, `$2` lease end, `$3` now, `$4` max attempts (a
    /// job whose lease expired on its last attempt is not taken again).
    const CLAIM_SQL: &'static str;
    /// Takes the oldest ready notification: `$1` worker, `$2` lease end, `$3` now.
    const CLAIM_NOTIFICATION_SQL: &'static str;
    /// A transaction that will write: SQLite takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so a read followed by a write cannot fail with a stale snapshot.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
    /// Serialises transactions on `key` until commit (Postgres advisory lock; SQLite already
    /// holds the database write lock).
    async fn lock_key(
        &self,
        tx: &mut Transaction<'static, Self::Db>,
        key: &str,
    ) -> Result<(), sqlx::Error>;
}

impl Dialect for SqlitePool {
    type Db = Sqlite;
    const CLAIM_SQL: &'static str = "UPDATE jobs SET status = 'running', worker = $1, lease_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE id = (SELECT id FROM jobs \
                     WHERE (status = 'queued' AND not_before <= $3) \
                        OR (status = 'running' AND lease_until < $3 AND attempts < $4) \
                     ORDER BY id LIMIT 1) \
         RETURNING id, image_ref, digest, event_id, source, policy_digest, scope, pull_secrets, \
         attempts, lease_until";
    const CLAIM_NOTIFICATION_SQL: &'static str = "UPDATE notifications SET status = 'delivering', \
         worker = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE id = (SELECT id FROM notifications \
                     WHERE (status = 'queued' AND not_before <= $3) \
                        OR (status = 'delivering' AND lease_until < $3) \
                     ORDER BY id LIMIT 1) \
         RETURNING id, payload_json, attempts";

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }

    async fn lock_key(
        &self,
        _: &mut Transaction<'static, Sqlite>,
        _: &str,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Dialect for PgPool {
    type Db = Postgres;
    const CLAIM_SQL: &'static str = "UPDATE jobs SET status = 'running', worker = $1, lease_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE id = (SELECT id FROM jobs \
                     WHERE (status = 'queued' AND not_before <= $3) \
                        OR (status = 'running' AND lease_until < $3 AND attempts < $4) \
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, image_ref, digest, event_id, source, policy_digest, scope, pull_secrets, \
         attempts, lease_until";
    const CLAIM_NOTIFICATION_SQL: &'static str = "UPDATE notifications SET status = 'delivering', \
         worker = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE id = (SELECT id FROM notifications \
                     WHERE (status = 'queued' AND not_before <= $3) \
                        OR (status = 'delivering' AND lease_until < $3) \
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, payload_json, attempts";

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }

    async fn lock_key(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        key: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key)
            .execute(&mut **tx)
            .await
            .map(|_| ())
    }
}

/// The schema, one migration per file; a database is brought from whatever version it has to
/// the last one on open.
fn migrator(sqlite: bool) -> Migrator {
    let files: [(i64, &'static str, &'static str); 4] = if sqlite {
        [
            (
                1,
                "init",
                include_str!("../migrations/sqlite/0001_init.sql"),
            ),
            (
                2,
                "notifications",
                include_str!("../migrations/sqlite/0002_notifications.sql"),
            ),
            (
                3,
                "facts_and_verdicts",
                include_str!("../migrations/sqlite/0003_facts_and_verdicts.sql"),
            ),
            (
                4,
                "base_freshness",
                include_str!("../migrations/sqlite/0004_base_freshness.sql"),
            ),
        ]
    } else {
        [
            (
                1,
                "init",
                include_str!("../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "notifications",
                include_str!("../migrations/postgres/0002_notifications.sql"),
            ),
            (
                3,
                "facts_and_verdicts",
                include_str!("../migrations/postgres/0003_facts_and_verdicts.sql"),
            ),
            (
                4,
                "base_freshness",
                include_str!("../migrations/postgres/0004_base_freshness.sql"),
            ),
        ]
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    /// Opens (creating if the URL allows) the database at `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH?mode=rwc` (or `sqlite:PATH…`): WAL journal, `synchronous=NORMAL`, a busy
    ///   timeout; one process or several on one machine.
    /// - `postgres://USER:PASSWORD@HOST/DB` (or `postgresql://`): several replicas share the queue.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            // Created when missing, as the embedded default is — unless the URL says how to
            // open it (`?mode=ro`, `?mode=rw`), which is then taken as written.
            let options =
                SqliteConnectOptions::from_str(url).map_err(|source| open_error(url, source))?;
            let options = if url.contains("mode=") {
                options
            } else {
                options.create_if_missing(true)
            };
            Store::open_sqlite_with(options, url).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options =
                PgConnectOptions::from_str(url).map_err(|source| open_error(url, source))?;
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .connect_with(options)
                .await
                .map_err(|source| open_error(url, source))?;
            migrator(false)
                .run(&pool)
                .await
                .map_err(StoreError::Migrate)?;
            Ok(Store {
                inner: Arc::new(Backend::Postgres(pool)),
                writers: Arc::default(),
                max_document_bytes: MAX_DOCUMENT_BYTES,
            })
        } else {
            Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            })
        }
    }

    /// Opens the SQLite database file at `path`, creating it if missing (no URL escaping to get wrong).
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Store::open_sqlite_with(options, &path.display().to_string()).await
    }

    async fn open_sqlite_with(
        options: SqliteConnectOptions,
        shown: &str,
    ) -> Result<Store, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL under WAL: a commit survives a process crash; only an OS crash or power
            // loss can drop the last transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|source| open_error(shown, source))?;
        migrator(true)
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(Store {
            inner: Arc::new(Backend::Sqlite(pool)),
            writers: Arc::default(),
            max_document_bytes: MAX_DOCUMENT_BYTES,
        })
    }

    /// Held by every method that writes, for as long as it writes (SQLite only; Postgres
    /// queues writers on row locks itself).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &*self.inner {
            Backend::Sqlite(_) => Some(self.writers.lock().await),
            Backend::Postgres(_) => None,
        }
    }

    /// This handle with another limit on the size of each stored document (report, verdict,
    /// SBOM), in bytes; see [`MAX_DOCUMENT_BYTES`].
    pub fn with_max_document_bytes(mut self, bytes: usize) -> Store {
        self.max_document_bytes = bytes;
        self
    }

    /// The limit on each stored document, in bytes.
    pub fn max_document_bytes(&self) -> usize {
        self.max_document_bytes
    }

    /// Which backend this store runs on: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match &*self.inner {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers (`SELECT 1`), for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(query("ping"))
        })
    }

    /// Closes every pooled connection (SQLite checkpoints its WAL on the last close).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

fn open_error(url: &str, source: sqlx::Error) -> StoreError {
    StoreError::Open {
        url: redact_url(url),
        source,
    }
}

/// Now, in Unix milliseconds, from this process's clock. Leases compare times written by
/// different replicas, so their clocks must agree to well within a lease (NTP does that).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `d` in milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
