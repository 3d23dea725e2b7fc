//! The state every handler and worker shares, who is calling ([`Caller`]), the per-caller
//! rate limits, and the JSON error envelope of every endpoint.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_gate::Gate;
use gantry_policy::Policy;
use gantry_store::Store;
use gantry_store::Visibility;
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::config::{IntakeLimits, Settings};
use crate::metrics::Metrics;
use crate::webhook::auth::{AuthError, WebhookAuth};

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
    /// Pods' imagePullSecrets, read from the Kubernetes API (admission, and the workers that
    /// pull for a namespace).
    pub pull_secrets: crate::admission::pull_secrets::PullSecrets,
    /// Requests per caller (webhooks, `POST /v1/scan`).
    pub rate: RateLimits,
    /// Set on SIGTERM: the listeners stop accepting; requests already in flight are still stored (Docker Hub and Quay never retry).
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
            rate: RateLimits::new(settings.intake),
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

/// Who is calling, as the edge established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Sees every image: the configured operator credential, or anyone on a loopback
    /// listener without one.
    Operator,
    /// A team's reader token: public images and those pulled for its namespaces.
    Reader { namespaces: Vec<String> },
}

impl Caller {
    /// What the caller may see of stored results.
    pub fn visibility(&self) -> Visibility {
        match self {
            Caller::Operator => Visibility::everything(),
            Caller::Reader { namespaces } => Visibility::namespaces(namespaces.iter().cloned()),
        }
    }
}

type KeyedLimiter = governor::RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    governor::clock::DefaultClock,
>;

/// Requests per caller address. An address, not a credential: every registry may share the
/// one `[auth]` token, and one flooding sender must not starve the others.
#[derive(Debug)]
pub struct RateLimits {
    limiter: KeyedLimiter,
}

impl RateLimits {
    fn new(limits: IntakeLimits) -> RateLimits {
        let quota = governor::Quota::per_second(limits.rate_per_second).allow_burst(limits.burst);
        RateLimits {
            limiter: governor::RateLimiter::keyed(quota),
        }
    }

    /// Ok, or the error to answer (429 with `Retry-After`).
    pub fn check(&self, peer: Option<&crate::listener::Peer>) -> Result<(), ApiError> {
        // Requests that did not come through a listener (tests calling the router) are not
        // limited.
        let Some(peer) = peer else { return Ok(()) };
        self.limiter
            .check_key(&peer.addr.ip())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "too many requests from this address; retry later",
                )
                .retry_after(wait.max(Duration::from_secs(1)))
            })
    }

    /// Forgets callers that have been quiet (bounds the limiter's memory).
    pub fn forget_quiet(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// An error answer: `{"error": {"code": "…", "message": "…"}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After`, for 429 and 503.
    pub retry_after: Option<Duration>,
    /// `WWW-Authenticate: Bearer`, for a 401 of a bearer-token endpoint.
    pub bearer_challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            bearer_challenge: false,
        }
    }

    /// With a `Retry-After` header.
    pub fn retry_after(mut self, wait: Duration) -> ApiError {
        self.retry_after = Some(wait);
        self
    }

    /// A caller that did not authenticate: 401, and nothing about what lies behind.
    pub fn unauthorized(e: &AuthError, auth: &WebhookAuth) -> ApiError {
        let mut error = ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string());
        error.bearer_challenge = matches!(auth, WebhookAuth::Bearer { .. });
        error
    }

    /// The scan queue is full: 429, retry later.
    pub fn queue_full(queued: u64) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue-full",
            format!("{queued} scans are queued, the most this service takes; retry later"),
        )
        .retry_after(Duration::from_secs(30))
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
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.bearer_challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Reads a request body of at most `max` bytes within `timeout` (`http.body_timeout`): a
/// client that announces a body and trickles it must not hold a request forever.
pub async fn read_body(
    body: axum::body::Body,
    max: usize,
    timeout: Duration,
) -> Result<axum::body::Bytes, BodyError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => Err(BodyError::Slow),
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Slow,
}

impl BodyError {
    /// The answer, for a body limit of `max` bytes.
    pub fn answer(self, max: usize) -> ApiError {
        match self {
            BodyError::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!("request bodies are limited to {max} bytes here"),
            ),
            BodyError::Slow => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "the request body did not arrive in time",
            ),
        }
    }
}
