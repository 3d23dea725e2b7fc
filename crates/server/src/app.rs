//! The state every handler and worker shares, and the JSON error envelope of every endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_gate::Gate;
use gantry_policy::Policy;
use gantry_store::Store;
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::config::Settings;
use crate::metrics::Metrics;

/// Shared by the HTTP handlers, the workers, the notifier and the re-evaluator.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub store: Store,
    /// Scanner (with the layer cache) and the compiled policy.
    pub gate: Gate,
    pub metrics: Metrics,
    /// Wakes idle workers when this process queued work (other replicas' work is found by
    /// polling).
    pub work: Notify,
    /// Wakes `POST /v1/scan` waiters when a local worker finished a job.
    pub finished: Notify,
    /// Reference → digest resolutions (admission asks for the same tags over and over).
    pub resolutions: crate::lookup::Resolutions,
    /// Verdicts by (digest, policy bundle), in front of the store.
    pub verdicts: crate::lookup::Verdicts,
    /// Registry credentials from pods' imagePullSecrets (admission).
    pub pull_secrets: crate::admission::pull_secrets::PullSecrets,
    /// Set on SIGTERM: intake answers 503 so the registry retries elsewhere or later.
    draining: AtomicBool,
    /// The same, for tasks that wait on it (running scans start their grace period).
    shutdown: watch::Sender<bool>,
}

impl App {
    /// State over an opened store and a ready gate.
    pub fn new(
        settings: Settings,
        store: Store,
        gate: Gate,
        pull_secrets: crate::admission::pull_secrets::PullSecrets,
    ) -> Arc<App> {
        Arc::new(App {
            settings,
            store,
            gate,
            metrics: Metrics::new(),
            work: Notify::new(),
            finished: Notify::new(),
            resolutions: crate::lookup::Resolutions::default(),
            verdicts: crate::lookup::Verdicts::default(),
            pull_secrets,
            draining: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
        })
    }

    /// The policy every new verdict is computed under.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.settings.policy
    }

    /// Digest of [`App::policy`], the key of stored verdicts.
    pub fn policy_digest(&self) -> &str {
        self.settings.policy.digest()
    }

    /// Starts draining (shutdown).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
        // Idle workers re-check the flag and exit.
        self.work.notify_waiters();
    }

    /// Resolves once shutdown has begun.
    pub async fn drained(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which only happens as the App is dropped.
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Whether the service is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// An error answer: `{"error": {"code": "…", "message": "…"}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A store failure: logged in full, answered 503 so callers retry (nothing was accepted).
    pub fn store(e: &gantry_store::StoreError) -> ApiError {
        tracing::error!(error = %e, "store unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "the store is unavailable; retry later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}
