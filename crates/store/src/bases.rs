//! Base freshness: what the tag each image's base was built from points at now.
//!
//! An image records its base as a reference with a tag and the digest that tag resolved to at
//! build time (`facts.base`). When the tag later points elsewhere, the image was built on a
//! base that has since been replaced (usually with security fixes): it should be rebuilt. The
//! server checks each base tag now and then and records here what it saw; images whose base
//! digest is no longer among what the tag points at are outdated since the first check that
//! saw the tag point elsewhere.

use std::collections::BTreeSet;

use crate::db::{Dialect, Store, now_ms, with_pool};
use crate::error::{StoreError, query};

/// The first time the tag was seen pointing at something other than `$digest`: the earliest
/// first sighting of another digest after `$digest` was last seen (all of them when it was
/// never seen: the image was built before Gantry watched its base); `$fallback` if none. A
/// macro, not a function: the query runs on either backend's connection or transaction (see
/// `with_pool!`), which a generic function over sqlx's executor traits makes unreadable.
macro_rules! outdated_since {
    ($executor:expr, $reference:expr, $digest:expr, $fallback:expr) => {{
        let (since,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(first_seen) FROM base_tags WHERE reference = $1 AND digest <> $2 \
             AND first_seen > COALESCE((SELECT last_seen FROM base_tags \
                 WHERE reference = $1 AND digest = $2), -1)",
        )
        .bind($reference)
        .bind($digest)
        .fetch_one($executor)
        .await
        .map_err(query("read base history"))?;
        since.unwrap_or($fallback)
    }};
}

/// The base an image records, as stored with its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedBase {
    /// `repository:tag`, normalised (`docker.io/library/debian:12`).
    pub reference: String,
    /// The digest the tag resolved to when the image was built.
    pub digest: String,
}

/// What the last check of a base tag saw, as it concerns one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseState {
    pub reference: String,
    /// The digest the image records.
    pub recorded_digest: String,
    /// When the tag was last checked (Unix ms).
    pub checked_at_ms: i64,
    /// What the tag pointed at then (the index or manifest digest).
    pub current_digest: Option<String>,
    /// When Gantry first saw the tag point elsewhere than `recorded_digest`; `None`: it has not.
    pub outdated_since_ms: Option<i64>,
}

/// What one check of a base tag found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseCheck {
    /// The tag resolved: `root` is what it points at; `digests` every digest that counts as
    /// the same base (the root and, for an index, each of its manifests).
    Resolved { root: String, digests: Vec<String> },
    /// The tag could not be resolved (registry down, tag deleted, not allowed): the previous
    /// finding stands.
    Failed { error: String },
}

