//! Reports, verdicts, SBOMs and the tags each image was seen under.
//!
//! A scan's facts depend on the image bytes only, so they are stored once per manifest digest
//! ([`ReportRecord`]). A verdict also depends on the name the image was asked for, on who asks
//! and on time, so verdicts are stored per [`VerdictKey`] — (digest, policy bundle, reference,
//! mode) — each with the time until which it holds ([`VerdictRecord::valid_until_ms`]).
//!
//! Every read takes a [`Visibility`]: a report pulled with a Kubernetes namespace's pull secret
//! is visible to that namespace's callers only ([`Scope`]), and so are its verdicts and SBOM.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use crate::bases::RecordedBase;
use crate::db::{Dialect, Store, now_ms, with_pool};
use crate::error::{StoreError, query};

/// Who pulled an image, and so who may see what Gantry learnt about it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Pulled anonymously or with Gantry's own configured credentials: every caller may see it.
    Public,
    /// Pulled with a pull secret of this Kubernetes namespace: only its callers may see it.
    Namespace(String),
}

const NAMESPACE_PREFIX: &str = "namespace:";

impl Scope {
    /// The value stored in `scope` columns.
    pub fn as_db(&self) -> String {
        match self {
            Scope::Public => String::new(),
            Scope::Namespace(ns) => format!("{NAMESPACE_PREFIX}{ns}"),
        }
    }

    pub(crate) fn parse(value: &str, column: &'static str) -> Result<Scope, StoreError> {
        if value.is_empty() {
            return Ok(Scope::Public);
        }
        match value.strip_prefix(NAMESPACE_PREFIX) {
            Some(ns) if !ns.is_empty() => Ok(Scope::Namespace(ns.to_owned())),
            _ => Err(StoreError::Corrupt {
                column,
                value: value.to_owned(),
            }),
        }
    }
}

/// What a caller may see: everything (operators, the service itself), or public images plus
/// those of some namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    everything: bool,
    namespaces: BTreeSet<String>,
}

impl Visibility {
    /// Every report, whoever pulled it.
    pub fn everything() -> Visibility {
        Visibility {
            everything: true,
            namespaces: BTreeSet::new(),
        }
    }

    /// Public reports only.
    pub fn public() -> Visibility {
        Visibility {
            everything: false,
            namespaces: BTreeSet::new(),
        }
    }

    /// Public reports and those pulled for `namespaces`.
    pub fn namespaces<I, S>(namespaces: I) -> Visibility
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Visibility {
            everything: false,
            namespaces: namespaces.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether a report with these scopes may be seen.
    pub fn sees(&self, scopes: &[Scope]) -> bool {
        self.everything
            || scopes.iter().any(|s| match s {
                Scope::Public => true,
                Scope::Namespace(ns) => self.namespaces.contains(ns),
            })
    }

    /// Whether a report of `scope` may be seen.
    pub fn sees_scope(&self, scope: &Scope) -> bool {
        self.sees(std::slice::from_ref(scope))
    }
}

/// What a scan found, stored by [`Store::put_scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRecord {
    pub manifest_digest: String,
    /// The policy input document without `context` (the facts).
    pub report_json: String,
    /// CycloneDX document.
    pub sbom_json: Option<String>,
    /// The repository the image was scanned under.
    pub repository: String,
    /// Tags the digest was pushed under in `repository`; added to those already known.
    pub tags: Vec<String>,
    /// Who pulled it.
    pub scope: Scope,
    /// The base the image records, when it records a tag and the digest it resolved to.
    pub base: Option<RecordedBase>,
    /// Since when its base's tag points elsewhere, as far as is known now
    /// ([`Store::base_state`]); kept as stored when the same base was stored before.
    pub base_outdated_since_ms: Option<i64>,
}

/// Names one verdict.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerdictKey {
    pub manifest_digest: String,
    pub policy_digest: String,
    /// `repository[:tag]`, without the digest: what rules and exceptions match names against.
    pub reference: String,
    /// Who asked: `webhook`, `api`, `admission` (the policy input's `context.mode`).
    pub mode: String,
}

/// A verdict to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictRecord {
    pub key: VerdictKey,
    pub verdict_json: String,
    /// The verdict's decision (`"allow"`, `"deny"`), kept apart for listing and metrics.
    pub decision: String,
    /// Unix ms after which the verdict must be computed again (an exception expires, or the
    /// longest a verdict is trusted); `None`: until the bundle changes.
    pub valid_until_ms: Option<i64>,
}

