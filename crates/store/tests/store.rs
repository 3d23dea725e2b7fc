//! The store against real databases: every backend-independent scenario runs twice, on an
//! SQLite file and on a PostgreSQL server started for it by gantry-testkit's
//! [`PostgresHarness`] (Debian's `postgresql` must be installed; scripts/test.sh does). Set
//! `GANTRY_TEST_POSTGRES_URL` to use an existing server instead: each scenario then creates (and
//! first drops) its own database `gantry_test_<scenario>` there.

// Helpers shared by the tests sit outside `#[test]` fns, where clippy.toml does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gantry_store::{
    DigestOutcome, FailOutcome, ImageCursor, ImageSummary, JobSpec, JobStatus, NotificationCounts,
    Pruned, PrunedResults, QueueCounts, ReportRecord, RetryPolicy, Scope, Store, StoreError,
    StoredVerdict, VerdictKey, VerdictRecord, Visibility,
};
use gantry_testkit::PostgresHarness;
use tokio::sync::Mutex;

const LEASE: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: u32 = 3;
const POLICY: &str = "sha256:policy";

fn spec(image: &str, digest: Option<&str>, event: Option<&str>) -> JobSpec {
    JobSpec {
        image_ref: image.to_owned(),
        digest: digest.map(str::to_owned),
        event_id: event.map(str::to_owned),
        source: "distribution".to_owned(),
        policy_digest: POLICY.to_owned(),
        scope: Scope::Public,
        pull_secrets: Vec::new(),
    }
}

/// What one scan stores, as the tests describe it: a public report with its SBOM and tags, and
/// the first verdict, for `library/app:<first tag>` by a webhook.
struct ResultRecord {
    manifest_digest: String,
    policy_digest: String,
    verdict_json: String,
    report_json: String,
    sbom_json: Option<String>,
    decision: String,
    repository: String,
    tags: Vec<String>,
    scope: Scope,
}