impl Store {
    /// Base tags recorded by stored images whose last check is older than `checked_before_ms`
    /// (or that were never checked), least recently checked first, at most `limit`.
    pub async fn base_references_due(
        &self,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        const WHAT: &str = "list base tags to check";
        with_pool!(self, pool => {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT r.base_reference FROM reports r \
                 LEFT JOIN base_checks c ON c.reference = r.base_reference \
                 WHERE r.base_reference IS NOT NULL \
                   AND (c.checked_at IS NULL OR c.checked_at < $1) \
                 GROUP BY r.base_reference \
                 ORDER BY MIN(COALESCE(c.checked_at, 0)), r.base_reference LIMIT $2",
            )
            .bind(checked_before_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))?;
            Ok(rows.into_iter().map(|(r,)| r).collect())
        })
    }

    /// Records one check of base tag `reference`, and updates every image built on it: their
    /// outdated-since time is set or cleared, and the verdicts of those whose state changed are
    /// marked due (`valid_until` now) so that they are judged again. Returns the manifest
    /// digests whose state changed.
    pub async fn record_base_check(
        &self,
        reference: &str,
        check: &BaseCheck,
    ) -> Result<Vec<String>, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "record base check";
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            let (root, digests) = match check {
                BaseCheck::Failed { error } => {
                    sqlx::query(
                        "INSERT INTO base_checks (reference, checked_at, current_digest, error) \
                         VALUES ($1, $2, NULL, $3) ON CONFLICT (reference) DO UPDATE SET \
                         checked_at = excluded.checked_at, error = excluded.error",
                    )
                    .bind(reference)
                    .bind(now)
                    .bind(error)
                    .execute(&mut *tx)
                    .await
                    .map_err(query(WHAT))?;
                    tx.commit().await.map_err(query(WHAT))?;
                    return Ok(Vec::new());
                }
                BaseCheck::Resolved { root, digests } => (root, digests),
            };
            sqlx::query(
                "INSERT INTO base_checks (reference, checked_at, current_digest, error) \
                 VALUES ($1, $2, $3, NULL) ON CONFLICT (reference) DO UPDATE SET \
                 checked_at = excluded.checked_at, current_digest = excluded.current_digest, \
                 error = NULL",
            )
            .bind(reference)
            .bind(now)
            .bind(root)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            let current: BTreeSet<&str> = digests
                .iter()
                .map(String::as_str)
                .chain([root.as_str()])
                .collect();
            for digest in &current {
                sqlx::query(
                    "INSERT INTO base_tags (reference, digest, first_seen, last_seen) \
                     VALUES ($1, $2, $3, $3) ON CONFLICT (reference, digest) DO UPDATE SET \
                     last_seen = excluded.last_seen",
                )
                .bind(reference)
                .bind(*digest)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            }
            let images: Vec<(String, String, Option<i64>)> = sqlx::query_as(
                "SELECT manifest_digest, base_digest, base_outdated_since FROM reports \
                 WHERE base_reference = $1",
            )
            .bind(reference)
            .fetch_all(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            let mut changed = Vec::new();
            for (manifest_digest, base_digest, was) in images {
                let since = if current.contains(base_digest.as_str()) {
                    None
                } else {
                    Some(match was {
                        Some(t) => t,
                        None => outdated_since!(&mut *tx, reference, &base_digest, now),
                    })
                };
                if since == was {
                    continue;
                }
                sqlx::query(
                    "UPDATE reports SET base_outdated_since = $2 WHERE manifest_digest = $1",
                )
                .bind(&manifest_digest)
                .bind(since)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
                sqlx::query(
                    "UPDATE verdicts SET valid_until = $2 WHERE manifest_digest = $1 \
                     AND (valid_until IS NULL OR valid_until > $2)",
                )
                .bind(&manifest_digest)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
                changed.push(manifest_digest);
            }
            tx.commit().await.map_err(query(WHAT))?;
            Ok(changed)
        })
    }

    /// What is known about the freshness of `base` now: `None` until its tag was checked
    /// successfully once. For an image about to be stored: its first verdict can say it.
    pub async fn base_state(&self, base: &RecordedBase) -> Result<Option<BaseState>, StoreError> {
        const WHAT: &str = "read base state";
        with_pool!(self, pool => {
            let mut conn = pool.acquire().await.map_err(query(WHAT))?;
            let check: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT checked_at, current_digest FROM base_checks \
                 WHERE reference = $1 AND current_digest IS NOT NULL",
            )
            .bind(&base.reference)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query(WHAT))?;
            let Some((checked_at_ms, current_digest)) = check else {
                return Ok(None);
            };
            // Current: seen by the last successful check (last_seen is that check's time, or
            // later when a failed check came after it: failed checks touch no base_tags row).
            let newest: Option<(i64,)> = sqlx::query_as(
                "SELECT MAX(last_seen) FROM base_tags WHERE reference = $1",
            )
            .bind(&base.reference)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query(WHAT))?;
            let newest = newest.map_or(checked_at_ms, |(t,)| t);
            let seen: Option<(i64,)> = sqlx::query_as(
                "SELECT last_seen FROM base_tags WHERE reference = $1 AND digest = $2",
            )
            .bind(&base.reference)
            .bind(&base.digest)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query(WHAT))?;
            let outdated_since_ms = match seen {
                Some((last_seen,)) if last_seen >= newest => None,
                _ => Some(outdated_since!(&mut *conn, &base.reference, &base.digest, newest)),
            };
            Ok(Some(BaseState {
                reference: base.reference.clone(),
                recorded_digest: base.digest.clone(),
                checked_at_ms: newest,
                current_digest,
                outdated_since_ms,
            }))
        })
    }

    /// How many stored images have an outdated base (for the metric).
    pub async fn count_outdated_bases(&self) -> Result<i64, StoreError> {
        const WHAT: &str = "count outdated bases";
        with_pool!(self, pool => {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM reports WHERE base_outdated_since IS NOT NULL",
            )
            .fetch_one(pool)
            .await
            .map_err(query(WHAT))?;
            Ok(n)
        })
    }
}
