//! The durable job queue: at-least-once delivery with leases, retries with backoff, dedupe.

use std::time::Duration;

use sqlx::Row;

use crate::db::{Dialect, Store, ms, now_ms, with_pool};
use crate::error::{StoreError, query};
use crate::results::Scope;

/// A scan to schedule, as the webhook or API received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// The image as named by the event (`registry/repo:tag` or `…@sha256:…`).
    pub image_ref: String,
    /// Manifest digest when the event carried one; `None` means the worker resolves the tag.
    pub digest: Option<String>,
    /// The sender's event id, when it has one: a redelivered event is absorbed.
    pub event_id: Option<String>,
    /// Where the job came from (`"distribution"`, `"harbor"`, `"api"`, …), for metrics and logs.
    pub source: String,
    /// Digest of the policy bundle the verdict is to be computed under.
    pub policy_digest: String,
    /// Whose credentials pull the image, and so who may see the result.
    pub scope: Scope,
    /// For a [`Scope::Namespace`] job: the pull Secrets (names in that namespace) the worker
    /// reads the credentials from. Only names are stored, never credentials.
    pub pull_secrets: Vec<String>,
}

/// Answer of [`Store::enqueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job that will produce (or produced) the verdict: the new one, or the one it duplicates.
    pub id: i64,
    /// True when no new scan was scheduled: same event id seen before, same digest already
    /// queued or running under this policy bundle, or a verdict for it already stored.
    pub deduplicated: bool,
}

/// A job handed to a worker by [`Store::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub spec: JobSpec,
    /// How many times the job has been claimed, this claim included (1 on the first run).
    pub attempts: u32,
    /// Unix milliseconds at which the lease ends unless renewed by [`Store::heartbeat`].
    pub lease_until_ms: i64,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for a worker (possibly until a backoff ends).
    Queued,
    /// Leased to a worker.
    Running,
    /// Finished; the result is in the store.
    Done,
    /// Gave up after the last attempt; `last_error` says why.
    Failed,
}

impl JobStatus {
    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<JobStatus, StoreError> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            other => {
                return Err(StoreError::Corrupt {
                    column: "jobs.status",
                    value: other.to_owned(),
                });
            }
        })
    }
}

/// Everything known about a job, for `GET /v1/jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobView {
    pub id: i64,
    pub spec: JobSpec,
    pub status: JobStatus,
    pub attempts: u32,
    /// Not claimable before this time (Unix ms): the backoff after a failure.
    pub not_before_ms: i64,
    /// End of the current lease (Unix ms) while running.
    pub lease_until_ms: Option<i64>,
    /// The worker holding (or that last held) the job.
    pub worker: Option<String>,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Number of jobs per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: u64,
    pub running: u64,
    pub failed: u64,
    pub done: u64,
}

/// How [`Store::fail`] treats a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; the job is marked failed after the last one.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further failure (capped at 2^16 times).
    pub base_backoff: Duration,
}

/// What [`Store::fail`] did with the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, claimable from `not_before_ms` (Unix ms).
    Retrying { not_before_ms: i64 },
    /// Attempts exhausted: the job is `failed` with the error.
    Failed,
}

/// What [`Store::resolve_digest`] did with the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestOutcome {
    /// The digest is recorded; the worker goes on and scans it.
    Set,
    /// Another queued or running job (`job`) will produce this verdict: this one is done and the
    /// worker drops it.
    Duplicate { job: i64 },
    /// The digest's report is already stored for the job's scope (the verdict under this bundle
    /// is computed from it without a pull): this job is done and the worker drops it.
    AlreadyScanned,
}

/// Largest backoff doubling: with a 1 s base, about 18 hours.
const MAX_BACKOFF_DOUBLINGS: u32 = 16;

/// What a failed attempt leads to, for jobs and notifications alike: the outcome, the status
/// to store (`queued` or `failed`) and when the item may be tried again.
pub(crate) fn after_failure(
    retry: RetryPolicy,
    attempts: u32,
    now: i64,
) -> (FailOutcome, &'static str, i64) {
    if attempts >= retry.max_attempts {
        return (FailOutcome::Failed, "failed", now);
    }
    let not_before_ms = now.saturating_add(backoff(retry, attempts));
    (
        FailOutcome::Retrying { not_before_ms },
        "queued",
        not_before_ms,
    )
}

