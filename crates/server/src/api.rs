//! The read side (`/v1/images/…`, `/v1/jobs/{id}`) and `POST /v1/scan`. Documented in
//! docs/api/openapi.yaml.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_model::{Digest, ImageRef, Platform};
use gantry_registry::RegistryError;
use gantry_store::{JobView, StoredVerdict};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use crate::app::{ApiError, App};
use crate::lookup::{self, Lookup, LookupError};

/// Largest `POST /v1/scan` body: one reference and two numbers.
pub const MAX_SCAN_BODY_BYTES: usize = 16 * 1024;

type ApiResult = Result<Response, ApiError>;

/// Middleware of every `/v1/…` route: the configured `[api.auth]` (none by default).
pub async fn authenticate(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use crate::webhook::auth::WebhookAuth;
    let auth = &app.settings.api_auth;
    if matches!(auth, WebhookAuth::None) {
        return next.run(request).await;
    }
    match auth.verify(&crate::intake::Headers(request.headers()), &[]) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()).into_response();
            if matches!(auth, WebhookAuth::Bearer { .. }) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

fn rfc3339_ms(ms: i64) -> String {
    gantry_sbom::rfc3339(ms.div_euclid(1000))
}

fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::bad_request("invalid-digest", format!("{raw:?}: {e}")))
}

#[derive(Debug, Deserialize)]
pub struct PolicyQuery {
    policy: Option<String>,
}

async fn stored(app: &App, digest: &str, policy: Option<&str>) -> Result<StoredVerdict, ApiError> {
    let digest = parse_digest(digest)?.to_string();
    let policy = match policy {
        Some(p) => parse_digest(p)?.to_string(),
        None => app.policy_digest().to_string(),
    };
    app.store
        .verdict(&digest, &policy)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no verdict for {digest} under policy bundle {policy}"
            ))
        })
}

fn verdict_body(v: &StoredVerdict) -> Result<Value, ApiError> {
    let verdict: Value = serde_json::from_str(&v.verdict_json).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt-result",
            format!("stored verdict of {} is unreadable: {e}", v.manifest_digest),
        )
    })?;
    Ok(json!({
        "manifest_digest": v.manifest_digest,
        "policy_digest": v.policy_digest,
        "decision": v.decision,
        "repository": v.repository,
        "tags": v.tags,
        "updated_at": rfc3339_ms(v.updated_at_ms),
        "verdict": verdict,
    }))
}

