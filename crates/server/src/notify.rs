//! Outbound verdict notifications: written to the store's outbox after the verdict is stored
//! and before its job is marked done (a crash in between re-runs the job, so a notification
//! may repeat but is never lost), then POSTed by a sender loop with retries and backoff. Being
//! durable, a notification survives a restart, and with several replicas each is sent by one.

use std::sync::Arc;
use std::time::Duration;

use gantry_model::Verdict;
use gantry_store::{FailOutcome, RetryPolicy, VerdictRecord};
use serde_json::json;

use crate::app::App;
use crate::config::Notify;

/// Queues a notification of `record` when notifications are configured for its decision.
/// Failure to queue is logged, not returned: the verdict is stored either way.
pub async fn verdict(
    app: &App,
    record: &VerdictRecord,
    repository: &str,
    tags: &[String],
    verdict: &Verdict,
    job_id: Option<i64>,
    reevaluated: bool,
) {
    let Some(notify) = &app.settings.notify else {
        return;
    };
    if !notify.decisions.contains(&record.decision) {
        return;
    }
    let key = &record.key;
    let payload = json!({
        "type": "gantry.verdict",
        "version": 1,
        "image": format!("{}@{}", key.reference, key.manifest_digest),
        "reference": key.reference,
        "mode": key.mode,
        "repository": repository,
        "manifest_digest": key.manifest_digest,
        "policy_digest": key.policy_digest,
        "decision": record.decision,
        "violations": verdict.violations,
        "warnings": verdict.warnings,
        "tags": tags,
        "job_id": job_id,
        "reevaluated": reevaluated,
        "at": gantry_model::time::now(),
    });
    if let Err(e) = app.store.enqueue_notification(&payload.to_string()).await {
        tracing::error!(error = %e, digest = %key.manifest_digest, "cannot queue the verdict notification");
    }
}

/// Sends queued notifications until `app` drains.
pub async fn run(app: Arc<App>, worker: String) {
    let Some(notify) = app.settings.notify.clone() else {
        return;
    };
    let client = match reqwest::Client::builder().timeout(notify.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification HTTP client; notifications disabled");
            return;
        }
    };
    let retry = RetryPolicy {
        max_attempts: notify.max_attempts,
        base_backoff: notify.backoff,
    };
    // The lease outlives one request with its timeout; a sender that dies mid-request leaves
    // the notification to be retaken (a receiver may see it twice: at-least-once).
    let lease = notify.timeout.saturating_mul(2) + Duration::from_secs(5);
    while !app.is_draining() {
        let claimed = match app.store.claim_notification(&worker, lease).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming a notification failed");
                None
            }
        };
        let Some(n) = claimed else {
            tokio::select! {
                () = tokio::time::sleep(app.settings.workers.poll_interval) => {}
                () = app.work.notified() => {}
            }
            continue;
        };
        match send(&client, &notify, &n.payload_json).await {
            Ok(()) => {
                app.metrics.notification("delivered");
                if let Err(e) = app.store.notification_delivered(n.id, &worker).await {
                    tracing::warn!(error = %e, id = n.id, "recording a delivered notification failed");
                }
            }
            Err(error) => {
                tracing::warn!(id = n.id, attempt = n.attempts, %error, "notification not delivered");
                match app
                    .store
                    .notification_failed(n.id, &worker, &error, retry)
                    .await
                {
                    Ok(FailOutcome::Failed) => app.metrics.notification("failed"),
                    Ok(FailOutcome::Retrying { .. }) => app.metrics.notification("retry"),
                    Err(e) => {
                        tracing::warn!(error = %e, id = n.id, "recording a failed notification failed")
                    }
                }
            }
        }
    }
}

async fn send(client: &reqwest::Client, notify: &Notify, payload: &str) -> Result<(), String> {
    let mut request = client
        .post(&notify.url)
        .header("content-type", "application/json")
        .body(payload.to_string());
    for (name, value) in &notify.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {status}", notify.url))
    }
}