fn backoff(policy: RetryPolicy, attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(MAX_BACKOFF_DOUBLINGS);
    ms(policy.base_backoff).saturating_mul(1_i64 << doublings)
}

pub(crate) fn to_u32(v: i64, column: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        column,
        value: v.to_string(),
    })
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

macro_rules! spec_from_row {
    ($row:expr, $what:expr) => {{
        let scope: String = $row.try_get("scope").map_err(query($what))?;
        let secrets: Option<String> = $row.try_get("pull_secrets").map_err(query($what))?;
        JobSpec {
            image_ref: $row.try_get("image_ref").map_err(query($what))?,
            digest: $row.try_get("digest").map_err(query($what))?,
            event_id: $row.try_get("event_id").map_err(query($what))?,
            source: $row.try_get("source").map_err(query($what))?,
            policy_digest: $row.try_get("policy_digest").map_err(query($what))?,
            scope: Scope::parse(&scope, "jobs.scope")?,
            pull_secrets: parse_secrets(secrets.as_deref())?,
        }
    }};
}

/// `jobs.pull_secrets`: a JSON array of Secret names, or NULL for none.
fn secrets_column(names: &[String]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    serde_json::to_string(names).ok()
}

fn parse_secrets(column: Option<&str>) -> Result<Vec<String>, StoreError> {
    match column {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|_| StoreError::Corrupt {
            column: "jobs.pull_secrets",
            value: text.to_owned(),
        }),
    }
}

/// The columns `job_view_from_row!` reads, as a literal for `concat!` (the SQL stays static).
macro_rules! job_view_columns {
    () => {
        "id, image_ref, digest, event_id, source, policy_digest, scope, pull_secrets, status, \
         attempts, not_before, lease_until, worker, last_error, created_at, updated_at"
    };
}

macro_rules! job_view_from_row {
    ($row:expr, $what:expr) => {{
        let status: String = $row.try_get("status").map_err(query($what))?;
        let attempts: i64 = $row.try_get("attempts").map_err(query($what))?;
        JobView {
            id: $row.try_get("id").map_err(query($what))?,
            spec: spec_from_row!($row, $what),
            status: JobStatus::parse(&status)?,
            attempts: to_u32(attempts, "jobs.attempts")?,
            not_before_ms: $row.try_get("not_before").map_err(query($what))?,
            lease_until_ms: $row.try_get("lease_until").map_err(query($what))?,
            worker: $row.try_get("worker").map_err(query($what))?,
            last_error: $row.try_get("last_error").map_err(query($what))?,
            created_at_ms: $row.try_get("created_at").map_err(query($what))?,
            updated_at_ms: $row.try_get("updated_at").map_err(query($what))?,
        }
    }};
}

/// The SQL that differs between the two kinds of leased rows (scan jobs, notifications), so
/// finishing an attempt is written once. Every statement checks that `worker` still holds the
/// row (its lease may have expired and another worker taken over).
pub(crate) struct Leased {
    /// `$1` now, `$2` id, `$3` worker: the row is finished for good.
    pub(crate) finish: &'static str,
    /// `$1` id, `$2` worker: the attempt count of the held row.
    pub(crate) attempts: &'static str,
    /// `$1` status, `$2` not before, `$3` error, `$4` now, `$5` id, `$6` worker, `$7` attempts:
    /// a compare-and-set on the attempt count, so a row another worker claimed meanwhile is
    /// left alone.
    pub(crate) record_failure: &'static str,
    /// For errors: the attempts column and what is being done.
    pub(crate) attempts_column: &'static str,
    pub(crate) finishing: &'static str,
    pub(crate) failing: &'static str,
}

pub(crate) const JOBS: Leased = Leased {
    finish: "UPDATE jobs SET status = 'done', lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND worker = $3 AND status = 'running'",
    attempts: "SELECT attempts FROM jobs WHERE id = $1 AND worker = $2 AND status = 'running'",
    record_failure: "UPDATE jobs SET status = $1, not_before = $2, last_error = $3, lease_until = NULL, \
         updated_at = $4 WHERE id = $5 AND worker = $6 AND attempts = $7 AND status = 'running'",
    attempts_column: "jobs.attempts",
    finishing: "complete job",
    failing: "fail job",
};

