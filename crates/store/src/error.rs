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
    use super::redact_url;

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
