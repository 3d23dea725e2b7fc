//! Verdicts, reports, SBOMs and the tags each image was seen under.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::db::{Dialect, Store, now_ms, with_pool};
use crate::error::{StoreError, query};

/// The outcome of one scan, stored by [`Store::put_result`]. JSON documents are kept as the text
/// their producers serialised (the store does not interpret them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultRecord {
    pub manifest_digest: String,
    pub policy_digest: String,
    pub verdict_json: String,
    pub report_json: String,
    /// CycloneDX document; it depends on the image only, so it is stored per manifest digest.
    pub sbom_json: Option<String>,
    /// The verdict's decision (`"allow"`, `"deny"`, …), kept apart for listing and metrics.
    pub decision: String,
    pub repository: String,
    /// Tags the digest was pushed under in `repository`; added to those already known.
    pub tags: Vec<String>,
}

/// A stored verdict with what is known about its image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVerdict {
    pub manifest_digest: String,
    pub policy_digest: String,
    pub verdict_json: String,
    pub report_json: String,
    pub decision: String,
    pub repository: String,
    /// Every tag seen for this digest in `repository`, sorted.
    pub tags: Vec<String>,
    pub updated_at_ms: i64,
}

/// One image of a repository, for `GET /v1/images?repository=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    pub manifest_digest: String,
    pub policy_digest: String,
    pub decision: String,
    /// Tags seen for the digest in the repository asked for, sorted.
    pub tags: Vec<String>,
    pub updated_at_ms: i64,
}

/// Records that `$3` (manifest digest) was seen as `$1:$2` (repository, tag) at `$4`: the first
/// sighting is kept, the last one moves.
pub(crate) const UPSERT_TAG_SQL: &str = "INSERT INTO image_tags (repository, tag, manifest_digest, first_seen, \
     last_seen) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (repository, tag, manifest_digest) \
     DO UPDATE SET last_seen = excluded.last_seen";