/// A stored verdict with what is known about its image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVerdict {
    pub key: VerdictKey,
    pub verdict_json: String,
    pub decision: String,
    pub valid_until_ms: Option<i64>,
    /// The repository of the report.
    pub repository: String,
    /// Every tag seen for this digest in `repository`, sorted.
    pub tags: Vec<String>,
    pub updated_at_ms: i64,
}

impl StoredVerdict {
    /// Whether the verdict still holds at `now_ms`.
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.valid_until_ms.is_none_or(|until| now_ms < until)
    }
}

/// A stored report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    pub manifest_digest: String,
    pub report_json: String,
    pub repository: String,
    /// Who pulled it (at least one).
    pub scopes: Vec<Scope>,
    pub updated_at_ms: i64,
    /// The base the image records (see [`Store::base_state`]).
    pub base: Option<RecordedBase>,
}

/// A verdict to compute again: its key under the bundle it was computed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleVerdict {
    /// The key of the newest verdict for (digest, reference, mode), under whatever bundle.
    pub key: VerdictKey,
    /// Its decision then.
    pub decision: String,
}

/// One image of a repository, for `GET /v1/images?repository=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    pub manifest_digest: String,
    pub policy_digest: String,
    /// The reference of the newest verdict.
    pub reference: String,
    pub decision: String,
    /// Tags seen for the digest in the repository asked for, sorted.
    pub tags: Vec<String>,
    pub updated_at_ms: i64,
}

/// A page of [`Store::images`]: the entries and where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePage {
    pub images: Vec<ImageSummary>,
    /// Pass to the next call; `None` on the last page.
    pub next: Option<ImageCursor>,
}

/// Where a page of images starts: after this (updated_at, digest), newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageCursor {
    pub updated_at_ms: i64,
    pub manifest_digest: String,
}

/// Records that `$3` (manifest digest) was seen as `$1:$2` (repository, tag) at `$4`: the first
/// sighting is kept, the last one moves.
pub(crate) const UPSERT_TAG_SQL: &str = "INSERT INTO image_tags (repository, tag, manifest_digest, first_seen, \
     last_seen) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (repository, tag, manifest_digest) \
     DO UPDATE SET last_seen = excluded.last_seen";

const UPSERT_VERDICT_SQL: &str = "INSERT INTO verdicts (manifest_digest, policy_digest, reference, mode, \
     verdict_json, decision, valid_until, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
     ON CONFLICT (manifest_digest, policy_digest, reference, mode) DO UPDATE SET \
     verdict_json = excluded.verdict_json, decision = excluded.decision, \
     valid_until = excluded.valid_until, updated_at = excluded.updated_at";

/// The `AND (…)` restricting `report_scopes s` to what `v` sees, with its parameters starting at
/// `$first`; empty when `v` sees everything. Only placeholders are formatted into the SQL; the
/// namespaces are bound.
fn scope_filter(v: &Visibility, first: usize) -> (String, Vec<String>) {
    if v.everything {
        return (String::new(), Vec::new());
    }
    let mut values = vec![String::new()];
    values.extend(
        v.namespaces
            .iter()
            .map(|ns| Scope::Namespace(ns.clone()).as_db()),
    );
    let placeholders: Vec<String> = (0..values.len())
        .map(|i| format!("${}", first + i))
        .collect();
    (
        format!(" AND s.scope IN ({})", placeholders.join(", ")),
        values,
    )
}

