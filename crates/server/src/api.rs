//! The read side (`/v1/images/…`, `/v1/jobs/{id}`) and `POST /v1/scan`. Documented in
//! docs/api/openapi.yaml.
//!
//! Every route sits behind [`authenticate`], which establishes the [`Caller`]: the operator
//! credential sees every image; a reader token sees public images and those pulled for its
//! namespaces; an image another caller may not see is answered like one never scanned.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use gantry_model::time::rfc3339_millis;
use gantry_model::{Digest, ImageRef, Platform};
use gantry_store::{ImageCursor, JobView, StoredVerdict, Visibility};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use crate::app::{ApiError, App, Caller, read_body};
use crate::judge::{Mode, Pull};
use crate::listener::Peer;
use crate::lookup::{self, Lookup, LookupError, Platforms};

/// Largest `POST /v1/scan` body: one reference and two numbers.
pub const MAX_SCAN_BODY_BYTES: usize = 16 * 1024;
/// Most images per page of `GET /v1/images`, and the default.
const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

type ApiResult = Result<Response, ApiError>;

/// Middleware of every `/v1/…` route: who is calling. Anonymous only where the configuration
/// allows it (a loopback listener without `[api.auth]` / `[auth]`).
pub async fn authenticate(
    State(app): State<Arc<App>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let auth = &app.settings.api_auth;
    let headers = crate::intake::Headers::new(request.headers(), request.uri().query());
    let caller = if auth.operator.is_anonymous() {
        Ok(Caller::Operator)
    } else {
        match auth.operator.verify(&headers, &[]) {
            Ok(()) => Ok(Caller::Operator),
            Err(e) => auth
                .readers
                .iter()
                .find(|r| {
                    crate::webhook::auth::WebhookAuth::Bearer {
                        token: r.token.clone(),
                    }
                    .verify(&headers, &[])
                    .is_ok()
                })
                .map(|r| Caller::Reader {
                    namespaces: r.namespaces.clone(),
                })
                .ok_or(e),
        }
    };
    match caller {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => ApiError::unauthorized(&e, &auth.operator).into_response(),
    }
}

fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::bad_request("invalid-digest", format!("{raw:?}: {e}")))
}

/// Which verdict of an image: under which bundle (default: the current one), for which
/// reference and mode (default: the newest).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictQuery {
    policy: Option<String>,
    reference: Option<String>,
    mode: Option<String>,
}

async fn stored(
    app: &App,
    digest: &str,
    q: &VerdictQuery,
    visibility: &Visibility,
) -> Result<StoredVerdict, ApiError> {
    let digest = parse_digest(digest)?;
    let policy = match &q.policy {
        Some(p) => parse_digest(p)?.to_string(),
        None => app.policy_digest().to_string(),
    };
    let reference = match &q.reference {
        Some(r) => {
            let parsed: ImageRef = r
                .parse()
                .map_err(|e| ApiError::bad_request("invalid-reference", format!("{r:?}: {e}")))?;
            Some(crate::judge::verdict_reference(&parsed))
        }
        None => None,
    };
    let mode = match q.mode.as_deref() {
        None => None,
        Some(m @ ("webhook" | "api" | "admission")) => Some(m),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid-mode",
                format!("{other:?} is not webhook, api or admission"),
            ));
        }
    };
    let not_found = || {
        ApiError::not_found(format!(
            "no verdict for {digest} under policy bundle {policy}"
        ))
    };
    // A named verdict under the current bundle is computed from the facts when missing.
    if policy == app.policy_digest()
        && let (Some(reference), Some(mode)) = (&reference, mode)
    {
        let key = gantry_store::VerdictKey {
            manifest_digest: digest.to_string(),
            policy_digest: policy.clone(),
            reference: reference.clone(),
            mode: mode.to_string(),
        };
        return lookup::known_verdict(app, &key, visibility)
            .await
            .map_err(|e| lookup_error(&digest.to_string(), e, &Caller::Operator))?
            .ok_or_else(not_found);
    }
    app.store
        .find_verdict(
            &digest.to_string(),
            &policy,
            reference.as_deref(),
            mode,
            visibility,
        )
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(not_found)
}