/// `GET /v1/images/{digest}/verdict`.
pub async fn verdict(
    State(app): State<Arc<App>>,
    Path(digest): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> ApiResult {
    let v = stored(&app, &digest, q.policy.as_deref()).await?;
    Ok(Json(verdict_body(&v)?).into_response())
}

/// `GET /v1/images/{digest}/report`: the report exactly as stored (what `gantry scan
/// --format json` prints).
pub async fn report(
    State(app): State<Arc<App>>,
    Path(digest): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> ApiResult {
    let v = stored(&app, &digest, q.policy.as_deref()).await?;
    Ok(json_text(v.report_json, "application/json"))
}

/// `GET /v1/images/{digest}/sbom`.
pub async fn sbom(State(app): State<Arc<App>>, Path(digest): Path<String>) -> ApiResult {
    let digest = parse_digest(&digest)?.to_string();
    let sbom = app
        .store
        .sbom(&digest)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no SBOM for {digest}")))?;
    Ok(json_text(
        sbom,
        "application/vnd.cyclonedx+json; version=1.6",
    ))
}

fn json_text(body: String, content_type: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct ImagesQuery {
    repository: Option<String>,
}

/// `GET /v1/images?repository=registry/repo`.
pub async fn images(State(app): State<Arc<App>>, Query(q): Query<ImagesQuery>) -> ApiResult {
    let Some(repository) = q.repository.filter(|r| !r.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "missing-repository",
            "give ?repository=registry/repository (e.g. registry.example.com/team/app)",
        ));
    };
    let rows = app
        .store
        .images(&repository)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let images: Vec<Value> = rows
        .iter()
        .map(|i| {
            json!({
                "manifest_digest": i.manifest_digest,
                "policy_digest": i.policy_digest,
                "decision": i.decision,
                "tags": i.tags,
                "updated_at": rfc3339_ms(i.updated_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({"repository": repository, "images": images})).into_response())
}

fn job_body(j: &JobView) -> Value {
    json!({
        "id": j.id,
        "status": j.status.as_str(),
        "image": j.spec.image_ref,
        "digest": j.spec.digest,
        "source": j.spec.source,
        "policy_digest": j.spec.policy_digest,
        "attempts": j.attempts,
        "last_error": j.last_error,
        "created_at": rfc3339_ms(j.created_at_ms),
        "updated_at": rfc3339_ms(j.updated_at_ms),
        "verdict_url": j.spec.digest.as_ref().map(|d| format!("/v1/images/{d}/verdict")),
    })
}

/// `GET /v1/jobs/{id}`.
pub async fn job(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid-job-id", format!("{id:?} is not a job id")))?;
    let job = app
        .store
        .job(id)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let mut body = job_body(&job);
    // A done job without a verdict of its own was an index: its platform images have jobs
    // (and verdicts) of their own, so there is no URL to point at.
    if job.status == gantry_store::JobStatus::Done
        && let Some(digest) = &job.spec.digest
        && app
            .store
            .verdict(digest, &job.spec.policy_digest)
            .await
            .map_err(|e| ApiError::store(&e))?
            .is_none()
    {
        body["verdict_url"] = Value::Null;
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    image: String,
    #[serde(default)]
    budget_seconds: Option<f64>,
    #[serde(default)]
    platform: Option<String>,
}

/// `POST /v1/scan`: the verdict of a reference within a budget. The scan runs as a job (so a
/// digest already being scanned is not scanned twice, and a scan that outlives the budget
/// goes on); the request waits for it until the budget runs out.
pub async fn scan(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-content-type",
            "send the request as application/json",
        ));
    }
    let req: ScanRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid-json", e.to_string()))?;
    let budget = match req.budget_seconds {
        None => app.settings.budget,
        Some(s) if s.is_finite() && s > 0.0 => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| *d <= app.settings.max_budget)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid-budget",
                    format!(
                        "budget_seconds must be at most {}",
                        app.settings.max_budget.as_secs_f64()
                    ),
                )
            })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid-budget",
                "budget_seconds must be a positive number",
            ));
        }
    };
    let platform = match &req.platform {
        Some(p) => p
            .parse::<Platform>()
            .map_err(|e| ApiError::bad_request("invalid-platform", format!("{p:?}: {e}")))?,
        None => app.settings.platform.clone(),
    };
    let reference: ImageRef = req
        .image
        .parse()
        .map_err(|e| ApiError::bad_request("invalid-reference", format!("{:?}: {e}", req.image)))?;
    let deadline = Instant::now() + budget;

    let started = lookup::lookup(&app, &reference, &platform, Duration::ZERO, "api");
    let Ok(started) = timeout_at(deadline, started).await else {
        return Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "budget-exceeded",
            format!(
                "resolving {reference} took longer than the budget ({:.1}s)",
                budget.as_secs_f64()
            ),
        ));
    };
    let (digest, job_id) = match started.map_err(|e| lookup_error(&reference, e))? {
        Lookup::Known(v) => return answer(&v, None, true),
        Lookup::Pending { digest, job_id } => (digest, job_id),
    };
    match timeout_at(deadline, lookup::wait(&app, job_id, &digest)).await {
        Ok(result) => {
            let v = result.map_err(|e| lookup_error(&reference, e))?;
            answer(&v, Some(job_id), false)
        }
        Err(_) => {
            let status = match app.store.job(job_id).await {
                Ok(Some(j)) => j.status.as_str(),
                _ => "queued",
            };
            let mut response = (
                StatusCode::ACCEPTED,
                Json(json!({
                    "job_id": job_id,
                    "manifest_digest": digest,
                    "status": status,
                    "error": {
                        "code": "budget-exceeded",
                        "message": format!("no verdict within {:.1}s; the scan goes on: follow /v1/jobs/{job_id}", budget.as_secs_f64()),
                    },
                })),
            )
                .into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{job_id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
    }
}

fn registry_error(reference: &ImageRef, e: &RegistryError) -> ApiError {
    let status = match e {
        RegistryError::NotFound { .. } | RegistryError::NoMatchingPlatform { .. } => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, e.code(), format!("{reference}: {e}"))
}

fn lookup_error(reference: &ImageRef, e: LookupError) -> ApiError {
    match e {
        LookupError::Registry(r) => registry_error(reference, &r),
        LookupError::Store(s) => ApiError::store(&s),
        LookupError::Failed(message) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scan-failed", message)
        }
        e @ LookupError::Missing { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "missing-result",
            e.to_string(),
        ),
    }
}

fn answer(v: &StoredVerdict, job_id: Option<i64>, cached: bool) -> ApiResult {
    let mut body = verdict_body(v)?;
    if let Some(object) = body.as_object_mut() {
        object.insert("job_id".to_string(), json!(job_id));
        object.insert("cached".to_string(), json!(cached));
    }
    Ok(Json(body).into_response())
}