fn result(digest: &str, tags: &[&str], decision: &str) -> ResultRecord {
    ResultRecord {
        manifest_digest: digest.to_owned(),
        policy_digest: POLICY.to_owned(),
        verdict_json: format!(r#"{{"decision":"{decision}"}}"#),
        report_json: "{}".to_owned(),
        sbom_json: Some(format!(
            r#"{{"bomFormat":"CycloneDX","digest":"{digest}"}}"#
        )),
        decision: decision.to_owned(),
        repository: "library/app".to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        scope: Scope::Public,
    }
}

impl ResultRecord {
    fn reference(&self) -> String {
        match self.tags.first() {
            Some(t) => format!("{}:{t}", self.repository),
            None => self.repository.clone(),
        }
    }

    fn verdict(&self) -> VerdictRecord {
        VerdictRecord {
            key: VerdictKey {
                manifest_digest: self.manifest_digest.clone(),
                policy_digest: self.policy_digest.clone(),
                reference: self.reference(),
                mode: "webhook".to_owned(),
            },
            verdict_json: self.verdict_json.clone(),
            decision: self.decision.clone(),
            valid_until_ms: None,
        }
    }
}

/// The results API as the tests use it most: everything visible, the newest verdict.
trait ResultsExt {
    async fn put_result(&self, r: &ResultRecord) -> Result<(), StoreError>;
    async fn verdict_of(
        &self,
        digest: &str,
        policy: &str,
    ) -> Result<Option<StoredVerdict>, StoreError>;
    async fn images_of(&self, repository: &str) -> Result<Vec<ImageSummary>, StoreError>;
    async fn sbom_of(&self, digest: &str) -> Result<Option<String>, StoreError>;
}

impl ResultsExt for Store {
    async fn put_result(&self, r: &ResultRecord) -> Result<(), StoreError> {
        let report = ReportRecord {
            base: None,
            base_outdated_since_ms: None,
            manifest_digest: r.manifest_digest.clone(),
            report_json: r.report_json.clone(),
            sbom_json: r.sbom_json.clone(),
            repository: r.repository.clone(),
            tags: r.tags.clone(),
            scope: r.scope.clone(),
        };
        self.put_scan(&report, &r.verdict()).await
    }

    async fn verdict_of(
        &self,
        digest: &str,
        policy: &str,
    ) -> Result<Option<StoredVerdict>, StoreError> {
        self.find_verdict(digest, policy, None, None, &Visibility::everything())
            .await
    }

    async fn images_of(&self, repository: &str) -> Result<Vec<ImageSummary>, StoreError> {
        Ok(self
            .images(repository, POLICY, &Visibility::everything(), None, 1000)
            .await?
            .images)
    }

    async fn sbom_of(&self, digest: &str) -> Result<Option<String>, StoreError> {
        self.sbom(digest, &Visibility::everything()).await
    }
}

/// An empty database of either backend, and what keeps it alive.
struct Db {
    // Declared first so it is dropped (connections closed) before the server stops.
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
    _postgres: Option<PostgresHarness>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("gantry.db").display()
        );
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        Db {
            store,
            url,
            _dir: Some(dir),
            _postgres: None,
        }
    }

    async fn postgres(scenario: &str) -> Db {
        let (url, harness) = match std::env::var("GANTRY_TEST_POSTGRES_URL") {
            Ok(server) => (external_database(&server, scenario).await, None),
            Err(_) => {
                let harness = tokio::task::spawn_blocking(PostgresHarness::start)
                    .await
                    .unwrap()
                    // Display, not Debug: the message says what to install.
                    .unwrap_or_else(|e| panic!("{e}"));
                (harness.url(), Some(harness))
            }
        };
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        Db {
            store,
            url,
            _dir: None,
            _postgres: harness,
        }
    }

    /// Another handle on the same database, as a second replica (or process) would open it.
    async fn another_replica(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

/// A fresh database for `scenario` on the server at `url`; its URL.
async fn external_database(url: &str, scenario: &str) -> String {
    use sqlx::Executor;
    // Postgres truncates identifiers to 63 bytes; the URL must name the truncated one.
    let name: String = format!("gantry_test_{scenario}").chars().take(63).collect();
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for sql in [
        format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
        format!(r#"CREATE DATABASE "{name}""#),
    ] {
        pool.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    pool.close().await;
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").unwrap() + 3;
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{name}{query}", &base[..path])
}

/// Waits for a job to become claimable (a backoff or an expired lease) and claims it.
async fn claim_eventually(store: &Store, worker: &str, lease: Duration) -> gantry_store::Job {
    for _ in 0..500 {
        if let Some(job) = store.claim(worker, lease, MAX_ATTEMPTS).await.unwrap() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no job became claimable within 5 s");
}

async fn enqueue_dedupes_by_event_and_digest(db: &Db) {
    let store = &db.store;
    let first = store
        .enqueue(spec("r/app:1", Some("sha256:a"), Some("ev-1")))
        .await
        .unwrap();
    assert!(!first.deduplicated);
    // Same event delivered again.
    let again = store
        .enqueue(spec("r/app:1", Some("sha256:a"), Some("ev-1")))
        .await
        .unwrap();
    assert_eq!((again.id, again.deduplicated), (first.id, true));
    // Another event for the same digest while it is queued.
    let other = store
        .enqueue(spec("r/app:latest", Some("sha256:a"), Some("ev-2")))
        .await
        .unwrap();
    assert_eq!((other.id, other.deduplicated), (first.id, true));
    // Same digest under another policy bundle is another job.
    let mut p2 = spec("r/app:1", Some("sha256:a"), None);
    p2.policy_digest = "sha256:policy2".to_owned();
    assert!(!store.enqueue(p2).await.unwrap().deduplicated);
    // No digest: only the event id dedupes.
    let t1 = store.enqueue(spec("r/app:2", None, None)).await.unwrap();
    let t2 = store.enqueue(spec("r/app:2", None, None)).await.unwrap();
    assert!(!t1.deduplicated && !t2.deduplicated && t1.id != t2.id);

    // Once a verdict exists (job done), the digest is not queued again.
    let job = store
        .claim("w", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, first.id);
    store
        .put_result(&result("sha256:a", &["1"], "allow"))
        .await
        .unwrap();
    store.complete(job.id, "w").await.unwrap();
    let after = store
        .enqueue(spec("r/app:1", Some("sha256:a"), Some("ev-3")))
        .await
        .unwrap();
    assert_eq!((after.id, after.deduplicated), (first.id, true));
    // A verdict stored without any job (a CLI scan) still dedupes, with a job already done.
    store
        .put_result(&result("sha256:cli", &[], "deny"))
        .await
        .unwrap();
    let cli = store
        .enqueue(spec("r/app:cli", Some("sha256:cli"), None))
        .await
        .unwrap();
    assert!(cli.deduplicated);
    assert_eq!(
        store.job(cli.id).await.unwrap().unwrap().status,
        JobStatus::Done
    );
}

async fn claim_takes_oldest_ready_job_first(db: &Db) {
    let store = &db.store;
    let mut ids = Vec::new();
    for i in 0..5 {
        let d = format!("sha256:{i}");
        ids.push(
            store
                .enqueue(spec("r/app", Some(&d), None))
                .await
                .unwrap()
                .id,
        );
    }
    for expected in &ids {
        let job = store
            .claim("w", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, *expected);
        assert_eq!(job.attempts, 1);
    }
    assert!(
        store
            .claim("w", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .is_none()
    );
    let view = store.job(ids[0]).await.unwrap().unwrap();
    assert_eq!(view.status, JobStatus::Running);
    assert_eq!(view.worker.as_deref(), Some("w"));
    assert!(store.job(9999).await.unwrap().is_none());
}

async fn concurrent_claimers_never_share_a_job(db: &Db) {
    let store = &db.store;
    const JOBS: usize = 500;
    const WORKERS: usize = 8;
    for i in 0..JOBS {
        let d = format!("sha256:c{i}");
        store.enqueue(spec("r/app", Some(&d), None)).await.unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = store.clone();
        let seen = Arc::clone(&seen);
        tasks.push(tokio::spawn(async move {
            let worker = format!("worker-{w}");
            while let Some(job) = store.claim(&worker, LEASE, MAX_ATTEMPTS).await.unwrap() {
                seen.lock().await.push(job.id);
                store.complete(job.id, &worker).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().await;
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), JOBS, "every job claimed exactly once");
    assert_eq!(distinct.len(), JOBS);
    assert_eq!(
        store.counts().await.unwrap(),
        QueueCounts {
            queued: 0,
            running: 0,
            failed: 0,
            done: JOBS as u64
        }
    );
}

async fn expired_lease_is_reclaimed_after_a_crash(db: &Db) {
    let store = &db.store;
    let id = store
        .enqueue(spec("r/app", Some("sha256:crash"), None))
        .await
        .unwrap()
        .id;
    {
        // The worker takes the job and dies without completing it.
        let job = store
            .claim("doomed", Duration::from_millis(100), MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, id);
    }
    assert!(
        store
            .claim("other", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .is_none(),
        "lease still held"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = store
        .claim("other", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.id, job.attempts), (id, 2));
    // The dead worker's late calls are refused.
    assert!(matches!(
        store.complete(id, "doomed").await,
        Err(StoreError::LeaseLost { job, .. }) if job == id
    ));
    assert!(matches!(
        store.heartbeat(id, "doomed", LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.heartbeat(id, "other", LEASE).await.unwrap();
    store.complete(id, "other").await.unwrap();
    assert!(matches!(
        store.complete(12345, "other").await,
        Err(StoreError::NotFound { job: 12345 })
    ));
}

async fn failure_backs_off_then_fails_for_good(db: &Db) {
    let store = &db.store;
    let retry = RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(100),
    };
    let id = store
        .enqueue(spec("r/app", Some("sha256:bad"), None))
        .await
        .unwrap()
        .id;
    for attempt in 1..=3u32 {
        let job = loop {
            if let Some(job) = store.claim("w", LEASE, MAX_ATTEMPTS).await.unwrap() {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!((job.id, job.attempts), (id, attempt));
        let before = std::time::SystemTime::now();
        let outcome = store
            .fail(id, "w", "registry said 500", retry)
            .await
            .unwrap();
        if attempt < 3 {
            let FailOutcome::Retrying { not_before_ms } = outcome else {
                panic!("attempt {attempt} should be retried")
            };
            let wait = 100_i64 << (attempt - 1);
            let floor = before
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
                + wait;
            assert!(not_before_ms >= floor, "backoff {wait} ms respected");
            // Not claimable during the backoff.
            assert!(
                store
                    .claim("w", LEASE, MAX_ATTEMPTS)
                    .await
                    .unwrap()
                    .is_none()
            );
        } else {
            assert_eq!(outcome, FailOutcome::Failed);
        }
    }
    let view = store.job(id).await.unwrap().unwrap();
    assert_eq!(view.status, JobStatus::Failed);
    assert_eq!(view.last_error.as_deref(), Some("registry said 500"));
    assert_eq!(view.attempts, 3);
    assert!(matches!(
        store.fail(id, "w", "again", retry).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(store.counts().await.unwrap().failed, 1);
    // A failed digest may be queued again by a later push.
    assert!(
        !store
            .enqueue(spec("r/app", Some("sha256:bad"), None))
            .await
            .unwrap()
            .deduplicated
    );
}

async fn results_upsert_and_tags_accumulate(db: &Db) {
    let store = &db.store;
    assert!(
        store
            .verdict_of("sha256:r", "sha256:policy")
            .await
            .unwrap()
            .is_none()
    );
    store
        .put_result(&result("sha256:r", &["1.0"], "deny"))
        .await
        .unwrap();
    let mut second = result("sha256:r", &["latest", "1.0"], "allow");
    second.sbom_json = None;
    store.put_result(&second).await.unwrap();
    let v = store
        .verdict_of("sha256:r", "sha256:policy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.decision, "allow");
    assert_eq!(v.verdict_json, r#"{"decision":"allow"}"#);
    assert_eq!(v.tags, ["1.0", "latest"]);
    // The SBOM of the first put survives a put without one.
    assert!(
        store
            .sbom_of("sha256:r")
            .await
            .unwrap()
            .unwrap()
            .contains("CycloneDX")
    );
    assert!(store.sbom_of("sha256:none").await.unwrap().is_none());
    store
        .put_result(&result("sha256:s", &["2.0"], "deny"))
        .await
        .unwrap();
    let images = store.images_of("library/app").await.unwrap();
    let summary: Vec<_> = images
        .iter()
        .map(|i| {
            (
                i.manifest_digest.as_str(),
                i.decision.as_str(),
                i.tags.clone(),
            )
        })
        .collect();
    assert!(summary.contains(&(
        "sha256:r",
        "allow",
        vec!["1.0".to_owned(), "latest".to_owned()]
    )));
    assert!(summary.contains(&("sha256:s", "deny", vec!["2.0".to_owned()])));
    assert!(store.images_of("library/other").await.unwrap().is_empty());
}

#[tokio::test]
async fn queue_and_results_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    let (queued, running) = {
        let store = Store::open_sqlite(&path).await.unwrap();
        let running = store
            .enqueue(spec("r/a", Some("sha256:1"), Some("e1")))
            .await
            .unwrap()
            .id;
        let queued = store
            .enqueue(spec("r/b", Some("sha256:2"), Some("e2")))
            .await
            .unwrap()
            .id;
        store
            .claim("before", Duration::from_millis(50), MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap();
        store
            .put_result(&result("sha256:0", &["old"], "allow"))
            .await
            .unwrap();
        store.close().await;
        (queued, running)
    };
    let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    assert_eq!(
        store.job(queued).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
    assert_eq!(
        store.job(running).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    // Redelivered events are still absorbed after the restart.
    assert!(
        store
            .enqueue(spec("r/a", Some("sha256:1"), Some("e1")))
            .await
            .unwrap()
            .deduplicated
    );
    assert!(
        store
            .verdict_of("sha256:0", "sha256:policy")
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = vec![
        store
            .claim("after", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
        store
            .claim("after", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
    ];
    got.sort_unstable();
    assert_eq!(got, [running, queued]);
}

#[tokio::test]
async fn plain_sqlite_url_creates_the_file_and_an_explicit_mode_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert!(path.exists());
    let missing = dir.path().join("missing.db");
    let err = Store::open(&format!("sqlite://{}?mode=rw", missing.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn open_rejects_unknown_urls_and_hides_passwords() {
    let err = Store::open("mysql://u:hunter2@h/db").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = Store::open("postgres://u:hunter2@host:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A job whose worker dies on every attempt (an image that crashes or OOM-kills the scanner)
/// ends `failed` after the last attempt instead of being handed to worker after worker.
async fn job_that_kills_its_worker_every_time_ends_failed(db: &Db) {
    let store = &db.store;
    let short = Duration::from_millis(50);
    let id = store
        .enqueue(spec("r/app", Some("sha256:poison"), None))
        .await
        .unwrap()
        .id;
    for attempt in 1..=MAX_ATTEMPTS {
        let job = claim_eventually(store, &format!("victim-{attempt}"), short).await;
        assert_eq!((job.id, job.attempts), (id, attempt));
        // The worker dies: no heartbeat, no fail, no complete.
    }
    let healthy = store
        .enqueue(spec("r/app", Some("sha256:healthy"), None))
        .await
        .unwrap()
        .id;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The same claim retires the poison job and takes the next one.
    let next = store
        .claim("survivor", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, healthy);
    let view = store.job(id).await.unwrap().unwrap();
    assert_eq!(view.status, JobStatus::Failed);
    assert_eq!(view.attempts, MAX_ATTEMPTS);
    assert_eq!(view.lease_until_ms, None);
    let error = view.last_error.unwrap();
    assert!(
        error.contains("lost its lease") && error.contains(&MAX_ATTEMPTS.to_string()),
        "{error}"
    );
    assert!(
        store
            .claim("survivor", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.complete(id, "victim-3").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(store.counts().await.unwrap().failed, 1);
    // A later push may try the digest again.
    assert!(
        !store
            .enqueue(spec("r/app", Some("sha256:poison"), None))
            .await
            .unwrap()
            .deduplicated
    );
}

/// Graceful shutdown gives the job back at once, and the interrupted attempt does not count.
async fn release_requeues_without_counting_the_attempt(db: &Db) {
    let store = &db.store;
    let id = store
        .enqueue(spec("r/app", Some("sha256:rel"), None))
        .await
        .unwrap()
        .id;
    let job = store
        .claim("stopping", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.attempts, 1);
    assert!(matches!(
        store.release(id, "someone-else").await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.release(id, "stopping").await.unwrap();
    let view = store.job(id).await.unwrap().unwrap();
    assert_eq!(view.status, JobStatus::Queued);
    assert_eq!(
        (view.attempts, view.worker, view.lease_until_ms),
        (0, None, None)
    );
    // The digest stays taken while queued: a new push dedupes to it.
    let again = store
        .enqueue(spec("r/app", Some("sha256:rel"), None))
        .await
        .unwrap();
    assert_eq!((again.id, again.deduplicated), (id, true));
    // Claimable now, by another replica's worker, as a first attempt.
    let job = store
        .claim("next", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.id, job.attempts), (id, 1));
    // The released worker's late calls are refused.
    assert!(matches!(
        store.complete(id, "stopping").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.release(id, "stopping").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.release(4242, "next").await,
        Err(StoreError::NotFound { job: 4242 })
    ));
    store.complete(id, "next").await.unwrap();
}

async fn resolve_digest_sets_or_absorbs_duplicates(db: &Db) {
    let store = &db.store;
    const X: &str = "sha256:x";
    let tag_job = |tag: &str| spec(&format!("r/app:{tag}"), None, None);
    let a = store.enqueue(tag_job("a")).await.unwrap().id;
    let b = store.enqueue(tag_job("b")).await.unwrap().id;
    let c = store.enqueue(tag_job("c")).await.unwrap().id;
    let d = store.enqueue(tag_job("d")).await.unwrap().id;

    assert_eq!(
        store
            .claim("w1", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
        a
    );
    assert_eq!(
        store.resolve_digest(a, "w1", X).await.unwrap(),
        DigestOutcome::Set
    );
    let view = store.job(a).await.unwrap().unwrap();
    assert_eq!(
        (view.status, view.spec.digest.as_deref()),
        (JobStatus::Running, Some(X))
    );
    // Idempotent for the same digest; another digest is refused.
    assert_eq!(
        store.resolve_digest(a, "w1", X).await.unwrap(),
        DigestOutcome::Set
    );
    assert!(matches!(
        store.resolve_digest(a, "w1", "sha256:y").await,
        Err(StoreError::DigestMismatch { job, .. }) if job == a
    ));
    assert!(matches!(
        store.resolve_digest(a, "intruder", X).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.resolve_digest(777, "w1", X).await,
        Err(StoreError::NotFound { job: 777 })
    ));
    // A push naming the digest now dedupes to the job that resolved it.
    let pushed = store.enqueue(spec("r/app", Some(X), None)).await.unwrap();
    assert_eq!((pushed.id, pushed.deduplicated), (a, true));

    // Another tag of the same image, while `a` scans it: absorbed.
    assert_eq!(
        store
            .claim("w2", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
        b
    );
    assert_eq!(
        store.resolve_digest(b, "w2", X).await.unwrap(),
        DigestOutcome::Duplicate { job: a }
    );
    let view = store.job(b).await.unwrap().unwrap();
    assert_eq!(
        (view.status, view.spec.digest.as_deref()),
        (JobStatus::Done, Some(X))
    );
    assert!(matches!(
        store.complete(b, "w2").await,
        Err(StoreError::LeaseLost { .. })
    ));

    store.put_result(&result(X, &["a"], "allow")).await.unwrap();
    store.complete(a, "w1").await.unwrap();
    // Once the verdict is stored: already scanned.
    assert_eq!(
        store
            .claim("w3", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
        c
    );
    assert_eq!(
        store.resolve_digest(c, "w3", X).await.unwrap(),
        DigestOutcome::AlreadyScanned
    );
    assert_eq!(store.job(c).await.unwrap().unwrap().status, JobStatus::Done);

    // Under another policy bundle the stored report serves too (the verdict is computed from
    // it without a pull), but another scope is another scan.
    let mut other_policy = tag_job("e");
    other_policy.policy_digest = "sha256:policy2".to_owned();
    other_policy.scope = Scope::Namespace("team-a".to_owned());
    let e = store.enqueue(other_policy).await.unwrap().id;
    assert_eq!(
        store
            .claim("w4", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
        d
    );
    assert_eq!(
        store.resolve_digest(d, "w4", "sha256:z").await.unwrap(),
        DigestOutcome::Set
    );
    assert_eq!(
        store
            .claim("w5", LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap()
            .id,
        e
    );
    assert_eq!(
        store.resolve_digest(e, "w5", X).await.unwrap(),
        DigestOutcome::Set
    );
    // A released job keeps its resolved digest, and with it the dedupe.
    store.release(d, "w4").await.unwrap();
    let pushed = store
        .enqueue(spec("r/app", Some("sha256:z"), None))
        .await
        .unwrap();
    assert_eq!((pushed.id, pushed.deduplicated), (d, true));
}

/// Many workers resolve tags to one digest while pushes of that digest arrive: exactly one job
/// ends up scanning it, and everyone else points at that job.
async fn resolve_digest_races_with_enqueue(db: &Db) {
    const TAG_JOBS: usize = 12;
    const PUSHES: usize = 6;
    const DIGEST: &str = "sha256:contended";
    let replica = db.another_replica().await;
    let mut held = Vec::new();
    for i in 0..TAG_JOBS {
        let store = if i % 2 == 0 { &db.store } else { &replica };
        store
            .enqueue(spec(&format!("r/app:{i}"), None, None))
            .await
            .unwrap();
        let worker = format!("w{i}");
        let job = store
            .claim(&worker, LEASE, MAX_ATTEMPTS)
            .await
            .unwrap()
            .unwrap();
        held.push((job.id, worker));
    }
    let mut tasks = Vec::new();
    for (i, (id, worker)) in held.iter().cloned().enumerate() {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            replica.clone()
        };
        tasks.push(tokio::spawn(async move {
            (
                Some(id),
                store.resolve_digest(id, &worker, DIGEST).await.unwrap(),
                None,
            )
        }));
    }
    for i in 0..PUSHES {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            replica.clone()
        };
        tasks.push(tokio::spawn(async move {
            let e = store
                .enqueue(spec("r/app", Some(DIGEST), None))
                .await
                .unwrap();
            (None, DigestOutcome::Set, Some(e))
        }));
    }
    let mut scanners = Vec::new();
    let mut pointers = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (Some(id), DigestOutcome::Set, None) => scanners.push(id),
            (Some(_), DigestOutcome::Duplicate { job }, None) => pointers.push(job),
            (None, _, Some(e)) if !e.deduplicated => scanners.push(e.id),
            (None, _, Some(e)) => pointers.push(e.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(scanners.len(), 1, "one scan of the digest: {scanners:?}");
    assert!(pointers.iter().all(|p| *p == scanners[0]), "{pointers:?}");
    let active = db.store.latest_job_for(DIGEST, POLICY).await.unwrap();
    let mut active_ids = Vec::new();
    for (id, _) in &held {
        let view = db.store.job(*id).await.unwrap().unwrap();
        if matches!(view.status, JobStatus::Queued | JobStatus::Running) {
            active_ids.push(*id);
        }
    }
    // The job that scans is a tag job (running) or a push (queued, the newest job).
    assert!(active_ids.len() <= 1, "{active_ids:?}");
    assert!(active.is_some());
    replica.close().await;
}

async fn tags_are_upserted(db: &Db) {
    let store = &db.store;
    const D: &str = "sha256:tagged";
    store.add_tag("library/app", "v1", D).await.unwrap();
    let first = tag_times(db, "v1", D).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.add_tag("library/app", "v1", D).await.unwrap();
    let second = tag_times(db, "v1", D).await;
    assert_eq!(first.0, second.0, "first_seen kept");
    assert!(second.1 > first.1, "last_seen moved: {first:?} {second:?}");
    store.add_tag("library/other", "v1", D).await.unwrap();
    store
        .put_result(&result(D, &["latest"], "allow"))
        .await
        .unwrap();
    let verdict = store.verdict_of(D, POLICY).await.unwrap().unwrap();
    assert_eq!(verdict.tags, ["latest", "v1"]);
    // Tagged in another repository: listed there too, with that repository's tags.
    let other = store.images_of("library/other").await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].tags, ["v1"]);
}

/// (first_seen, last_seen) of a tag of library/app, read behind the store's back.
async fn tag_times(db: &Db, tag: &str, digest: &str) -> (i64, i64) {
    const SQL: &str = "SELECT first_seen, last_seen FROM image_tags \
                       WHERE repository = 'library/app' AND tag = $1 AND manifest_digest = $2";
    if db.store.backend() == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let row = sqlx::query_as(SQL)
            .bind(tag)
            .bind(digest)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        row
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let row = sqlx::query_as(SQL)
            .bind(tag)
            .bind(digest)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        row
    }
}

async fn stale_verdicts_are_the_newest_missing_or_expired_under_a_policy(db: &Db) {
    let store = &db.store;
    let put = |digest: &str, policy: &str, tags: &[&str]| {
        let mut r = result(digest, tags, "allow");
        r.policy_digest = policy.to_owned();
        r.report_json = format!(r#"{{"facts":"{digest} under {policy}"}}"#);
        r
    };
    let tick = || tokio::time::sleep(Duration::from_millis(5));
    // d1: old under a, newer under b → b's verdict.
    store
        .put_result(&put("sha256:d1", "sha256:a", &["1"]))
        .await
        .unwrap();
    tick().await;
    store
        .put_result(&put("sha256:d1", "sha256:b", &["1"]))
        .await
        .unwrap();
    // d2: only under a.
    store
        .put_result(&put("sha256:d2", "sha256:a", &[]))
        .await
        .unwrap();
    // d3: already evaluated under the new policy.
    store
        .put_result(&put("sha256:d3", "sha256:a", &[]))
        .await
        .unwrap();
    store
        .put_result(&put("sha256:d3", "sha256:new", &[]))
        .await
        .unwrap();
    // d4: newest is under a although b sorts after it.
    store
        .put_result(&put("sha256:d4", "sha256:b", &["4"]))
        .await
        .unwrap();
    tick().await;
    store
        .put_result(&put("sha256:d4", "sha256:a", &["4", "four"]))
        .await
        .unwrap();
    // d0: only under the new policy.
    store
        .put_result(&put("sha256:d0", "sha256:new", &[]))
        .await
        .unwrap();

    let now = now();
    let stale = store.stale_verdicts("sha256:new", now, 10).await.unwrap();
    let got: Vec<_> = stale
        .iter()
        .map(|v| {
            (
                v.key.manifest_digest.as_str(),
                v.key.policy_digest.as_str(),
                v.key.reference.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("sha256:d1", "sha256:b", "library/app:1"),
            ("sha256:d2", "sha256:a", "library/app"),
            ("sha256:d4", "sha256:a", "library/app:4"),
        ]
    );
    // The report the re-judgement reads is the digest's one, whoever stored it last.
    let report = store
        .report("sha256:d1", &Visibility::everything())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report.report_json,
        r#"{"facts":"sha256:d1 under sha256:b"}"#
    );
    let first = store.stale_verdicts("sha256:new", now, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].key.manifest_digest, "sha256:d1");
    // Once re-evaluated, a verdict is no longer stale.
    let mut fresh = stale[0].key.clone();
    fresh.policy_digest = "sha256:new".to_owned();
    store
        .put_verdict(&VerdictRecord {
            key: fresh.clone(),
            verdict_json: "{}".to_owned(),
            decision: "allow".to_owned(),
            valid_until_ms: Some(now + 50),
        })
        .await
        .unwrap();
    let after = store.stale_verdicts("sha256:new", now, 10).await.unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].key.manifest_digest, "sha256:d2");
    // …until it expires: then it is stale under its own bundle.
    let later = store
        .stale_verdicts("sha256:new", now + 50, 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 3);
    assert_eq!(later[0].key, fresh);
    let v = store
        .verdict(&fresh, &Visibility::everything())
        .await
        .unwrap()
        .unwrap();
    assert!(v.is_valid_at(now + 49) && !v.is_valid_at(now + 50));
    assert!(
        store
            .stale_verdicts("sha256:new", now, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Verdicts are per (digest, bundle, reference, mode); the report is per digest.
async fn verdicts_are_keyed_by_reference_and_mode(db: &Db) {
    let store = &db.store;
    const D: &str = "sha256:named";
    store.put_result(&result(D, &["1"], "deny")).await.unwrap();
    let key = |reference: &str, mode: &str| VerdictKey {
        manifest_digest: D.to_owned(),
        policy_digest: POLICY.to_owned(),
        reference: reference.to_owned(),
        mode: mode.to_owned(),
    };
    let all = Visibility::everything();
    assert!(
        store
            .verdict(&key("library/app:1", "admission"), &all)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .verdict(&key("library/waived:1", "webhook"), &all)
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .put_verdict(&VerdictRecord {
            key: key("library/waived:1", "admission"),
            verdict_json: r#"{"decision":"allow"}"#.to_owned(),
            decision: "allow".to_owned(),
            valid_until_ms: None,
        })
        .await
        .unwrap();
    let v = store
        .verdict(&key("library/app:1", "webhook"), &all)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.decision, "deny");
    let w = store
        .verdict(&key("library/waived:1", "admission"), &all)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (w.decision.as_str(), w.key.mode.as_str()),
        ("allow", "admission")
    );
    // The newest of a digest's verdicts, and narrowed by mode.
    let newest = store.verdict_of(D, POLICY).await.unwrap().unwrap();
    assert_eq!(newest.key.reference, "library/waived:1");
    let webhook = store
        .find_verdict(D, POLICY, None, Some("webhook"), &all)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(webhook.decision, "deny");
    // A verdict needs its report.
    let orphan = VerdictRecord {
        key: VerdictKey {
            manifest_digest: "sha256:never-scanned".to_owned(),
            ..key("x", "api")
        },
        verdict_json: "{}".to_owned(),
        decision: "allow".to_owned(),
        valid_until_ms: None,
    };
    assert!(store.put_verdict(&orphan).await.is_err());
}

/// An image pulled with a namespace's pull secret is that namespace's: its report, verdicts,
/// SBOM and listing are hidden from everyone else, and its scan does not dedupe a public one.
async fn namespace_scoped_results_are_visible_to_that_namespace_only(db: &Db) {
    let store = &db.store;
    const PRIVATE: &str = "sha256:private";
    const PUBLIC: &str = "sha256:public";
    let mut private = result(PRIVATE, &["1"], "deny");
    private.scope = Scope::Namespace("team-a".to_owned());
    store.put_result(&private).await.unwrap();
    store
        .put_result(&result(PUBLIC, &["2"], "allow"))
        .await
        .unwrap();

    let team_a = Visibility::namespaces(["team-a"]);
    let team_b = Visibility::namespaces(["team-b"]);
    for (who, sees) in [
        (Visibility::everything(), true),
        (team_a.clone(), true),
        (team_b.clone(), false),
        (Visibility::public(), false),
    ] {
        let v = store
            .find_verdict(PRIVATE, POLICY, None, None, &who)
            .await
            .unwrap();
        assert_eq!(v.is_some(), sees, "{who:?}");
        assert_eq!(store.report(PRIVATE, &who).await.unwrap().is_some(), sees);
        assert_eq!(store.sbom(PRIVATE, &who).await.unwrap().is_some(), sees);
        let listed: Vec<String> = store
            .images("library/app", POLICY, &who, None, 10)
            .await
            .unwrap()
            .images
            .into_iter()
            .map(|i| i.manifest_digest)
            .collect();
        assert_eq!(listed.contains(&PRIVATE.to_owned()), sees, "{who:?}");
        assert!(listed.contains(&PUBLIC.to_owned()));
        assert!(
            store
                .find_verdict(PUBLIC, POLICY, None, None, &who)
                .await
                .unwrap()
                .is_some()
        );
    }
    let report = store.report(PRIVATE, &team_a).await.unwrap().unwrap();
    assert_eq!(report.scopes, [Scope::Namespace("team-a".to_owned())]);

    // A public job for the private digest is not absorbed by the namespace's report; a job of
    // the namespace is.
    let public_job = store
        .enqueue(spec("r/app:1", Some(PRIVATE), None))
        .await
        .unwrap();
    assert!(!public_job.deduplicated);
    let mut ns_spec = spec("r/app:1", Some(PRIVATE), None);
    ns_spec.scope = Scope::Namespace("team-a".to_owned());
    ns_spec.pull_secrets = vec!["regcred".to_owned(), "other".to_owned()];
    assert!(store.enqueue(ns_spec.clone()).await.unwrap().deduplicated);
    // Two scopes scan one digest side by side; the job keeps its secret names.
    ns_spec.scope = Scope::Namespace("team-b".to_owned());
    let b = store.enqueue(ns_spec.clone()).await.unwrap();
    assert!(!b.deduplicated && b.id != public_job.id);
    let view = store.job(b.id).await.unwrap().unwrap();
    assert_eq!(view.spec, ns_spec);
}

/// Images of a repository come newest first, a page at a time.
async fn images_are_listed_a_page_at_a_time(db: &Db) {
    let store = &db.store;
    for i in 0..5 {
        store
            .put_result(&result(&format!("sha256:p{i}"), &[&i.to_string()], "allow"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let all = Visibility::everything();
    let mut seen = Vec::new();
    let mut cursor: Option<ImageCursor> = None;
    loop {
        let page = store
            .images("library/app", POLICY, &all, cursor.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.images.len() <= 2);
        seen.extend(page.images.iter().map(|i| i.manifest_digest.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "sha256:p4",
            "sha256:p3",
            "sha256:p2",
            "sha256:p1",
            "sha256:p0"
        ]
    );
}

/// Results nobody pushed, scanned or judged for the retention are deleted with their
/// verdicts, SBOM and tags; recent ones and those with queued work stay.
async fn prune_results_removes_images_not_seen_for_the_retention(db: &Db) {
    let store = &db.store;
    store
        .put_result(&result("sha256:old", &["1"], "allow"))
        .await
        .unwrap();
    // Another bundle's scan of this digest is queued (its report is stored meanwhile).
    let mut busy = spec("r/app:2", Some("sha256:busy"), None);
    busy.policy_digest = "sha256:other".to_owned();
    assert!(!store.enqueue(busy).await.unwrap().deduplicated);
    store
        .put_result(&result("sha256:busy", &["2"], "allow"))
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_results(Duration::from_secs(3600))
            .await
            .unwrap(),
        PrunedResults::default()
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    store
        .put_result(&result("sha256:new", &["3"], "allow"))
        .await
        .unwrap();
    let pruned = store
        .prune_results(Duration::from_millis(20))
        .await
        .unwrap();
    assert_eq!(
        pruned,
        PrunedResults {
            reports: 1,
            sboms: 1,
            tags: 1
        }
    );
    assert!(
        store
            .verdict_of("sha256:old", POLICY)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.sbom_of("sha256:old").await.unwrap().is_none());
    assert!(
        store
            .verdict_of("sha256:busy", POLICY)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .verdict_of("sha256:new", POLICY)
            .await
            .unwrap()
            .is_some()
    );
    // The image is scanned again when asked for.
    assert!(
        !store
            .enqueue(spec("r/app:1", Some("sha256:old"), None))
            .await
            .unwrap()
            .deduplicated
    );
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn ping_and_latest_job_for_a_digest(db: &Db) {
    let store = &db.store;
    store.ping().await.unwrap();
    assert!(
        store
            .latest_job_for("sha256:l", POLICY)
            .await
            .unwrap()
            .is_none()
    );
    let retry = RetryPolicy {
        max_attempts: 1,
        base_backoff: Duration::from_millis(10),
    };
    let first = store
        .enqueue(spec("r/app", Some("sha256:l"), None))
        .await
        .unwrap()
        .id;
    store
        .claim("w", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.fail(first, "w", "boom", retry).await.unwrap(),
        FailOutcome::Failed
    );
    let latest = store
        .latest_job_for("sha256:l", POLICY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.id, latest.status), (first, JobStatus::Failed));
    let second = store
        .enqueue(spec("r/app", Some("sha256:l"), None))
        .await
        .unwrap()
        .id;
    let latest = store
        .latest_job_for("sha256:l", POLICY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.id, latest.status), (second, JobStatus::Queued));
    assert!(
        store
            .latest_job_for("sha256:l", "sha256:policy2")
            .await
            .unwrap()
            .is_none()
    );
}

async fn notifications_are_delivered_retried_and_reclaimed(db: &Db) {
    let store = &db.store;
    let retry = RetryPolicy {
        max_attempts: 2,
        base_backoff: Duration::from_millis(100),
    };
    let n1 = store.enqueue_notification(r#"{"n":1}"#).await.unwrap();
    let n2 = store.enqueue_notification(r#"{"n":2}"#).await.unwrap();
    let got = store
        .claim_notification("s1", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.id, got.payload_json.as_str(), got.attempts),
        (n1, r#"{"n":1}"#, 1)
    );
    assert_eq!(
        store
            .claim_notification("s2", LEASE)
            .await
            .unwrap()
            .unwrap()
            .id,
        n2
    );
    assert!(
        store
            .claim_notification("s3", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.notification_counts().await.unwrap(),
        NotificationCounts {
            delivering: 2,
            ..NotificationCounts::default()
        }
    );

    store.notification_delivered(n1, "s1").await.unwrap();
    assert!(matches!(
        store.notification_delivered(n1, "s1").await,
        Err(StoreError::NotificationLeaseLost { notification, .. }) if notification == n1
    ));
    assert!(matches!(
        store.notification_delivered(999, "s1").await,
        Err(StoreError::NotificationNotFound { notification: 999 })
    ));

    let FailOutcome::Retrying { not_before_ms } = store
        .notification_failed(n2, "s2", "chat answered 503", retry)
        .await
        .unwrap()
    else {
        panic!("first failure is retried")
    };
    assert!(not_before_ms > 0);
    assert!(
        store
            .claim_notification("s3", LEASE)
            .await
            .unwrap()
            .is_none(),
        "backing off"
    );
    let again = loop {
        if let Some(n) = store.claim_notification("s3", LEASE).await.unwrap() {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((again.id, again.attempts), (n2, 2));
    assert!(matches!(
        store.notification_failed(n2, "s2", "late", retry).await,
        Err(StoreError::NotificationLeaseLost { .. })
    ));
    assert_eq!(
        store
            .notification_failed(n2, "s3", "chat answered 503", retry)
            .await
            .unwrap(),
        FailOutcome::Failed
    );

    // A sender that dies loses its lease; another sends it again.
    let n3 = store.enqueue_notification(r#"{"n":3}"#).await.unwrap();
    let dying = store
        .claim_notification("dead", Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dying.id, n3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let taken = store
        .claim_notification("s4", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.id, taken.attempts), (n3, 2));
    assert!(matches!(
        store.notification_delivered(n3, "dead").await,
        Err(StoreError::NotificationLeaseLost { .. })
    ));
    store.notification_delivered(n3, "s4").await.unwrap();
    assert_eq!(
        store.notification_counts().await.unwrap(),
        NotificationCounts {
            queued: 0,
            delivering: 0,
            delivered: 2,
            failed: 1
        }
    );
}

/// Two replicas on one database, each with several workers, while jobs and notifications keep
/// arriving through both: every job is completed, and every notification delivered, exactly once.
async fn two_replicas_complete_every_job_exactly_once(db: &Db) {
    const JOBS: usize = 200;
    const WORKERS_PER_REPLICA: usize = 4;
    let replicas = [db.store.clone(), db.another_replica().await];
    let enqueued = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(Mutex::new(Vec::new()));
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for (r, store) in replicas.iter().enumerate() {
        for w in 0..WORKERS_PER_REPLICA {
            let store = store.clone();
            let enqueued = Arc::clone(&enqueued);
            let completed = Arc::clone(&completed);
            let delivered = Arc::clone(&delivered);
            workers.push(tokio::spawn(async move {
                let worker = format!("replica-{r}-worker-{w}");
                loop {
                    // Read before claiming: once set, an empty queue is really empty.
                    let done_enqueuing = enqueued.load(Ordering::SeqCst);
                    let job = store.claim(&worker, LEASE, MAX_ATTEMPTS).await.unwrap();
                    let note = store.claim_notification(&worker, LEASE).await.unwrap();
                    if let Some(job) = &job {
                        store.heartbeat(job.id, &worker, LEASE).await.unwrap();
                        store.complete(job.id, &worker).await.unwrap();
                        completed.lock().await.push(job.id);
                    }
                    if let Some(note) = &note {
                        store
                            .notification_delivered(note.id, &worker)
                            .await
                            .unwrap();
                        delivered.lock().await.push(note.id);
                    }
                    if job.is_none() && note.is_none() {
                        if done_enqueuing {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }));
        }
    }
    let mut ids = HashSet::new();
    let mut note_ids = HashSet::new();
    for i in 0..JOBS {
        let store = &replicas[i % 2];
        let digest = format!("sha256:replica-{i}");
        let e = store
            .enqueue(spec("r/app", Some(&digest), None))
            .await
            .unwrap();
        assert!(!e.deduplicated);
        ids.insert(e.id);
        note_ids.insert(
            store
                .enqueue_notification(&format!(r#"{{"job":{}}}"#, e.id))
                .await
                .unwrap(),
        );
    }
    enqueued.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let completed = completed.lock().await;
    assert_eq!(completed.len(), JOBS, "no job completed twice");
    assert_eq!(completed.iter().copied().collect::<HashSet<_>>(), ids);
    let delivered = delivered.lock().await;
    assert_eq!(delivered.len(), JOBS, "no notification delivered twice");
    assert_eq!(delivered.iter().copied().collect::<HashSet<_>>(), note_ids);
    for store in &replicas {
        assert_eq!(
            store.counts().await.unwrap(),
            QueueCounts {
                done: JOBS as u64,
                ..QueueCounts::default()
            }
        );
    }
    assert_eq!(
        db.store.notification_counts().await.unwrap().delivered,
        JOBS as u64
    );
    replicas[1].close().await;
}

/// Each scenario as a test on each backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = super::Db::sqlite().await;
                    super::$scenario(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = super::Db::postgres(stringify!($scenario)).await;
                    super::$scenario(&db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    enqueue_dedupes_by_event_and_digest,
    claim_takes_oldest_ready_job_first,
    concurrent_claimers_never_share_a_job,
    expired_lease_is_reclaimed_after_a_crash,
    failure_backs_off_then_fails_for_good,
    results_upsert_and_tags_accumulate,
    job_that_kills_its_worker_every_time_ends_failed,
    release_requeues_without_counting_the_attempt,
    resolve_digest_sets_or_absorbs_duplicates,
    resolve_digest_races_with_enqueue,
    tags_are_upserted,
    stale_verdicts_are_the_newest_missing_or_expired_under_a_policy,
    verdicts_are_keyed_by_reference_and_mode,
    namespace_scoped_results_are_visible_to_that_namespace_only,
    images_are_listed_a_page_at_a_time,
    prune_results_removes_images_not_seen_for_the_retention,
    ping_and_latest_job_for_a_digest,
    notifications_are_delivered_retried_and_reclaimed,
    two_replicas_complete_every_job_exactly_once,
    prune_removes_finished_jobs_events_and_notifications,
    oversized_documents_are_refused_as_permanent,
    base_freshness_follows_the_tag_and_expires_verdicts,
);

/// Base checks: an image whose base digest is among what the tag points at is fresh; when the
/// tag moves it is outdated since the first check that saw it elsewhere, its verdicts come due
/// once, a failed check changes nothing, and a rebuilt image on the new base is fresh.
async fn base_freshness_follows_the_tag_and_expires_verdicts(db: &Db) {
    use gantry_store::{BaseCheck, RecordedBase};
    let store = &db.store;
    let base = |digest: &str| RecordedBase {
        reference: "docker.io/library/debian:12".to_owned(),
        digest: digest.to_owned(),
    };
    let put = |digest: &'static str, base_digest: &'static str| {
        let r = result(digest, &["1"], "allow");
        let report = ReportRecord {
            manifest_digest: r.manifest_digest.clone(),
            report_json: r.report_json.clone(),
            sbom_json: None,
            repository: r.repository.clone(),
            tags: r.tags.clone(),
            scope: Scope::Public,
            base: Some(base(base_digest)),
            base_outdated_since_ms: None,
        };
        (report, r.verdict())
    };
    let (report, verdict) = put("sha256:app1", "sha256:index1");
    store.put_scan(&report, &verdict).await.unwrap();
    // Never checked: due at once, and nothing is known.
    let due = store.base_references_due(0, 10).await.unwrap();
    assert_eq!(due, ["docker.io/library/debian:12"]);
    assert_eq!(
        store.base_state(&base("sha256:index1")).await.unwrap(),
        None
    );

    // The tag is the index the image was built from (recorded: its amd64 manifest).
    let first = BaseCheck::Resolved {
        root: "sha256:index1".to_owned(),
        digests: vec!["sha256:amd64-1".to_owned(), "sha256:arm64-1".to_owned()],
    };
    let changed = store
        .record_base_check("docker.io/library/debian:12", &first)
        .await
        .unwrap();
    assert!(changed.is_empty(), "{changed:?}");
    let state = store
        .base_state(&base("sha256:amd64-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.outdated_since_ms, None);
    assert_eq!(state.current_digest.as_deref(), Some("sha256:index1"));
    assert!(store.base_references_due(0, 10).await.unwrap().is_empty());
    assert_eq!(store.count_outdated_bases().await.unwrap(), 0);
    let now = i64::MAX / 2;
    assert!(
        store
            .stale_verdicts(POLICY, now, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The tag moves: the image is outdated from this check on, and its verdict comes due.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let moved = BaseCheck::Resolved {
        root: "sha256:index2".to_owned(),
        digests: vec!["sha256:amd64-2".to_owned()],
    };
    let changed = store
        .record_base_check("docker.io/library/debian:12", &moved)
        .await
        .unwrap();
    assert_eq!(changed, ["sha256:app1"]);
    assert_eq!(store.count_outdated_bases().await.unwrap(), 1);
    let state = store
        .base_state(&base("sha256:index1"))
        .await
        .unwrap()
        .unwrap();
    let since = state.outdated_since_ms.expect("outdated");
    assert_eq!(state.current_digest.as_deref(), Some("sha256:index2"));
    assert!(
        since >= state.checked_at_ms - 1000 && since <= state.checked_at_ms,
        "{state:?}"
    );
    let stale = store.stale_verdicts(POLICY, now, 10).await.unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].key.manifest_digest, "sha256:app1");

    // Checked again, still moved: the same since, nothing changes; a failed check neither.
    let again = store
        .record_base_check("docker.io/library/debian:12", &moved)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let failed = BaseCheck::Failed {
        error: "registry-unavailable".to_owned(),
    };
    let again = store
        .record_base_check("docker.io/library/debian:12", &failed)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let later = store
        .base_state(&base("sha256:index1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.outdated_since_ms, Some(since));

    // A rebuild on the new base: fresh, from its first verdict on.
    let (report, verdict) = put("sha256:app2", "sha256:amd64-2");
    store.put_scan(&report, &verdict).await.unwrap();
    let state = store
        .base_state(&base("sha256:amd64-2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.outdated_since_ms, None);
    assert_eq!(store.count_outdated_bases().await.unwrap(), 1);

    // A new image on the old base, stored with what is known: counted at once, and the next
    // check has nothing to change.
    let (mut report, verdict) = put("sha256:app3", "sha256:index1");
    report.base_outdated_since_ms = Some(since);
    store.put_scan(&report, &verdict).await.unwrap();
    assert_eq!(store.count_outdated_bases().await.unwrap(), 2);
    let again = store
        .record_base_check("docker.io/library/debian:12", &moved)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    // The old image rescanned keeps its state (the record says nothing new).
    let (report, verdict) = put("sha256:app1", "sha256:index1");
    store.put_scan(&report, &verdict).await.unwrap();
    assert_eq!(store.count_outdated_bases().await.unwrap(), 2);
    let stored = store
        .report("sha256:app1", &Visibility::everything())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.base, Some(base("sha256:index1")));
}

/// A report over `stored-document-bytes` is refused before it reaches the database, as an
/// error a job must not retry (issue 11: SQLite's "string or blob too big" was retried five
/// times at ~9 GB each).
async fn oversized_documents_are_refused_as_permanent(db: &Db) {
    let store = db.store.clone().with_max_document_bytes(64);
    let mut record = result("sha256:big", &["1.0"], "deny");
    record.report_json = format!("{{\"pad\":\"{}\"}}", "x".repeat(100));
    let e = store.put_result(&record).await.unwrap_err();
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e:?}");
    assert!(!e.is_transient());
    let text = e.to_string();
    assert!(
        text.contains("report")
            && text.contains("sha256:big")
            && text.contains("stored-document-bytes=64"),
        "{text}"
    );
    assert!(
        store
            .verdict_of("sha256:big", POLICY)
            .await
            .unwrap()
            .is_none()
    );
    // A record within the limit goes through the same handle.
    assert!(
        store
            .put_result(&result("sha256:ok", &[], "deny"))
            .await
            .is_ok()
    );
    assert_eq!(
        db.store.max_document_bytes(),
        gantry_store::MAX_DOCUMENT_BYTES
    );
}

fn query_error(source: sqlx::Error) -> StoreError {
    StoreError::Query {
        what: "test",
        source,
    }
}

/// Errors from a real SQLite: data errors are permanent, a busy database is not.
#[tokio::test]
async fn sqlite_errors_are_classified_by_what_failed() {
    use sqlx::ConnectOptions;
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("t.db"))
        .create_if_missing(true)
        .busy_timeout(Duration::ZERO);
    let mut a = options.connect().await.unwrap();
    let mut b = options.connect().await.unwrap();

    let too_big = sqlx::query("SELECT zeroblob(2000000000)")
        .execute(&mut a)
        .await
        .unwrap_err();
    assert!(too_big.to_string().contains("too big"), "{too_big}");
    assert!(!query_error(too_big).is_transient());

    sqlx::query("CREATE TABLE t (x INTEGER UNIQUE)")
        .execute(&mut a)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut a)
        .await
        .unwrap();
    let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut a)
        .await
        .unwrap_err();
    assert!(!query_error(duplicate).is_transient());

    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut a)
        .await
        .unwrap();
    let busy = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut b)
        .await
        .unwrap_err();
    assert!(busy.to_string().contains("locked"), "{busy}");
    assert!(query_error(busy).is_transient());
    sqlx::query("ROLLBACK").execute(&mut a).await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();

    // No database at all behind a URL: the open fails, and may work later.
    let e = Store::open("postgres://gantry@127.0.0.1:1/gantry")
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

/// Errors from a real Postgres: a value over the server's limit and a constraint violation
/// are permanent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_errors_are_classified_by_what_failed() {
    let db = Db::postgres("postgres_errors_are_classified_by_what_failed").await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let too_big = sqlx::query("SELECT repeat('x', 1073741824)")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(too_big.to_string().contains("too large"), "{too_big}");
    assert!(!query_error(too_big).is_transient());
    sqlx::query("CREATE TABLE t (x INTEGER UNIQUE)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(!query_error(duplicate).is_transient());
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET statement_timeout = 1")
        .execute(&mut *conn)
        .await
        .unwrap();
    let cancelled = sqlx::query("SELECT pg_sleep(1)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    drop(conn);
    assert!(query_error(cancelled).is_transient());
    pool.close().await;
}

/// Retention removes finished bookkeeping only: queued work, verdicts and tags stay.
async fn prune_removes_finished_jobs_events_and_notifications(db: &Db) {
    const DIGEST_A: &str =
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str =
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let s = &db.store;
    let done = s
        .enqueue(spec("r/app:v1", Some(DIGEST_A), Some("evt-1")))
        .await
        .unwrap();
    let queued = s
        .enqueue(spec("r/app:v2", Some(DIGEST_B), None))
        .await
        .unwrap();
    let job = claim_eventually(s, "w", Duration::from_secs(30)).await;
    assert_eq!(job.id, done.id);
    s.put_result(&result(DIGEST_A, &["v1"], "allow"))
        .await
        .unwrap();
    s.complete(done.id, "w").await.unwrap();
    let n = s.enqueue_notification("{}").await.unwrap();
    let claimed = s
        .claim_notification("w", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, n);
    s.notification_delivered(n, "w").await.unwrap();

    // Nothing is old enough yet.
    assert_eq!(
        s.prune(Duration::from_secs(3600)).await.unwrap(),
        Pruned::default()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pruned = s.prune(Duration::from_millis(5)).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            events: 1,
            jobs: 1,
            notifications: 1
        }
    );
    assert!(s.job(done.id).await.unwrap().is_none());
    assert_eq!(
        s.job(queued.id).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
    let v = s.verdict_of(DIGEST_A, POLICY).await.unwrap().unwrap();
    assert_eq!(v.tags, ["v1"]);
    // A redelivery of the pruned event is absorbed by the stored verdict.
    let again = s
        .enqueue(spec("r/app:v1", Some(DIGEST_A), Some("evt-1")))
        .await
        .unwrap();
    assert!(again.deduplicated);
}

/// A database created before the notification outbox existed (schema version 1, with data)
/// gains it on open and keeps its jobs.
#[tokio::test]
async fn version_1_database_is_migrated_on_open() {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        Migrator::with_migrations(vec![Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0001_init.sql").into_sql_str(),
            false,
        )])
        .run(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO jobs (image_ref, digest, source, policy_digest, status, attempts, \
             not_before, created_at, updated_at) \
             VALUES ('r/old', 'sha256:old', 'api', 'sha256:policy', 'queued', 0, 0, 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = Store::open(&url).await.unwrap();
    let job = store
        .claim("w", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.spec.image_ref, "r/old");
    assert!(store.enqueue_notification("{}").await.unwrap() > 0);
    assert_eq!(
        store
            .latest_job_for("sha256:old", POLICY)
            .await
            .unwrap()
            .unwrap()
            .id,
        job.id
    );
}

/// A database of schema version 2 (one result row per digest and bundle) keeps its verdicts:
/// each digest's newest report becomes its public report, every result a webhook verdict
/// under its repository, and jobs gain the public scope.
#[tokio::test]
async fn version_2_results_become_reports_and_verdicts() {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v2.db").display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let migration = |version, name: &'static str, sql: &'static str| {
            Migration::new(
                version,
                name.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        };
        Migrator::with_migrations(vec![
            migration(
                1,
                "init",
                include_str!("../migrations/sqlite/0001_init.sql"),
            ),
            migration(
                2,
                "notifications",
                include_str!("../migrations/sqlite/0002_notifications.sql"),
            ),
        ])
        .run(&pool)
        .await
        .unwrap();
        for (policy, report, decision, at) in [
            ("sha256:old", r#"{"facts":"old"}"#, "deny", 1),
            ("sha256:policy", r#"{"facts":"new"}"#, "allow", 2),
        ] {
            sqlx::query(
                "INSERT INTO results (manifest_digest, policy_digest, verdict_json, report_json, \
                 decision, repository, created_at, updated_at) \
                 VALUES ('sha256:m', $1, '{}', $2, $3, 'reg/app', $4, $4)",
            )
            .bind(policy)
            .bind(report)
            .bind(decision)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO jobs (image_ref, digest, source, policy_digest, status, attempts, \
             not_before, created_at, updated_at) \
             VALUES ('reg/app:1', 'sha256:q', 'api', 'sha256:policy', 'queued', 0, 0, 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = Store::open(&url).await.unwrap();
    let report = store
        .report("sha256:m", &Visibility::public())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.report_json, r#"{"facts":"new"}"#);
    assert_eq!(report.scopes, [Scope::Public]);
    let v = store.verdict_of("sha256:m", POLICY).await.unwrap().unwrap();
    assert_eq!(
        (
            v.decision.as_str(),
            v.key.reference.as_str(),
            v.key.mode.as_str()
        ),
        ("allow", "reg/app", "webhook")
    );
    let old = store
        .verdict_of("sha256:m", "sha256:old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.decision, "deny");
    let job = store
        .claim("w", LEASE, MAX_ATTEMPTS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.spec.scope, job.spec.pull_secrets.len()),
        (Scope::Public, 0)
    );
}
