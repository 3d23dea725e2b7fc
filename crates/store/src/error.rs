//! The one error type of the crate.

/// What went wrong in the store. Messages name the operation; the driver's error stays in `source`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or connected to. `url` has any password removed.
    #[error("cannot open store {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported store URL {url}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl { url: String },
    /// Applying the embedded schema migrations failed.
    #[error("store schema migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed; `what` names the operation (`"claim job"`, `"put result"`, …).
    #[error("store query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The job is no longer leased to this worker (its lease expired and another worker took it,
    /// or it already finished). The caller must drop its work on the job.
    #[error("job {job} is no longer leased to worker {worker}")]
    LeaseLost { job: i64, worker: String },
    /// No job with this id.
    #[error("job {job} not found")]
    NotFound { job: i64 },
    /// A worker resolved a digest for a job that already has another one.
    #[error("job {job} is for digest {stored}, not {resolved}")]
    DigestMismatch {
        job: i64,
        stored: String,
        resolved: String,
    },
    /// The notification is no longer leased to this worker (its lease expired and another worker
    /// took it, or it was already delivered). The caller must not record an outcome for it.
    #[error("notification {notification} is no longer leased to worker {worker}")]
    NotificationLeaseLost { notification: i64, worker: String },
    /// No notification with this id.
    #[error("notification {notification} not found")]
    NotificationNotFound { notification: i64 },
    /// A row holds a value this version does not understand (written by a newer Gantry, or edited by hand).
    #[error("unexpected value {value:?} in store column {column}")]
    Corrupt { column: &'static str, value: String },
    /// A document is larger than the store keeps for one image (`stored-document-bytes`).
    #[error(
        "the {what} of {digest} is {bytes} bytes, over the limit stored-document-bytes={limit}"
    )]
    TooLarge {
        what: &'static str,
        digest: String,
        bytes: usize,
        limit: usize,
    },
}

impl StoreError {
    /// Whether the same operation may succeed if tried again later.
    ///
    /// Transient: the database could not be reached or was busy — connection loss, I/O,
    /// TLS, pool time-outs, SQLite busy/locked/full/read-only, Postgres connection,
    /// serialization, resource and operator-intervention errors. A lost lease is transient
    /// too (another worker holds the job). Everything about the *data* is permanent: a
    /// value too big, a constraint violation, a type or encoding error, a corrupt row, and
    /// anything not known to be transient — retrying those only repeats the cost.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => {
                sqlx_transient(source)
            }
            StoreError::Migrate(
                sqlx::migrate::MigrateError::Execute(source)
                | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
            ) => sqlx_transient(source),
            StoreError::LeaseLost { .. } | StoreError::NotificationLeaseLost { .. } => true,
            StoreError::UnsupportedUrl { .. }
            | StoreError::Migrate(_)
            | StoreError::NotFound { .. }
            | StoreError::DigestMismatch { .. }
            | StoreError::NotificationNotFound { .. }
            | StoreError::Corrupt { .. }
            | StoreError::TooLarge { .. } => false,
        }
    }
}

/// Whether a driver error is about reaching the database rather than about the statement.
fn sqlx_transient(e: &sqlx::Error) -> bool {
    use sqlx::Error;
    match e {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed
        | Error::BeginFailed => true,
        Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_transient(pg.code())
            } else {
                db.code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(sqlite_transient)
            }
        }
        _ => false,
    }
}

/// SQLite result codes (the primary code is the low byte of the extended one): busy (5),
/// locked (6), out of memory (7), read-only (8), interrupted (9), I/O (10), disk full (13),
/// cannot open (14), lock protocol (15). `SQLITE_TOOBIG` (18), `SQLITE_CONSTRAINT` (19),
/// `SQLITE_MISMATCH` (20) and the rest are about the statement or its data.
fn sqlite_transient(extended: i32) -> bool {
    matches!(extended & 0xff, 5..=10 | 13..=15)
}

/// Postgres SQLSTATE: classes 08 (connection), 40 (serialization failure, deadlock),
/// 53 (insufficient resources), 57 (operator intervention: shutdown, statement timeout),
/// 58 (system error, I/O), and 55P03 (lock not available). Class 22 (data exception), 23
/// (integrity constraint), 54 (program limit exceeded, e.g. a value too large) and the rest
/// are permanent.
fn postgres_transient(sqlstate: &str) -> bool {
    ["08", "40", "53", "57", "58"]
        .iter()
        .any(|class| sqlstate.starts_with(class))
        || sqlstate == "55P03"
}

/// Attaches the operation name to a driver error.
pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// `url` with the password of its user-info part replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &userinfo[..colon],
        &rest[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::{postgres_transient, redact_url, sqlite_transient};

    #[test]
    fn result_codes_are_classified() {
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_IOERR_WRITE, SQLITE_FULL.
        for code in [5, 517, 6, 778, 13] {
            assert!(sqlite_transient(code), "{code}");
        }
        // SQLITE_TOOBIG, SQLITE_CONSTRAINT_UNIQUE, SQLITE_MISMATCH, SQLITE_ERROR.
        for code in [18, 2067, 20, 1] {
            assert!(!sqlite_transient(code), "{code}");
        }
        for state in [
            "08006", "40001", "40P01", "53100", "57014", "57P01", "55P03",
        ] {
            assert!(postgres_transient(state), "{state}");
        }
        for state in ["23505", "22001", "54000", "42P01", "XX000"] {
            assert!(!postgres_transient(state), "{state}");
        }
    }

    #[test]
    fn password_is_removed_from_postgres_url() {
        assert_eq!(
            redact_url("postgres://gantry:s3cr%40t@db:5432/gantry?sslmode=require"),
            "postgres://gantry:***@db:5432/gantry?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://gantry@db/gantry"),
            "postgres://gantry@db/gantry"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/gantry/gantry.db?mode=rwc"),
            "sqlite:///var/lib/gantry/gantry.db?mode=rwc"
        );
        assert_eq!(redact_url("sqlite:gantry.db"), "sqlite:gantry.db");
    }
}
