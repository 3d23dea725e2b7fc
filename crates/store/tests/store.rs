//! The store against a real SQLite file (and a real Postgres when `GANTRY_TEST_POSTGRES_URL` is set).

// Helpers shared by the tests sit outside `#[test]` fns, where clippy.toml does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gantry_store::{
    FailOutcome, JobSpec, JobStatus, QueueCounts, ResultRecord, RetryPolicy, Store, StoreError,
};
use tokio::sync::Mutex;

const LEASE: Duration = Duration::from_secs(30);

fn spec(image: &str, digest: Option<&str>, event: Option<&str>) -> JobSpec {
    JobSpec {
        image_ref: image.to_owned(),
        digest: digest.map(str::to_owned),
        event_id: event.map(str::to_owned),
        source: "distribution".to_owned(),
        policy_digest: "sha256:policy".to_owned(),
    }
}

fn result(digest: &str, tags: &[&str], decision: &str) -> ResultRecord {
    ResultRecord {
        manifest_digest: digest.to_owned(),
        policy_digest: "sha256:policy".to_owned(),
        verdict_json: format!(r#"{{"decision":"{decision}"}}"#),
        report_json: "{}".to_owned(),
        sbom_json: Some(format!(
            r#"{{"bomFormat":"CycloneDX","digest":"{digest}"}}"#
        )),
        decision: decision.to_owned(),
        repository: "library/app".to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

async fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gantry.db").display()
    );
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    (dir, store)
}

async fn enqueue_dedupes_by_event_and_digest(store: &Store) {
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
    let job = store.claim("w", LEASE).await.unwrap().unwrap();
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

#[tokio::test]
async fn sqlite_enqueue_dedupes_by_event_and_digest() {
    let (_dir, store) = sqlite().await;
    enqueue_dedupes_by_event_and_digest(&store).await;
}

#[tokio::test]
async fn claim_takes_oldest_ready_job_first() {
    let (_dir, store) = sqlite().await;
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
        let job = store.claim("w", LEASE).await.unwrap().unwrap();
        assert_eq!(job.id, *expected);
        assert_eq!(job.attempts, 1);
    }
    assert!(store.claim("w", LEASE).await.unwrap().is_none());
    let view = store.job(ids[0]).await.unwrap().unwrap();
    assert_eq!(view.status, JobStatus::Running);
    assert_eq!(view.worker.as_deref(), Some("w"));
    assert!(store.job(9999).await.unwrap().is_none());
}

async fn concurrent_claimers_never_share_a_job(store: &Store) {
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
            while let Some(job) = store.claim(&worker, LEASE).await.unwrap() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sqlite_concurrent_claimers_never_share_a_job() {
    let (_dir, store) = sqlite().await;
    concurrent_claimers_never_share_a_job(&store).await;
}

#[tokio::test]
async fn expired_lease_is_reclaimed_after_a_crash() {
    let (_dir, store) = sqlite().await;
    let id = store
        .enqueue(spec("r/app", Some("sha256:crash"), None))
        .await
        .unwrap()
        .id;
    {
        // The worker takes the job and dies without completing it.
        let job = store
            .claim("doomed", Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, id);
    }
    assert!(
        store.claim("other", LEASE).await.unwrap().is_none(),
        "lease still held"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = store.claim("other", LEASE).await.unwrap().unwrap();
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

#[tokio::test]
async fn failure_backs_off_then_fails_for_good() {
    let (_dir, store) = sqlite().await;
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
            if let Some(job) = store.claim("w", LEASE).await.unwrap() {
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
            assert!(store.claim("w", LEASE).await.unwrap().is_none());
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

async fn results_upsert_and_tags_accumulate(store: &Store) {
    assert!(
        store
            .verdict("sha256:r", "sha256:policy")
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
        .verdict("sha256:r", "sha256:policy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.decision, "allow");
    assert_eq!(v.verdict_json, r#"{"decision":"allow"}"#);
    assert_eq!(v.tags, ["1.0", "latest"]);
    // The SBOM of the first put survives a put without one.
    assert!(
        store
            .sbom("sha256:r")
            .await
            .unwrap()
            .unwrap()
            .contains("CycloneDX")
    );
    assert!(store.sbom("sha256:none").await.unwrap().is_none());
    store
        .put_result(&result("sha256:s", &["2.0"], "deny"))
        .await
        .unwrap();
    let images = store.images("library/app").await.unwrap();
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
    assert!(store.images("library/other").await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_results_upsert_and_tags_accumulate() {
    let (_dir, store) = sqlite().await;
    results_upsert_and_tags_accumulate(&store).await;
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
            .claim("before", Duration::from_millis(50))
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
            .verdict("sha256:0", "sha256:policy")
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = vec![
        store.claim("after", LEASE).await.unwrap().unwrap().id,
        store.claim("after", LEASE).await.unwrap().unwrap().id,
    ];
    got.sort_unstable();
    assert_eq!(got, [running, queued]);
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

/// Runs the backend-independent checks on Postgres; skipped unless `GANTRY_TEST_POSTGRES_URL`
/// names a throwaway database (the tables are dropped first).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn postgres_when_configured() {
    let Ok(url) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
        return;
    };
    // Each scenario starts from an empty schema (they count jobs).
    for scenario in 0..3 {
        use sqlx::Executor;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        pool.execute(
            "DROP TABLE IF EXISTS image_tags, sboms, results, events, jobs, _sqlx_migrations CASCADE",
        )
        .await
        .unwrap();
        pool.close().await;
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        match scenario {
            0 => enqueue_dedupes_by_event_and_digest(&store).await,
            1 => results_upsert_and_tags_accumulate(&store).await,
            _ => concurrent_claimers_never_share_a_job(&store).await,
        }
        store.close().await;
    }
}