impl Store {
    /// Finishes a held row; the number of rows changed (0: not held).
    pub(crate) async fn finish_leased(
        &self,
        t: &Leased,
        id: i64,
        worker: &str,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        Ok(with_pool!(self, pool => {
            sqlx::query(t.finish)
                .bind(now)
                .bind(id)
                .bind(worker)
                .execute(pool)
                .await
                .map_err(query(t.finishing))?
                .rows_affected()
        }))
    }

    /// Records a failed attempt on a held row (queued again after a backoff, or failed for
    /// good); `None` when `worker` does not hold it, else the outcome and rows changed.
    pub(crate) async fn fail_leased(
        &self,
        t: &Leased,
        id: i64,
        worker: &str,
        error: &str,
        retry: RetryPolicy,
    ) -> Result<Option<(FailOutcome, u64)>, StoreError> {
        let now = now_ms();
        let attempts: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(t.attempts)
                .bind(id)
                .bind(worker)
                .fetch_optional(pool)
                .await
                .map_err(query(t.failing))?
        });
        let Some(attempts) = attempts else {
            return Ok(None);
        };
        let (outcome, status, not_before) =
            after_failure(retry, to_u32(attempts, t.attempts_column)?, now);
        let affected = with_pool!(self, pool => {
            sqlx::query(t.record_failure)
                .bind(status)
                .bind(not_before)
                .bind(error)
                .bind(now)
                .bind(id)
                .bind(worker)
                .bind(attempts)
                .execute(pool)
                .await
                .map_err(query(t.failing))?
                .rows_affected()
        });
        Ok(Some((outcome, affected)))
    }
}

impl Store {
    /// Stores a job durably (the webhook answers 202 only after this returns), unless it
    /// duplicates an event already accepted, a job queued or running for the same digest,
    /// policy bundle and scope, or a report already stored for the digest in that scope.
    pub async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued, StoreError> {
        self.enqueue_tagged(spec, None).await
    }