fn verdict_body(v: &StoredVerdict) -> Result<Value, ApiError> {
    let verdict: Value = serde_json::from_str(&v.verdict_json).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt-result",
            format!(
                "stored verdict of {} is unreadable: {e}",
                v.key.manifest_digest
            ),
        )
    })?;
    Ok(json!({
        "manifest_digest": v.key.manifest_digest,
        "policy_digest": v.key.policy_digest,
        "reference": v.key.reference,
        "mode": v.key.mode,
        "decision": v.decision,
        "repository": v.repository,
        "tags": v.tags,
        "updated_at": rfc3339_millis(v.updated_at_ms),
        "valid_until": v.valid_until_ms.map(rfc3339_millis),
        "verdict": verdict,
    }))
}

/// `GET /v1/images/{digest}/verdict`.
pub async fn verdict(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(digest): Path<String>,
    Query(q): Query<VerdictQuery>,
) -> ApiResult {
    let v = stored(&app, &digest, &q, &caller.visibility()).await?;
    Ok(Json(verdict_body(&v)?).into_response())
}

/// `GET /v1/images/{digest}/report`: what `gantry scan --format json` prints — the facts, the
/// context of the verdict, its findings and the verdict.
pub async fn report(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(digest): Path<String>,
    Query(q): Query<VerdictQuery>,
) -> ApiResult {
    let visibility = caller.visibility();
    let v = stored(&app, &digest, &q, &visibility).await?;
    let facts = app
        .store
        .report(&v.key.manifest_digest, &visibility)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no report for {digest}")))?;
    let corrupt = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt-result",
            format!("stored report of {digest} is unreadable: {e}"),
        )
    };
    let mut report: Value = serde_json::from_str(&facts.report_json).map_err(corrupt)?;
    let verdict: Value = serde_json::from_str(&v.verdict_json).map_err(corrupt)?;
    let findings: Vec<Value> = ["violations", "warnings"]
        .iter()
        .filter_map(|k| verdict.get(*k).and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    if let Some(object) = report.as_object_mut() {
        let named = format!("{}@{}", v.key.reference, v.key.manifest_digest);
        if let Some(image) = object.get_mut("image").and_then(Value::as_object_mut) {
            image.insert("reference".to_string(), json!(named));
            image.insert("source".to_string(), json!(named));
        }
        object.insert(
            "context".to_string(),
            json!({"now": rfc3339_millis(v.updated_at_ms), "mode": v.key.mode}),
        );
        object.insert("findings".to_string(), json!(findings));
        object.insert("verdict".to_string(), verdict);
    }
    Ok(Json(report).into_response())
}

/// `GET /v1/images/{digest}/sbom`.
pub async fn sbom(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(digest): Path<String>,
) -> ApiResult {
    let digest = parse_digest(&digest)?.to_string();
    let sbom = app
        .store
        .sbom(&digest, &caller.visibility())
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
#[serde(deny_unknown_fields)]
pub struct ImagesQuery {
    repository: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The opaque cursor of `GET /v1/images`: where the next page starts.
fn encode_cursor(c: &ImageCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{}", c.updated_at_ms, c.manifest_digest))
}

fn decode_cursor(text: &str) -> Option<ImageCursor> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (at, digest) = raw.split_once('|')?;
    Some(ImageCursor {
        updated_at_ms: at.parse().ok()?,
        manifest_digest: digest.parse::<Digest>().ok()?.to_string(),
    })
}

/// `GET /v1/images?repository=registry/repo[&limit=N][&cursor=…]`: newest first, a page at a
/// time.
pub async fn images(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ImagesQuery>,
) -> ApiResult {
    let Some(repository) = q.repository.filter(|r| !r.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "missing-repository",
            "give ?repository=registry/repository (e.g. registry.example.com/team/app)",
        ));
    };
    let limit = match q.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid-limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ));
        }
    };
    let cursor = match &q.cursor {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::bad_request("invalid-cursor", "cursor is not one this API gave out")
        })?),
    };
    let page = app
        .store
        .images(
            &repository,
            app.policy_digest(),
            &caller.visibility(),
            cursor.as_ref(),
            limit,
        )
        .await
        .map_err(|e| ApiError::store(&e))?;
    let images: Vec<Value> = page
        .images
        .iter()
        .map(|i| {
            json!({
                "manifest_digest": i.manifest_digest,
                "policy_digest": i.policy_digest,
                "reference": i.reference,
                "decision": i.decision,
                "tags": i.tags,
                "updated_at": rfc3339_millis(i.updated_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({
        "repository": repository,
        "images": images,
        "next_cursor": page.next.as_ref().map(encode_cursor),
    }))
    .into_response())
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
        "created_at": rfc3339_millis(j.created_at_ms),
        "updated_at": rfc3339_millis(j.updated_at_ms),
        "verdict_url": j.spec.digest.as_ref().map(|d| format!("/v1/images/{d}/verdict")),
    })
}