impl Store {
    /// Stores what one scan produced: the report (replacing an older one of the digest), the
    /// scope it was pulled for, the SBOM, the tags and its first verdict. One transaction:
    /// readers see all of it or none.
    ///
    /// A document larger than [`Store::max_document_bytes`] is refused with
    /// [`StoreError::TooLarge`] before anything is written.
    pub async fn put_scan(
        &self,
        report: &ReportRecord,
        verdict: &VerdictRecord,
    ) -> Result<(), StoreError> {
        self.check_size(&report.manifest_digest, "report", Some(&report.report_json))?;
        self.check_size(&report.manifest_digest, "SBOM", report.sbom_json.as_ref())?;
        self.check_size(
            &verdict.key.manifest_digest,
            "verdict",
            Some(&verdict.verdict_json),
        )?;
        let _turn = self.write_turn().await;
        const WHAT: &str = "put scan result";
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            sqlx::query(
                "INSERT INTO reports (manifest_digest, report_json, repository, created_at, \
                 updated_at, base_reference, base_digest, base_outdated_since) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6, $7) \
                 ON CONFLICT (manifest_digest) DO UPDATE SET report_json = excluded.report_json, \
                 updated_at = excluded.updated_at, base_reference = excluded.base_reference, \
                 base_digest = excluded.base_digest, base_outdated_since = CASE \
                     WHEN reports.base_reference = excluded.base_reference \
                      AND reports.base_digest = excluded.base_digest \
                     THEN reports.base_outdated_since ELSE excluded.base_outdated_since END",
            )
            .bind(&report.manifest_digest)
            .bind(&report.report_json)
            .bind(&report.repository)
            .bind(now)
            .bind(report.base.as_ref().map(|b| &b.reference))
            .bind(report.base.as_ref().map(|b| &b.digest))
            .bind(report.base.as_ref().and(report.base_outdated_since_ms))
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            sqlx::query(
                "INSERT INTO report_scopes (manifest_digest, scope) VALUES ($1, $2) \
                 ON CONFLICT (manifest_digest, scope) DO NOTHING",
            )
            .bind(&report.manifest_digest)
            .bind(report.scope.as_db())
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            if let Some(sbom) = &report.sbom_json {
                sqlx::query(
                    "INSERT INTO sboms (manifest_digest, sbom_json, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (manifest_digest) DO UPDATE SET \
                     sbom_json = excluded.sbom_json, updated_at = excluded.updated_at",
                )
                .bind(&report.manifest_digest)
                .bind(sbom)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            }
            for tag in &report.tags {
                sqlx::query(UPSERT_TAG_SQL)
                    .bind(&report.repository)
                    .bind(tag)
                    .bind(&report.manifest_digest)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query(WHAT))?;
            }
            bind_verdict(sqlx::query(UPSERT_VERDICT_SQL), verdict, now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            tx.commit().await.map_err(query(WHAT))?;
            Ok(())
        })
    }

    /// Stores (or replaces) one verdict of an image whose report is stored: a re-judgement
    /// under another name, mode, bundle or time. `NotFound`-like misuse (no report) fails on
    /// the foreign key.
    pub async fn put_verdict(&self, verdict: &VerdictRecord) -> Result<(), StoreError> {
        self.check_size(
            &verdict.key.manifest_digest,
            "verdict",
            Some(&verdict.verdict_json),
        )?;
        let _turn = self.write_turn().await;
        const WHAT: &str = "put verdict";
        let now = now_ms();
        with_pool!(self, pool => {
            bind_verdict(sqlx::query(UPSERT_VERDICT_SQL), verdict, now)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(query(WHAT))
        })
    }

    /// Refuses a document over [`Store::max_document_bytes`]: one oversized row would be
    /// read back whole by every lookup.
    fn check_size(
        &self,
        digest: &str,
        what: &'static str,
        doc: Option<&String>,
    ) -> Result<(), StoreError> {
        let limit = self.max_document_bytes;
        match doc {
            Some(doc) if doc.len() > limit => Err(StoreError::TooLarge {
                what,
                digest: digest.to_string(),
                bytes: doc.len(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Who pulled `manifest_digest` (empty: no report).
    async fn scopes(&self, manifest_digest: &str) -> Result<Vec<Scope>, StoreError> {
        const WHAT: &str = "read report scopes";
        let rows: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT scope FROM report_scopes WHERE manifest_digest = $1 ORDER BY scope",
            )
            .bind(manifest_digest)
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))?
        });
        rows.iter()
            .map(|s| Scope::parse(s, "report_scopes.scope"))
            .collect()
    }

    /// The report of `manifest_digest`, if one is stored and `visibility` sees it.
    pub async fn report(
        &self,
        manifest_digest: &str,
        visibility: &Visibility,
    ) -> Result<Option<StoredReport>, StoreError> {
        const WHAT: &str = "read report";
        let scopes = self.scopes(manifest_digest).await?;
        if !visibility.sees(&scopes) {
            return Ok(None);
        }
        type Row = (String, String, i64, Option<String>, Option<String>);
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT report_json, repository, updated_at, base_reference, base_digest \
                 FROM reports WHERE manifest_digest = $1",
            )
            .bind(manifest_digest)
            .fetch_optional(pool)
            .await
            .map_err(query(WHAT))?
        });
        Ok(row.map(
            |(report_json, repository, updated_at_ms, reference, digest)| StoredReport {
                manifest_digest: manifest_digest.to_owned(),
                report_json,
                repository,
                scopes,
                updated_at_ms,
                base: reference
                    .zip(digest)
                    .map(|(reference, digest)| RecordedBase { reference, digest }),
            },
        ))
    }

    /// The stored verdict named by `key`, if `visibility` sees its image. It may be past its
    /// [`StoredVerdict::valid_until_ms`]: the caller decides.
    pub async fn verdict(
        &self,
        key: &VerdictKey,
        visibility: &Visibility,
    ) -> Result<Option<StoredVerdict>, StoreError> {
        self.find_verdict(
            &key.manifest_digest,
            &key.policy_digest,
            Some(&key.reference),
            Some(&key.mode),
            visibility,
        )
        .await
    }

    /// The newest stored verdict of `manifest_digest` under `policy_digest`, narrowed to a
    /// reference and a mode when given, if `visibility` sees the image.
    pub async fn find_verdict(
        &self,
        manifest_digest: &str,
        policy_digest: &str,
        reference: Option<&str>,
        mode: Option<&str>,
        visibility: &Visibility,
    ) -> Result<Option<StoredVerdict>, StoreError> {
        const WHAT: &str = "read verdict";
        if !visibility.sees(&self.scopes(manifest_digest).await?) {
            return Ok(None);
        }
        let found = with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT v.reference, v.mode, v.verdict_json, v.decision, v.valid_until, \
                 v.updated_at, r.repository FROM verdicts v \
                 JOIN reports r ON r.manifest_digest = v.manifest_digest \
                 WHERE v.manifest_digest = $1 AND v.policy_digest = $2 \
                 AND ($3 IS NULL OR v.reference = $3) AND ($4 IS NULL OR v.mode = $4) \
                 ORDER BY v.updated_at DESC, v.reference, v.mode LIMIT 1",
            )
            .bind(manifest_digest)
            .bind(policy_digest)
            .bind(reference)
            .bind(mode)
            .fetch_optional(pool)
            .await
            .map_err(query(WHAT))?;
            match row {
                None => None,
                Some(row) => Some(StoredVerdict {
                    key: VerdictKey {
                        manifest_digest: manifest_digest.to_owned(),
                        policy_digest: policy_digest.to_owned(),
                        reference: row.try_get("reference").map_err(query(WHAT))?,
                        mode: row.try_get("mode").map_err(query(WHAT))?,
                    },
                    verdict_json: row.try_get("verdict_json").map_err(query(WHAT))?,
                    decision: row.try_get("decision").map_err(query(WHAT))?,
                    valid_until_ms: row.try_get("valid_until").map_err(query(WHAT))?,
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

    /// Verdicts to compute again under `policy_digest` at `now_ms`: for each (digest,
    /// reference, mode) that has a verdict under some bundle, the newest one — when none is
    /// stored under `policy_digest`, or the one stored under it expired. At most `limit`, by
    /// key; call again after storing their new verdicts to get the next ones.
    pub async fn stale_verdicts(
        &self,
        policy_digest: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<StaleVerdict>, StoreError> {
        const WHAT: &str = "list stale verdicts";
        // The newest verdict per (digest, reference, mode): none other is newer (ties on the
        // same millisecond go to the greater policy digest, so exactly one row wins). It is
        // stale when it was computed under another bundle, or under this one and expired.
        let rows: Vec<(String, String, String, String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT v.manifest_digest, v.policy_digest, v.reference, v.mode, v.decision \
                 FROM verdicts v \
                 WHERE NOT EXISTS (SELECT 1 FROM verdicts n \
                     WHERE n.manifest_digest = v.manifest_digest AND n.reference = v.reference \
                     AND n.mode = v.mode AND (n.updated_at > v.updated_at \
                          OR (n.updated_at = v.updated_at AND n.policy_digest > v.policy_digest))) \
                 AND (v.policy_digest <> $1 OR (v.valid_until IS NOT NULL AND v.valid_until <= $2)) \
                 AND NOT EXISTS (SELECT 1 FROM verdicts c WHERE c.manifest_digest = v.manifest_digest \
                     AND c.reference = v.reference AND c.mode = v.mode AND c.policy_digest = $1 \
                     AND (c.valid_until IS NULL OR c.valid_until > $2)) \
                 ORDER BY v.manifest_digest, v.reference, v.mode LIMIT $3",
            )
            .bind(policy_digest)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(query(WHAT))?
        });
        Ok(rows
            .into_iter()
            .map(
                |(manifest_digest, policy_digest, reference, mode, decision)| StaleVerdict {
                    key: VerdictKey {
                        manifest_digest,
                        policy_digest,
                        reference,
                        mode,
                    },
                    decision,
                },
            )
            .collect())
    }

    /// The CycloneDX SBOM stored for a manifest digest, if any and `visibility` sees it.
    pub async fn sbom(
        &self,
        manifest_digest: &str,
        visibility: &Visibility,
    ) -> Result<Option<String>, StoreError> {
        const WHAT: &str = "read sbom";
        if !visibility.sees(&self.scopes(manifest_digest).await?) {
            return Ok(None);
        }
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT sbom_json FROM sboms WHERE manifest_digest = $1")
                .bind(manifest_digest)
                .fetch_optional(pool)
                .await
                .map_err(query(WHAT))
        })
    }

    /// Images with a stored verdict under `policy_digest` in `repository` (scanned under it, or
    /// tagged in it) that `visibility` sees, newest first, `limit` at a time from `after`.
    pub async fn images(
        &self,
        repository: &str,
        policy_digest: &str,
        visibility: &Visibility,
        after: Option<&ImageCursor>,
        limit: u32,
    ) -> Result<ImagePage, StoreError> {
        const WHAT: &str = "list images";
        let (filter, scopes) = scope_filter(visibility, 6);
        // The newest verdict per digest under the bundle; pages by (updated_at, digest) desc.
        let sql = format!(
            "SELECT v.manifest_digest, v.reference, v.decision, v.updated_at FROM verdicts v \
             JOIN reports r ON r.manifest_digest = v.manifest_digest \
             WHERE v.policy_digest = $2 \
             AND (r.repository = $1 OR v.manifest_digest IN \
                 (SELECT manifest_digest FROM image_tags WHERE repository = $1)) \
             AND NOT EXISTS (SELECT 1 FROM verdicts n WHERE n.manifest_digest = v.manifest_digest \
                 AND n.policy_digest = v.policy_digest AND (n.updated_at > v.updated_at \
                 OR (n.updated_at = v.updated_at AND (n.reference > v.reference \
                     OR (n.reference = v.reference AND n.mode > v.mode))))) \
             AND EXISTS (SELECT 1 FROM report_scopes s WHERE s.manifest_digest = v.manifest_digest{filter}) \
             AND ($3 IS NULL OR v.updated_at < $3 OR (v.updated_at = $3 AND v.manifest_digest > $4)) \
             ORDER BY v.updated_at DESC, v.manifest_digest LIMIT $5"
        );
        let fetch = i64::from(limit) + 1;
        let (after_at, after_digest) = match after {
            Some(c) => (Some(c.updated_at_ms), Some(c.manifest_digest.as_str())),
            None => (None, None),
        };
        let mut rows: Vec<(String, String, String, i64)> = with_pool!(self, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(repository)
                .bind(policy_digest)
                .bind(after_at)
                .bind(after_digest)
                .bind(fetch);
            for s in &scopes {
                q = q.bind(s.clone());
            }
            q.fetch_all(pool).await.map_err(query(WHAT))?
        });
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let tags = self.tags_by_digest(repository).await?;
        let next = match (more, rows.last()) {
            (true, Some((digest, _, _, at))) => Some(ImageCursor {
                updated_at_ms: *at,
                manifest_digest: digest.clone(),
            }),
            _ => None,
        };
        let images = rows
            .into_iter()
            .map(
                |(manifest_digest, reference, decision, updated_at_ms)| ImageSummary {
                    tags: tags.get(&manifest_digest).cloned().unwrap_or_default(),
                    manifest_digest,
                    policy_digest: policy_digest.to_owned(),
                    reference,
                    decision,
                    updated_at_ms,
                },
            )
            .collect();
        Ok(ImagePage { images, next })
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

fn bind_verdict<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    v: &'q VerdictRecord,
    now: i64,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(&v.key.manifest_digest)
        .bind(&v.key.policy_digest)
        .bind(&v.key.reference)
        .bind(&v.key.mode)
        .bind(&v.verdict_json)
        .bind(&v.decision)
        .bind(v.valid_until_ms)
        .bind(now)
}
