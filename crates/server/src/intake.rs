//! `POST /webhooks/{sender}`: authenticate, limit the caller's rate, read a capped body, parse
//! it into push events ([`crate::webhook`]), store one job per event, answer 202.
//!
//! The answer comes only after every job is durably stored, and fast: no registry call happens
//! here (tags are resolved by the worker). If the store fails halfway, the answer is 503 and
//! the sender retries; the events already stored are absorbed on the retry by their event ids.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gantry_store::{JobSpec, Scope};
use serde_json::json;

use crate::app::{ApiError, App, read_body};
use crate::listener::Peer;
use crate::metrics::EventOutcome;
use crate::webhook::auth::HeaderLookup;
use crate::webhook::{self, MAX_WEBHOOK_BODY_BYTES, PushEvent, Source};

/// A request's headers and query string for [`crate::webhook::auth::WebhookAuth::verify`].
pub(crate) struct Headers<'a> {
    headers: &'a HeaderMap,
    query: Option<&'a str>,
}

impl<'a> Headers<'a> {
    pub(crate) fn new(headers: &'a HeaderMap, query: Option<&'a str>) -> Headers<'a> {
        Headers { headers, query }
    }
}

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name).map(|v| v.as_bytes())
    }

    fn query(&self) -> Option<&str> {
        self.query
    }
}

/// 429 when the queue holds `[intake] max_queued` scans: a flood of requests fills the store
/// no further.
pub(crate) async fn check_queue(app: &App) -> Result<(), ApiError> {
    let queued = app
        .store
        .queued_jobs()
        .await
        .map_err(|e| ApiError::store(&e))?;
    if queued >= app.settings.intake.max_queued {
        return Err(ApiError::queue_full(queued));
    }
    Ok(())
}

/// The handler of every webhook path.
pub async fn receive(
    State(app): State<Arc<App>>,
    Path(sender): Path<String>,
    peer: Option<Extension<Peer>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&app, &sender, peer.map(|p| p.0), &uri, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: &App,
    sender: &str,
    peer: Option<Peer>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let source: Source = sender.parse().map_err(|_| {
        ApiError::not_found(format!(
            "no webhook endpoint {sender:?}; endpoints: {}",
            Source::ALL.map(|s| s.as_str()).join(", ")
        ))
    })?;
    let Some(endpoint) = app.settings.endpoints.get(&source) else {
        return Err(ApiError::not_found(format!(
            "the {} webhook endpoint is disabled in the configuration",
            source.as_str()
        )));
    };
    if let Err(e) = app.rate.check(peer.as_ref()) {
        app.metrics.event(source.as_str(), EventOutcome::Limited);
        return Err(e);
    }
    // No 503 while shutting down: the store stays open until the listener has drained, so an
    // event that still arrives is stored for the next start — Docker Hub and Quay never retry.
    // Refuse an announced oversized body before reading a byte of it.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_WEBHOOK_BODY_BYTES) {
        return Err(reject(app, source, too_large()));
    }
    // Read at most the cap (a chunked body announces nothing), within the body timeout.
    let body = read_body(body, MAX_WEBHOOK_BODY_BYTES, app.settings.http.body_timeout)
        .await
        .map_err(|e| reject(app, source, e.answer(MAX_WEBHOOK_BODY_BYTES)))?;
    if let Err(e) = endpoint
        .auth
        .verify(&Headers::new(headers, uri.query()), &body)
    {
        app.metrics
            .event(source.as_str(), EventOutcome::Unauthorized);
        tracing::warn!(sender = source.as_str(), error = %e, "webhook caller not authenticated");
        return Err(ApiError::unauthorized(&e, &endpoint.auth));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = webhook::parse(source, &body, content_type, &endpoint.hint).map_err(|e| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        reject(app, source, ApiError::new(status, e.code(), e.detail()))
    })?;
    let cap = app.settings.intake.max_images_per_request;
    if parsed.events.len() > cap {
        return Err(reject(
            app,
            source,
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-many-images",
                format!(
                    "the payload names {} images; one request may name at most {cap} ([intake] max_images_per_request)",
                    parsed.events.len()
                ),
            ),
        ));
    }
    if !parsed.events.is_empty()
        && let Err(e) = check_queue(app).await
    {
        app.metrics.event(source.as_str(), EventOutcome::Limited);
        return Err(e);
    }

    let mut accepted = Vec::with_capacity(parsed.events.len());
    for event in &parsed.events {
        let spec = job_spec(app, source, event);
        // A second tag pushed for a digest already queued is absorbed as a duplicate job, but
        // the tag itself is still recorded (in the same transaction).
        let repository = event.image().name();
        let tag = event.tag().map(|t| (repository.as_str(), t));
        let enqueued = app
            .store
            .enqueue_tagged(spec, tag)
            .await
            .map_err(|e| ApiError::store(&e))?;
        let outcome = if enqueued.deduplicated {
            EventOutcome::Deduplicated
        } else {
            EventOutcome::Accepted
        };
        app.metrics.event(source.as_str(), outcome);
        accepted.push(json!({
            "job_id": enqueued.id,
            "image": event.image().to_string(),
            "deduplicated": enqueued.deduplicated,
        }));
    }
    if !parsed.events.is_empty() {
        app.work.notify_waiters();
    }
    let skipped: Vec<_> = parsed
        .skipped
        .iter()
        .map(|s| {
            app.metrics.event(source.as_str(), EventOutcome::Skipped);
            json!({"reason": s.reason.code(), "event_id": s.id, "detail": s.reason})
        })
        .collect();
    tracing::debug!(
        sender = source.as_str(),
        accepted = accepted.len(),
        skipped = skipped.len(),
        "webhook handled"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": accepted, "skipped": skipped})),
    )
        .into_response())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        format!("webhook bodies are limited to {MAX_WEBHOOK_BODY_BYTES} bytes"),
    )
}

fn reject(app: &App, source: Source, e: ApiError) -> ApiError {
    app.metrics.event(source.as_str(), EventOutcome::Rejected);
    tracing::info!(sender = source.as_str(), code = e.code, error = %e.message, "webhook body rejected");
    e
}

fn job_spec(app: &App, source: Source, event: &PushEvent) -> JobSpec {
    JobSpec {
        image_ref: event.image().to_string(),
        digest: event.digest().map(ToString::to_string),
        // Namespaced by sender, and by image: Quay sends one id for every tag of a push, and
        // two senders' ids may collide.
        event_id: event
            .id()
            .map(|id| format!("{}:{id}:{}", source.as_str(), event.image())),
        source: source.as_str().to_string(),
        policy_digest: app.policy_digest().to_string(),
        // Webhook pushes pull with Gantry's own credentials.
        scope: Scope::Public,
        pull_secrets: Vec::new(),
    }
}
