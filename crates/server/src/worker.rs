//! Scan workers: claim a job, keep its lease alive while the scan runs, record the outcome.
//!
//! The store's lease is what makes a job survive a crash: a worker renews it every third of
//! its length; if the process dies, the lease runs out and any worker of any replica claims
//! the job again (after `max_attempts` lost leases the job is failed instead of looping).
//! On shutdown a running scan gets `shutdown_grace` to finish; after that its job is released
//! back to the queue, uncounted, for the next process to take.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gantry_store::{FailOutcome, Job, RetryPolicy, StoreError};
use tokio::time::{Instant, sleep_until};

use crate::app::App;
use crate::judge::{self, JobError, JobOutcome};

/// A worker name unique among live workers of every replica: host, pid, start time, index.
pub fn worker_name(index: usize) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gantry".to_string());
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // In a container every replica is pid 1: the start time keeps names apart across restarts.
    format!("{host}:{}:{started:x}:{index}", std::process::id())
}

/// Claims and runs jobs until the app drains.
pub async fn run(app: Arc<App>, worker: String) {
    let workers = &app.settings.workers;
    while !app.is_draining() {
        let claimed = app
            .store
            .claim(&worker, workers.lease, workers.max_attempts)
            .await;
        match claimed {
            Ok(Some(job)) => process(&app, job, &worker).await,
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(workers.poll_interval) => {}
                    () = app.work.notified() => {}
                    () = app.drained() => {}
                }
            }
            Err(e) => {
                tracing::warn!(%worker, error = %e, "claiming a job failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(workers.poll_interval) => {}
                    () = app.drained() => {}
                }
            }
        }
    }
    tracing::debug!(%worker, "worker stopped");
}

async fn process(app: &Arc<App>, job: Job, worker: &str) {
    let lease = app.settings.workers.lease;
    tracing::info!(
        job = job.id,
        image = %job.spec.image_ref,
        attempt = job.attempts,
        %worker,
        "scan started"
    );
    // The attempt runs as its own task: a panic in it becomes a failed job, not a dead worker.
    let task = {
        let (app, job, worker) = (Arc::clone(app), job.clone(), worker.to_string());
        tokio::spawn(async move { judge::run(&app, &job, &worker).await })
    };
    let abort = task.abort_handle();
    tokio::pin!(task);
    let mut beat = tokio::time::interval(lease / 3);
    beat.tick().await;
    let mut deadline: Option<Instant> = None;
    let far = Instant::now() + lease * 1000;
    loop {
        tokio::select! {
            joined = &mut task => {
                let result = joined.unwrap_or_else(|e| {
                    tracing::error!(job = job.id, error = %e, "scan task failed");
                    Err(JobError::Internal(e.to_string()))
                });
                finish(app, &job, worker, result).await;
                break;
            }
            _ = beat.tick() => {
                if let Err(e) = app.store.heartbeat(job.id, worker, lease).await {
                    if matches!(e, StoreError::LeaseLost { .. } | StoreError::NotFound { .. }) {
                        // Another worker owns the job now (this one stalled past its lease):
                        // stop, so the image is not judged twice at once.
                        tracing::warn!(job = job.id, %worker, error = %e, "lease lost; abandoning the scan");
                        abort.abort();
                        break;
                    }
                    tracing::warn!(job = job.id, error = %e, "renewing the lease failed; will retry");
                }
            }
            () = app.drained(), if deadline.is_none() => {
                deadline = Some(Instant::now() + app.settings.workers.shutdown_grace);
                tracing::info!(job = job.id, "shutting down: letting the running scan finish");
            }
            () = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                abort.abort();
                match app.store.release(job.id, worker).await {
                    Ok(()) => tracing::info!(job = job.id, "scan interrupted by shutdown; job released to the queue"),
                    Err(e) => tracing::warn!(job = job.id, error = %e, "releasing the job failed; its lease will expire"),
                }
                break;
            }
        }
    }
    app.finished.notify_waiters();
}

async fn finish(app: &App, job: &Job, worker: &str, result: Result<JobOutcome, JobError>) {
    match result {
        Ok(JobOutcome::Judged { digest, decision }) => {
            tracing::info!(job = job.id, %digest, %decision, "scan done");
        }
        Ok(JobOutcome::Index { children }) => {
            tracing::info!(
                job = job.id,
                platforms = children.len(),
                ?children,
                "index: platform images queued"
            );
        }
        Ok(JobOutcome::Duplicate) => {
            tracing::info!(
                job = job.id,
                "tag resolved to a digest already queued or judged"
            );
        }
        Err(JobError::Store(StoreError::LeaseLost { .. })) => {
            tracing::warn!(job = job.id, %worker, "lease lost before the job could be closed; another worker has it");
        }
        Err(e) => {
            let workers = &app.settings.workers;
            let retry = RetryPolicy {
                // A final error fails the job now instead of retrying what cannot change.
                max_attempts: if e.is_transient() {
                    workers.max_attempts
                } else {
                    job.attempts
                },
                base_backoff: workers.backoff,
            };
            let message = crate::error_chain(&e);
            match app.store.fail(job.id, worker, &message, retry).await {
                Ok(FailOutcome::Retrying { not_before_ms }) => {
                    tracing::warn!(job = job.id, error = %message, not_before_ms, "scan failed; will retry");
                }
                Ok(FailOutcome::Failed) => {
                    tracing::error!(job = job.id, error = %message, attempts = job.attempts, "scan failed; giving up");
                }
                Err(store) => {
                    tracing::error!(job = job.id, error = %store, "recording the failure failed; the lease will expire and the job be retried");
                }
            }
        }
    }
}