impl Store {
    /// Stores (or replaces) the verdict and report for (manifest digest, policy bundle), the SBOM
    /// when given, and adds the tags. One transaction: readers see all of it or none.
    ///
    /// A document larger than [`Store::max_document_bytes`] is refused with
    /// [`StoreError::TooLarge`] before anything is written.
    pub async fn put_result(&self, record: &ResultRecord) -> Result<(), StoreError> {
        let limit = self.max_document_bytes;
        for (what, doc) in [
            ("report", Some(&record.report_json)),
            ("verdict", Some(&record.verdict_json)),
            ("SBOM", record.sbom_json.as_ref()),
        ] {
            if let Some(doc) = doc
                && doc.len() > limit
            {
                return Err(StoreError::TooLarge {
                    what,
                    digest: record.manifest_digest.clone(),
                    bytes: doc.len(),
                    limit,
                });
            }
        }
        let _turn = self.write_turn().await;
        const WHAT: &str = "put result";
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            sqlx::query(
                "INSERT INTO results (manifest_digest, policy_digest, verdict_json, report_json, \
                 decision, repository, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (manifest_digest, policy_digest) DO UPDATE SET \
                 verdict_json = excluded.verdict_json, report_json = excluded.report_json, \
                 decision = excluded.decision, repository = excluded.repository, \
                 updated_at = excluded.updated_at",
            )
            .bind(&record.manifest_digest)
            .bind(&record.policy_digest)
            .bind(&record.verdict_json)
            .bind(&record.report_json)
            .bind(&record.decision)
            .bind(&record.repository)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            if let Some(sbom) = &record.sbom_json {
                sqlx::query(
                    "INSERT INTO sboms (manifest_digest, sbom_json, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (manifest_digest) DO UPDATE SET \
                     sbom_json = excluded.sbom_json, updated_at = excluded.updated_at",
                )
                .bind(&record.manifest_digest)
                .bind(sbom)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            }
            for tag in &record.tags {
                sqlx::query(UPSERT_TAG_SQL)
                .bind(&record.repository)
                .bind(tag)
                .bind(&record.manifest_digest)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            }
            tx.commit().await.map_err(query(WHAT))?;
            Ok(())
        })
    }

    /// The stored verdict for (manifest digest, policy bundle), if any.
    pub async fn verdict(
        &self,
        manifest_digest: &str,
        policy_digest: &str,
    ) -> Result<Option<StoredVerdict>, StoreError> {
        const WHAT: &str = "read verdict";
        let found = with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT verdict_json, report_json, decision, repository, updated_at FROM results \
                 WHERE manifest_digest = $1 AND policy_digest = $2",
            )
            .bind(manifest_digest)
            .bind(policy_digest)
            .fetch_optional(pool)
            .await
            .map_err(query(WHAT))?;
            match row {
                None => None,
                Some(row) => Some(StoredVerdict {
                    manifest_digest: manifest_digest.to_owned(),
                    policy_digest: policy_digest.to_owned(),
                    verdict_json: row.try_get("verdict_json").map_err(query(WHAT))?,
                    report_json: row.try_get("report_json").map_err(query(WHAT))?,
                    decision: row.try_get("decision").map_err(query(WHAT))?,
                    repository: row.try_get("repository").map_err(query(WHAT))?,
                    tags: Vec::new(),
                    updated_at_ms: row.try_get("updated_at").map_err(query(WHAT))?,
                }),
            }
        });
        let Some(mut verdict) = found else {
            return Ok(None);
        };
        verdict.tags = self.tags(&verdict.repository, manifest_digest).await?;
        Ok(Some(verdict))
    }

    /// Records that `manifest_digest` was seen under `repository:tag` (a push, or a worker
    /// resolving a tag): added to the tags already known, or its last sighting moved to now.
    pub async fn add_tag(
        &self,
        repository: &str,
        tag: &str,
        manifest_digest: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "add tag";
        let now = now_ms();
        with_pool!(self, pool => {
            sqlx::query(UPSERT_TAG_SQL)
                .bind(repository)
                .bind(tag)
                .bind(manifest_digest)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(query(WHAT))
        })
    }

    /// Images to re-evaluate under a new policy bundle: manifest digests with a verdict under
    /// some other bundle but none under `policy_digest`, each with its most recently stored
    /// result (whose report holds the facts to evaluate again). At most `limit`, by digest; call
    /// again after storing their new verdicts to get the next ones.
    pub async fn stale_results(
        &self,
        policy_digest: &str,
        limit: u32,
    ) -> Result<Vec<StoredVerdict>, StoreError> {
        const WHAT: &str = "list stale results";
        // The newest other result per digest: no other result for that digest is newer (ties on
        // the same millisecond go to the greater policy digest, so exactly one row wins).
        let rows: Vec<(String, String, String, String, String, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT r.manifest_digest, r.policy_digest, r.verdict_json, r.report_json, \
                 r.decision, r.repository, r.updated_at FROM results r \
                 WHERE r.policy_digest <> $1 \
                 AND NOT EXISTS (SELECT 1 FROM results c \
                     WHERE c.manifest_digest = r.manifest_digest AND c.policy_digest = $1) \
                 AND NOT EXISTS (SELECT 1 FROM results n \
                     WHERE n.manifest_digest = r.manifest_digest AND n.policy_digest <> $1 \
                     AND (n.updated_at > r.updated_at \
                          OR (n.updated_at = r.updated_at AND n.policy_digest > r.policy_digest))) \
                 ORDER BY r.manifest_digest LIMIT $2",
            )
            .bind(policy_digest)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))?
        });
        let mut stale = Vec::with_capacity(rows.len());
        for (
            manifest_digest,
            policy_digest,
            verdict_json,
            report_json,
            decision,
            repository,
            updated_at_ms,
        ) in rows
        {
            let tags = self.tags(&repository, &manifest_digest).await?;
            stale.push(StoredVerdict {
                manifest_digest,
                policy_digest,
                verdict_json,
                report_json,
                decision,
                repository,
                tags,
                updated_at_ms,
            });
        }
        Ok(stale)
    }

    /// The CycloneDX SBOM stored for a manifest digest, if any.
    pub async fn sbom(&self, manifest_digest: &str) -> Result<Option<String>, StoreError> {
        const WHAT: &str = "read sbom";
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT sbom_json FROM sboms WHERE manifest_digest = $1")
                .bind(manifest_digest)
                .fetch_optional(pool)
                .await
                .map_err(query(WHAT))
        })
    }

    /// Images with a stored verdict in `repository` (last stored under it, or tagged in it),
    /// newest first; one entry per (digest, policy bundle).
    pub async fn images(&self, repository: &str) -> Result<Vec<ImageSummary>, StoreError> {
        const WHAT: &str = "list images";
        let rows: Vec<(String, String, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT manifest_digest, policy_digest, decision, updated_at FROM results \
                 WHERE repository = $1 OR manifest_digest IN \
                 (SELECT manifest_digest FROM image_tags WHERE repository = $1) \
                 ORDER BY updated_at DESC, manifest_digest, policy_digest",
            )
            .bind(repository)
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))?
        });
        let tags = self.tags_by_digest(repository).await?;
        Ok(rows
            .into_iter()
            .map(
                |(manifest_digest, policy_digest, decision, updated_at_ms)| ImageSummary {
                    // Several policy bundles may share a digest: each entry gets its tags.
                    tags: tags.get(&manifest_digest).cloned().unwrap_or_default(),
                    manifest_digest,
                    policy_digest,
                    decision,
                    updated_at_ms,
                },
            )
            .collect())
    }

    /// Tags of one digest in a repository, sorted.
    async fn tags(
        &self,
        repository: &str,
        manifest_digest: &str,
    ) -> Result<Vec<String>, StoreError> {
        const WHAT: &str = "read tags";
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT tag FROM image_tags WHERE repository = $1 AND manifest_digest = $2 \
                 ORDER BY tag",
            )
            .bind(repository)
            .bind(manifest_digest)
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))
        })
    }

    /// Tags per digest in a repository, each list sorted.
    async fn tags_by_digest(
        &self,
        repository: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        const WHAT: &str = "read tags";
        let rows: Vec<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT manifest_digest, tag FROM image_tags WHERE repository = $1 \
                 ORDER BY manifest_digest, tag",
            )
            .bind(repository)
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))?
        });
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (digest, tag) in rows {
            map.entry(digest).or_default().push(tag);
        }
        Ok(map)
    }
}