    /// [`Store::enqueue`], also recording in the same transaction that the job's digest was
    /// seen under `tag` = (repository, tag) — even when the job itself is absorbed as a
    /// duplicate. One transaction instead of two is what webhook intake needs under load.
    pub async fn enqueue_tagged(
        &self,
        spec: JobSpec,
        tag: Option<(&str, &str)>,
    ) -> Result<Enqueued, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "enqueue job";
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            // The tag is recorded whatever becomes of the job (new, or absorbed).
            if let (Some((repository, tag)), Some(digest)) = (tag, &spec.digest) {
                sqlx::query(crate::results::UPSERT_TAG_SQL)
                    .bind(repository)
                    .bind(tag)
                    .bind(digest)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query(WHAT))?;
            }
            if let Some(event_id) = &spec.event_id {
                let inserted = sqlx::query(
                    "INSERT INTO events (event_id, job_id, received_at) VALUES ($1, NULL, $2) \
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(event_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query(WHAT))?
                .rows_affected();
                if inserted == 0 {
                    let job_id: Option<i64> =
                        sqlx::query_scalar("SELECT job_id FROM events WHERE event_id = $1")
                            .bind(event_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(query(WHAT))?;
                    tx.commit().await.map_err(query(WHAT))?;
                    let id = job_id.ok_or_else(|| StoreError::Corrupt {
                        column: "events.job_id",
                        value: "NULL".to_owned(),
                    })?;
                    return Ok(Enqueued { id, deduplicated: true });
                }
            }
            let mut existing = None;
            // A new job is queued, unless its report already exists (then it is born done).
            let mut status = "queued";
            let scope = spec.scope.as_db();
            if let Some(digest) = &spec.digest {
                let key = format!("{digest} {} {scope}", spec.policy_digest);
                pool.lock_key(&mut tx, &key).await.map_err(query(WHAT))?;
                existing = sqlx::query_scalar::<_, i64>(
                    "SELECT id FROM jobs WHERE digest = $1 AND policy_digest = $2 AND scope = $3 \
                     AND status IN ('queued', 'running') ORDER BY id LIMIT 1",
                )
                .bind(digest)
                .bind(&spec.policy_digest)
                .bind(&scope)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query(WHAT))?;
                if existing.is_none() {
                    let has_report = sqlx::query_scalar::<_, i64>(
                        "SELECT COUNT(*) FROM report_scopes WHERE manifest_digest = $1 AND scope = $2",
                    )
                    .bind(digest)
                    .bind(&scope)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query(WHAT))?
                        > 0;
                    if has_report {
                        let done = sqlx::query_scalar::<_, i64>(
                            "SELECT id FROM jobs WHERE digest = $1 AND policy_digest = $2 \
                             AND scope = $3 AND status = 'done' ORDER BY id DESC LIMIT 1",
                        )
                        .bind(digest)
                        .bind(&spec.policy_digest)
                        .bind(&scope)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(query(WHAT))?;
                        match done {
                            Some(id) => existing = Some(id),
                            // The report came from elsewhere (another bundle's job, a CLI scan
                            // into this store): record a job that is already done so the caller
                            // still gets an id to follow.
                            None => status = "done",
                        }
                    }
                }
            }
            let (id, deduplicated) = match existing {
                Some(id) => (id, true),
                None => {
                    let id = sqlx::query_scalar::<_, i64>(
                        "INSERT INTO jobs (image_ref, digest, event_id, source, policy_digest, \
                         status, attempts, not_before, created_at, updated_at, scope, pull_secrets) \
                         VALUES ($1, $2, $3, $4, $5, $7, 0, $6, $6, $6, $8, $9) RETURNING id",
                    )
                    .bind(&spec.image_ref)
                    .bind(&spec.digest)
                    .bind(&spec.event_id)
                    .bind(&spec.source)
                    .bind(&spec.policy_digest)
                    .bind(now)
                    .bind(status)
                    .bind(&scope)
                    .bind(secrets_column(&spec.pull_secrets))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query(WHAT))?;
                    (id, status == "done")
                }
            };
            if let Some(event_id) = &spec.event_id {
                sqlx::query("UPDATE events SET job_id = $1 WHERE event_id = $2")
                    .bind(id)
                    .bind(event_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query(WHAT))?;
            }
            tx.commit().await.map_err(query(WHAT))?;
            Ok(Enqueued { id, deduplicated })
        })
    }

    /// Atomically takes the oldest ready job — queued and past its backoff, or running with an
    /// expired lease (its worker died) — leases it to `worker` for `lease`, and counts the attempt.
    /// `None` when nothing is ready. `worker` must be unique per live worker.
    ///
    /// A job whose lease expired on its `max_attempts`-th attempt is marked `failed` instead of
    /// being taken again: an image that kills its worker (out of memory, a crash in a parser)
    /// would otherwise take down one worker after another forever.
    pub async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        max_attempts: u32,
    ) -> Result<Option<Job>, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "claim job";
        let now = now_ms();
        let lease_until = now.saturating_add(ms(lease));
        let lost = format!(
            "gave up after {max_attempts} attempts: the worker lost its lease on the last one \
             (crashed or killed mid-scan)"
        );
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            sqlx::query(
                "UPDATE jobs SET status = 'failed', lease_until = NULL, last_error = $1, \
                 updated_at = $2 WHERE status = 'running' AND lease_until < $2 AND attempts >= $3",
            )
            .bind(&lost)
            .bind(now)
            .bind(i64::from(max_attempts))
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            let row = sqlx::query(claim_sql(pool))
                .bind(worker)
                .bind(lease_until)
                .bind(now)
                .bind(i64::from(max_attempts))
                .fetch_optional(&mut *tx)
                .await
                .map_err(query(WHAT))?;
            tx.commit().await.map_err(query(WHAT))?;
            let Some(row) = row else { return Ok(None) };
            let attempts: i64 = row.try_get("attempts").map_err(query(WHAT))?;
            Ok(Some(Job {
                id: row.try_get("id").map_err(query(WHAT))?,
                spec: spec_from_row!(row, WHAT),
                attempts: to_u32(attempts, "jobs.attempts")?,
                lease_until_ms: lease_until,
            }))
        })
    }

    /// Extends the lease of a running job held by `worker` to `lease` from now. Workers call it
    /// well within the lease (a third of it, say) while they scan.
    pub async fn heartbeat(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "renew job lease";
        let now = now_ms();
        let affected = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET lease_until = $1, updated_at = $2 \
                 WHERE id = $3 AND worker = $4 AND status = 'running'",
            )
            .bind(now.saturating_add(ms(lease)))
            .bind(now)
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await
            .map_err(query(WHAT))?
            .rows_affected()
        });
        self.held(affected, id, worker).await
    }

    /// Marks the job done. Store its result first ([`Store::put_scan`]): a crash between the
    /// two re-runs the job, whose result then overwrites the same row.
    pub async fn complete(&self, id: i64, worker: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let affected = self.finish_leased(&JOBS, id, worker).await?;
        self.held(affected, id, worker).await
    }

    /// Records a failed attempt: queued again after an exponential backoff, or `failed` with
    /// `error` once `retry.max_attempts` attempts have been made.
    pub async fn fail(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry: RetryPolicy,
    ) -> Result<FailOutcome, StoreError> {
        let _turn = self.write_turn().await;
        match self.fail_leased(&JOBS, id, worker, error, retry).await? {
            Some((outcome, affected)) => self.held(affected, id, worker).await.map(|()| outcome),
            None => self.held(0, id, worker).await.map(|()| FailOutcome::Failed),
        }
    }

    /// Gives a running job back (graceful shutdown): queued again, claimable at once by any
    /// worker, and the attempt is not counted since the scan was interrupted, not failed.
    pub async fn release(&self, id: i64, worker: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "release job";
        let now = now_ms();
        let affected = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL, \
                 not_before = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                 updated_at = $1 WHERE id = $2 AND worker = $3 AND status = 'running'",
            )
            .bind(now)
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await
            .map_err(query(WHAT))?
            .rows_affected()
        });
        self.held(affected, id, worker).await
    }

    /// Records the manifest digest a worker resolved for a job queued by tag, unless that digest
    /// is already being scanned for the job's bundle and scope, or its report is stored for the
    /// scope: then the job is done at once and the caller drops it. Serialised with
    /// [`Store::enqueue`] on the same (digest, policy bundle, scope), so two jobs never scan one
    /// digest for one scope at the same time.
    ///
    /// A job that already has a digest keeps it: the same digest again is [`DigestOutcome::Set`],
    /// another one is [`StoreError::DigestMismatch`].
    pub async fn resolve_digest(
        &self,
        id: i64,
        worker: &str,
        digest: &str,
    ) -> Result<DigestOutcome, StoreError> {
        let _turn = self.write_turn().await;
        const WHAT: &str = "resolve job digest";
        let now = now_ms();
        let outcome = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(query(WHAT))?;
            let held: Option<(String, Option<String>, String)> = sqlx::query_as(
                "SELECT policy_digest, digest, scope FROM jobs \
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(id)
            .bind(worker)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            let Some((policy_digest, stored, scope)) = held else {
                tx.rollback().await.map_err(query(WHAT))?;
                return self.held(0, id, worker).await.map(|()| DigestOutcome::Set);
            };
            if let Some(stored) = stored {
                tx.rollback().await.map_err(query(WHAT))?;
                if stored == digest {
                    return Ok(DigestOutcome::Set);
                }
                return Err(StoreError::DigestMismatch {
                    job: id,
                    stored,
                    resolved: digest.to_owned(),
                });
            }
            let key = format!("{digest} {policy_digest} {scope}");
            pool.lock_key(&mut tx, &key).await.map_err(query(WHAT))?;
            let active = sqlx::query_scalar::<_, i64>(
                "SELECT id FROM jobs WHERE digest = $1 AND policy_digest = $2 AND scope = $4 \
                 AND status IN ('queued', 'running') AND id <> $3 ORDER BY id LIMIT 1",
            )
            .bind(digest)
            .bind(&policy_digest)
            .bind(id)
            .bind(&scope)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query(WHAT))?;
            let outcome = match active {
                Some(job) => DigestOutcome::Duplicate { job },
                None => {
                    let scanned = sqlx::query_scalar::<_, i64>(
                        "SELECT COUNT(*) FROM report_scopes WHERE manifest_digest = $1 AND scope = $2",
                    )
                    .bind(digest)
                    .bind(&scope)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query(WHAT))?
                        > 0;
                    if scanned { DigestOutcome::AlreadyScanned } else { DigestOutcome::Set }
                }
            };
            // The digest is recorded in every case, so the job says which image it stood for; a
            // done job is outside the one-active-job-per-digest index.
            let status = match outcome {
                DigestOutcome::Set => "running",
                DigestOutcome::Duplicate { .. } | DigestOutcome::AlreadyScanned => "done",
            };
            // `worker` and `status` again: a compare-and-set in case the lease expired and another
            // worker took the job since the read above.
            let affected = sqlx::query(
                "UPDATE jobs SET digest = $1, status = $2, \
                 lease_until = CASE WHEN $2 = 'running' THEN lease_until ELSE NULL END, \
                 updated_at = $3 WHERE id = $4 AND worker = $5 AND status = 'running'",
            )
            .bind(digest)
            .bind(status)
            .bind(now)
            .bind(id)
            .bind(worker)
            .execute(&mut *tx)
            .await
            .map_err(query(WHAT))?
            .rows_affected();
            if affected == 0 {
                tx.rollback().await.map_err(query(WHAT))?;
                return self.held(0, id, worker).await.map(|()| outcome);
            }
            tx.commit().await.map_err(query(WHAT))?;
            outcome
        });
        Ok(outcome)
    }

    /// Ok when the update touched the job; otherwise `LeaseLost` or `NotFound`.
    async fn held(&self, affected: u64, id: i64, worker: &str) -> Result<(), StoreError> {
        if affected > 0 {
            return Ok(());
        }
        match self.job(id).await? {
            Some(_) => Err(StoreError::LeaseLost {
                job: id,
                worker: worker.to_owned(),
            }),
            None => Err(StoreError::NotFound { job: id }),
        }
    }

    /// The job with this id, whatever its status.
    pub async fn job(&self, id: i64) -> Result<Option<JobView>, StoreError> {
        const WHAT: &str = "read job";
        with_pool!(self, pool => {
            let row = sqlx::query(concat!("SELECT ", job_view_columns!(), " FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(query(WHAT))?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(job_view_from_row!(row, WHAT)))
        })
    }

    /// The newest job for (manifest digest, policy bundle), whatever its status: what became of
    /// the last scan asked for this image.
    pub async fn latest_job_for(
        &self,
        digest: &str,
        policy_digest: &str,
    ) -> Result<Option<JobView>, StoreError> {
        const WHAT: &str = "read latest job for digest";
        with_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ",
                job_view_columns!(),
                " FROM jobs WHERE digest = $1 AND policy_digest = $2 ORDER BY id DESC LIMIT 1"
            ))
            .bind(digest)
            .bind(policy_digest)
            .fetch_optional(pool)
            .await
            .map_err(query(WHAT))?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(job_view_from_row!(row, WHAT)))
        })
    }

    /// Jobs waiting for a worker (what the intake's queue cap compares with).
    pub async fn queued_jobs(&self) -> Result<u64, StoreError> {
        const WHAT: &str = "count queued jobs";
        let n: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
                .fetch_one(pool)
                .await
                .map_err(query(WHAT))?
        });
        Ok(to_u64(n))
    }

    /// Jobs per status (the `/metrics` gauges). A running job whose lease expired still counts
    /// as running until a worker reclaims it.
    pub async fn counts(&self) -> Result<QueueCounts, StoreError> {
        const WHAT: &str = "count jobs";
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                .fetch_all(pool)
                .await
                .map_err(query(WHAT))?
        });
        let mut counts = QueueCounts::default();
        for (status, n) in rows {
            let n = to_u64(n);
            match JobStatus::parse(&status)? {
                JobStatus::Queued => counts.queued = n,
                JobStatus::Running => counts.running = n,
                JobStatus::Done => counts.done = n,
                JobStatus::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }
}

fn claim_sql<P: Dialect>(_: &P) -> &'static str {
    P::CLAIM_SQL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 100,
            base_backoff: Duration::from_millis(100),
        };
        assert_eq!(backoff(p, 1), 100);
        assert_eq!(backoff(p, 2), 200);
        assert_eq!(backoff(p, 4), 800);
        assert_eq!(backoff(p, 99), 100 << MAX_BACKOFF_DOUBLINGS);
    }
}