/// `GET /v1/jobs/{id}`.
pub async fn job(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid-job-id", format!("{id:?} is not a job id")))?;
    let visibility = caller.visibility();
    let job = app
        .store
        .job(id)
        .await
        .map_err(|e| ApiError::store(&e))?
        .filter(|j| visibility.sees_scope(&j.spec.scope))
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let mut body = job_body(&job);
    // A done job without a report of its own was an index: its platform images have jobs
    // (and verdicts) of their own, so there is no URL to point at.
    if job.status == gantry_store::JobStatus::Done
        && let Some(digest) = &job.spec.digest
        && app
            .store
            .report(digest, &visibility)
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
pub async fn scan(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    app.rate.check(peer.as_ref().map(|p| &p.0))?;
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
    let body = read_body(body, MAX_SCAN_BODY_BYTES, app.settings.http.body_timeout)
        .await
        .map_err(|e| e.answer(MAX_SCAN_BODY_BYTES))?;
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
    crate::intake::check_queue(&app).await?;
    let deadline = Instant::now() + budget;
    let visibility = caller.visibility();
    let text = reference.to_string();

    let started = async {
        let digests = lookup::resolve(
            &app,
            &reference,
            Platforms::One(&platform),
            &Pull::Public,
            Duration::ZERO,
        )
        .await?;
        let (_, digest) = digests
            .into_iter()
            .next()
            .ok_or_else(|| LookupError::NoPlatform {
                reference: text.clone(),
                wanted: platform.to_string(),
            })?;
        let found = lookup::lookup(
            &app,
            &reference,
            &digest,
            Mode::Api,
            &Pull::Public,
            &visibility,
        )
        .await?;
        Ok::<_, LookupError>((digest, found))
    };
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
    let (digest, found) = started.map_err(|e| lookup_error(&text, e, &caller))?;
    let job_id = match found {
        Lookup::Known(v) => return answer(&v, None, true),
        Lookup::Pending { job_id } => job_id,
    };
    let key = crate::judge::verdict_key(&app, &reference, &digest, Mode::Api);
    match timeout_at(deadline, lookup::wait(&app, job_id, &key, &visibility)).await {
        Ok(result) => {
            let v = result.map_err(|e| lookup_error(&text, e, &caller))?;
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
                    "manifest_digest": digest.to_string(),
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

/// The answer to a failed lookup. The operator sees the precise error; another caller (a
/// team's reader token) sees [`LookupError::public_message`]'s kind of answer.
fn lookup_error(reference: &str, e: LookupError, caller: &Caller) -> ApiError {
    use gantry_registry::RegistryError;
    let operator = *caller == Caller::Operator;
    let registry = |r: &RegistryError| {
        let status = match r {
            RegistryError::NotFound { .. } | RegistryError::NoMatchingPlatform { .. } => {
                StatusCode::NOT_FOUND
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        if operator || r.is_public() {
            ApiError::new(
                status,
                r.code(),
                format!("{reference}: {}", crate::error_chain(r)),
            )
        } else {
            tracing::info!(error = %crate::error_chain(r), "registry failure (shown to the caller as registry-unavailable)");
            ApiError::new(
                status,
                r.public_code(),
                format!(
                    "{reference}: the registry could not be reached or did not answer as a registry"
                ),
            )
        }
    };
    match e {
        LookupError::Registry(r) | LookupError::Job(crate::judge::JobError::Registry(r)) => {
            registry(&r)
        }
        LookupError::Store(s) => ApiError::store(&s),
        LookupError::Failed(message) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scan-failed", message)
        }
        e @ LookupError::NoPlatform { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "no-matching-platform", e.to_string())
        }
        e @ (LookupError::Missing { .. } | LookupError::Job(_)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            crate::error_chain(&e),
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
