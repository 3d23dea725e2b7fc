//! `POST /admission`: the Kubernetes validating admission webhook.
//!
//! For each image of the admitted object ([`images`]): exemptions first, then the verdict for
//! its digest under the current policy bundle — from the store at once, or from a scan that
//! must finish within the API server's timeout minus a safety margin ([`crate::lookup`]).
//! When the budget runs out or the registry fails, the failure mode decides, and the scan goes
//! on so the next request is answered from the store. Every request that parses as an
//! AdmissionReview gets an AdmissionReview back with its uid; only bodies that are not one get
//! a 400.

pub mod images;
pub mod pull_secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use gantry_model::{Finding, ImageRef, Platform, Verdict};
use globset::{GlobBuilder, GlobMatcher};
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::Deserialize;
use tokio::time::{Instant, timeout_at};

use crate::app::{ApiError, App};
use crate::config::{AdmissionConfig, AdmissionMode, ConfigError, FailureMode, invalid};
use crate::lookup::{self, Lookup};
use images::{ImageUse, images_of};

/// Largest AdmissionReview accepted. The API server caps request bodies at 3 MiB; a review
/// carries the object (and the old one on UPDATE), so 7 MiB leaves room for both.
pub const MAX_REVIEW_BYTES: usize = 7 * 1024 * 1024;
/// Longest `status.message`: the API server shows it to the user and records it in events.
const MAX_MESSAGE_BYTES: usize = 3000;
/// Kubernetes truncates warnings over 256 characters and drops many warnings: keep each
/// short and send at most this many.
const MAX_WARNING_CHARS: usize = 250;
const MAX_WARNINGS: usize = 20;
/// Longest audit annotation value.
const MAX_ANNOTATION_BYTES: usize = 2000;
/// Least budget given to a scan, whatever the timeout and margin say.
const MIN_BUDGET: Duration = Duration::from_millis(500);

/// An image exemption, compiled.
#[derive(Debug, Clone)]
pub struct Exemption {
    pattern: String,
    matcher: GlobMatcher,
    namespace: Option<String>,
    reason: Option<String>,
    expires: std::time::SystemTime,
    expires_text: String,
}

/// The `[admission]` settings, validated.
#[derive(Debug, Clone)]
pub struct AdmissionSettings {
    pub listen: std::net::SocketAddr,
    pub tls_cert: std::path::PathBuf,
    pub tls_key: std::path::PathBuf,
    pub mode: AdmissionMode,
    pub failure_mode: FailureMode,
    pub safety_margin: Duration,
    pub default_timeout: Duration,
    pub platform: Platform,
    pub tag_cache_ttl: Duration,
    pub exempt_namespaces: BTreeSet<String>,
    pub namespace_modes: BTreeMap<String, AdmissionMode>,
    pub exemptions: Vec<Exemption>,
}

fn parse_expiry(text: &str) -> Option<std::time::SystemTime> {
    let t = text.trim();
    if t.len() == 10 {
        // A date: valid through the end of that day, UTC.
        return humantime::parse_rfc3339(&format!("{t}T23:59:59Z")).ok();
    }
    humantime::parse_rfc3339_weak(t).ok()
}

impl AdmissionSettings {
    /// `None` when no certificate is configured (no admission listener).
    pub fn resolve(c: &AdmissionConfig) -> Result<Option<AdmissionSettings>, ConfigError> {
        let (tls_cert, tls_key) = match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) => return Ok(None),
            _ => {
                return Err(invalid(
                    "admission",
                    "tls_cert and tls_key go together (--tls-cert and --tls-key)",
                ));
            }
        };
        let platform: Platform = c
            .platform
            .parse()
            .map_err(|e| invalid("admission.platform", format!("{e}")))?;
        let mut exempt_namespaces: BTreeSet<String> = c.exempt_namespaces.iter().cloned().collect();
        // Gantry must never block its own pods: a broken rollout of Gantry could then never be fixed.
        if let Ok(own) = std::env::var("POD_NAMESPACE")
            && !own.is_empty()
        {
            exempt_namespaces.insert(own);
        }
        let namespace_modes = c
            .namespaces
            .iter()
            .map(|n| (n.name.clone(), n.mode))
            .collect();
        let mut exemptions = Vec::new();
        for (i, e) in c.exemptions.iter().enumerate() {
            let key = format!("admission.exemptions[{i}]");
            let glob = GlobBuilder::new(e.image.trim())
                .literal_separator(true)
                .build()
                .map_err(|err| invalid(format!("{key}.image"), err.to_string()))?;
            let expires = parse_expiry(&e.expires).ok_or_else(|| {
                invalid(
                    format!("{key}.expires"),
                    format!(
                        "{:?} is not a date (2027-01-31) or RFC 3339 time",
                        e.expires
                    ),
                )
            })?;
            exemptions.push(Exemption {
                pattern: e.image.clone(),
                matcher: glob.compile_matcher(),
                namespace: e.namespace.clone(),
                reason: e.reason.clone(),
                expires,
                expires_text: e.expires.clone(),
            });
        }
        Ok(Some(AdmissionSettings {
            listen: c.listen,
            tls_cert,
            tls_key,
            mode: c.mode,
            failure_mode: c.failure_mode,
            safety_margin: c.safety_margin,
            default_timeout: c.default_timeout,
            platform,
            tag_cache_ttl: c.tag_cache_ttl,
            exempt_namespaces,
            namespace_modes,
            exemptions,
        }))
    }

    fn mode_for(&self, namespace: Option<&str>) -> AdmissionMode {
        namespace
            .and_then(|ns| self.namespace_modes.get(ns))
            .copied()
            .unwrap_or(self.mode)
    }

    /// The exemption covering `reference` in `namespace`, if one is in force now.
    fn exemption(&self, reference: &ImageRef, namespace: Option<&str>) -> Option<&Exemption> {
        let now = std::time::SystemTime::now();
        let full = reference.to_string();
        let name = reference.name();
        self.exemptions.iter().find(|e| {
            let applies = e.namespace.as_deref().is_none_or(|ns| Some(ns) == namespace)
                && (e.matcher.is_match(&full) || e.matcher.is_match(&name));
            if applies && e.expires < now {
                tracing::warn!(image = %full, pattern = %e.pattern, expired = %e.expires_text, "image exemption has expired; judging the image");
                return false;
            }
            applies
        })
    }
}

/// The type of a review body, read before the rest.
#[derive(Debug, Deserialize)]
struct ReviewHead {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

/// `?timeout=10s`, as the API server appends it.
#[derive(Debug, Deserialize)]
pub struct ReviewQuery {
    timeout: Option<String>,
}

/// What became of one image.
#[derive(Debug)]
enum Outcome {
    Verdict {
        digest: String,
        verdict: Verdict,
    },
    Exempt {
        pattern: String,
        reason: Option<String>,
        expires: String,
    },
    /// No verdict in time; the scan goes on.
    Pending {
        digest: String,
        job_id: i64,
    },
    /// The image could not be judged.
    Error(String),
}

#[derive(Debug)]
struct Judged {
    uses: Vec<ImageUse>,
    image: String,
    outcome: Outcome,
}

/// The admission router (served over TLS by [`crate::tls::serve`]).
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/admission", axum::routing::post(review))
        // The body is read (and capped) by the handler, to answer with the error envelope.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .fallback(|| async {
            ApiError::not_found("no such endpoint (the webhook path is /admission)")
        })
        .with_state(app)
}

/// `POST /admission`.
pub async fn review(
    State(app): State<Arc<App>>,
    Query(q): Query<ReviewQuery>,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let Ok(body) = to_bytes(body, MAX_REVIEW_BYTES).await else {
        app.metrics
            .admission("invalid", started.elapsed().as_secs_f64());
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("AdmissionReviews are limited to {MAX_REVIEW_BYTES} bytes"),
        )
        .into_response();
    };
    let Some(settings) = app.settings.admission.as_ref() else {
        return ApiError::not_found("admission is not configured").into_response();
    };
    // The version first: a v1beta1 review deserves "wrong version", not a field error.
    let head: ReviewHead = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            app.metrics
                .admission("invalid", started.elapsed().as_secs_f64());
            return ApiError::bad_request("invalid-review", format!("not an AdmissionReview: {e}"))
                .into_response();
        }
    };
    if head.api_version.as_deref() != Some("admission.k8s.io/v1")
        || head.kind.as_deref() != Some("AdmissionReview")
    {
        app.metrics
            .admission("invalid", started.elapsed().as_secs_f64());
        return ApiError::bad_request(
            "unsupported-review",
            format!(
                "expected admission.k8s.io/v1 AdmissionReview, got {} {} (set admissionReviewVersions: [v1])",
                head.api_version.as_deref().unwrap_or("(no apiVersion)"),
                head.kind.as_deref().unwrap_or("(no kind)")
            ),
        )
        .into_response();
    }
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            app.metrics
                .admission("invalid", started.elapsed().as_secs_f64());
            return ApiError::bad_request("invalid-review", format!("not an AdmissionReview: {e}"))
                .into_response();
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            app.metrics
                .admission("invalid", started.elapsed().as_secs_f64());
            return ApiError::bad_request("invalid-review", format!("{e}")).into_response();
        }
    };
    if request.uid.is_empty() {
        app.metrics
            .admission("invalid", started.elapsed().as_secs_f64());
        return ApiError::bad_request("invalid-review", "the request has no uid").into_response();
    }
    let timeout = q
        .timeout
        .as_deref()
        .and_then(|t| humantime::parse_duration(t).ok())
        .unwrap_or(settings.default_timeout);
    let budget = timeout
        .saturating_sub(settings.safety_margin)
        .max(MIN_BUDGET);
    let (response, decision) = decide(&app, settings, &request, Instant::now() + budget).await;
    app.metrics
        .admission(decision, started.elapsed().as_secs_f64());
    Json(response.into_review()).into_response()
}

async fn decide(
    app: &App,
    settings: &AdmissionSettings,
    request: &AdmissionRequest<DynamicObject>,
    deadline: Instant,
) -> (AdmissionResponse, &'static str) {
    let base = AdmissionResponse::from(request);
    let namespace = request.namespace.as_deref();
    if let Some(ns) = namespace.filter(|ns| settings.exempt_namespaces.contains(*ns)) {
        let mut r = base;
        r.audit_annotations
            .insert("decision".to_string(), format!("exempt: namespace {ns}"));
        return (r, "exempt");
    }
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return (base, "allow");
    }
    let Some(object) = &request.object else {
        return (base, "allow");
    };
    let kind = request.kind.kind.as_str();
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            return failure(
                settings,
                base,
                namespace,
                format!("cannot read the {kind}: {e}"),
            );
        }
    };
    let pod = match images_of(kind, &value) {
        Ok(p) => p,
        Err(images::ObjectError::UnsupportedKind(k)) => {
            // Sent by a webhook configuration broader than Gantry's: nothing of ours to judge.
            let mut r = base;
            r.audit_annotations
                .insert("decision".to_string(), format!("not judged: kind {k}"));
            return (r, "allow");
        }
        Err(e) => return failure(settings, base, namespace, e.to_string()),
    };
    // One lookup per distinct image, all at once.
    let mut by_image: BTreeMap<String, Vec<ImageUse>> = BTreeMap::new();
    for u in pod.uses {
        by_image.entry(u.image.clone()).or_default().push(u);
    }
    if let (Some(ns), false) = (namespace, pod.pull_secrets.is_empty()) {
        let registries: BTreeSet<String> = by_image
            .keys()
            .filter_map(|i| i.parse::<ImageRef>().ok())
            .map(|r| r.registry().to_string())
            .collect();
        let registries: Vec<String> = registries.into_iter().collect();
        app.pull_secrets
            .learn(ns, &pod.pull_secrets, &registries)
            .await;
    }
    let judged = join_all(by_image.into_iter().map(|(image, uses)| async move {
        let outcome = judge_image(app, settings, &image, namespace, deadline).await;
        Judged {
            uses,
            image,
            outcome,
        }
    }))
    .await;
    respond(settings, base, namespace, &judged)
}

async fn judge_image(
    app: &App,
    settings: &AdmissionSettings,
    image: &str,
    namespace: Option<&str>,
    deadline: Instant,
) -> Outcome {
    let reference: ImageRef = match image.parse() {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("invalid image reference: {e}")),
    };
    if let Some(e) = settings.exemption(&reference, namespace) {
        return Outcome::Exempt {
            pattern: e.pattern.clone(),
            reason: e.reason.clone(),
            expires: e.expires_text.clone(),
        };
    }
    let found = lookup::lookup(
        app,
        &reference,
        &settings.platform,
        settings.tag_cache_ttl,
        "admission",
    );
    let (digest, job_id) = match timeout_at(deadline, found).await {
        Err(_) => {
            return Outcome::Error("resolving the image took longer than the budget".to_string());
        }
        Ok(Err(e)) => return Outcome::Error(e.to_string()),
        Ok(Ok(Lookup::Known(v))) => return stored(v),
        Ok(Ok(Lookup::Pending { digest, job_id })) => (digest, job_id),
    };
    match timeout_at(deadline, lookup::wait(app, job_id, &digest)).await {
        Err(_) => Outcome::Pending { digest, job_id },
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Ok(Ok(v)) => stored(v),
    }
}

fn stored(v: gantry_store::StoredVerdict) -> Outcome {
    match serde_json::from_str::<Verdict>(&v.verdict_json) {
        Ok(verdict) => Outcome::Verdict {
            digest: v.manifest_digest,
            verdict,
        },
        Err(e) => Outcome::Error(format!(
            "stored verdict of {} is unreadable: {e}",
            v.manifest_digest
        )),
    }
}

/// The object itself could not be judged: the failure mode decides.
fn failure(
    settings: &AdmissionSettings,
    base: AdmissionResponse,
    namespace: Option<&str>,
    reason: String,
) -> (AdmissionResponse, &'static str) {
    let message = format!("gantry: {reason}");
    let mut r = base;
    r.audit_annotations
        .insert("error".to_string(), clip(&reason, MAX_ANNOTATION_BYTES));
    if settings.failure_mode == FailureMode::Open
        || settings.mode_for(namespace) == AdmissionMode::Warn
    {
        r.warnings = Some(vec![clip_chars(&message, MAX_WARNING_CHARS)]);
        r.audit_annotations.insert(
            "decision".to_string(),
            "allow (failure mode open)".to_string(),
        );
        return (r, "error");
    }
    r.audit_annotations.insert(
        "decision".to_string(),
        "deny (failure mode closed)".to_string(),
    );
    (deny(r, message), "error")
}

fn deny(mut r: AdmissionResponse, message: String) -> AdmissionResponse {
    r = r.deny(clip(&message, MAX_MESSAGE_BYTES));
    r.result.code = 403;
    r.result.reason = "Forbidden".to_string();
    r
}

/// `root-user: runs as root [config.User]`.
fn finding_text(f: &Finding) -> String {
    let mut evidence = Vec::new();
    if let Some(l) = &f.location {
        if let Some(i) = l.layer_index {
            evidence.push(format!("layer {i}"));
        }
        if let Some(p) = &l.path {
            evidence.push(format!("/{p}"));
        }
        if let Some(field) = &l.field {
            evidence.push(field.clone());
        }
    }
    if evidence.is_empty() {
        format!("{}: {}", f.code, f.message)
    } else {
        format!("{}: {} [{}]", f.code, f.message, evidence.join(" "))
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn places(uses: &[ImageUse]) -> String {
    uses.iter()
        .map(|u| u.place.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn respond(
    settings: &AdmissionSettings,
    base: AdmissionResponse,
    namespace: Option<&str>,
    judged: &[Judged],
) -> (AdmissionResponse, &'static str) {
    let warn_only = settings.mode_for(namespace) == AdmissionMode::Warn;
    let fail_open = settings.failure_mode == FailureMode::Open;
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    let mut summary = Vec::new();
    for j in judged {
        let at = places(&j.uses);
        match &j.outcome {
            Outcome::Verdict { digest, verdict } => {
                let denied = !verdict.violations.is_empty()
                    || verdict.decision == gantry_model::Decision::Deny;
                summary.push(format!(
                    "{}@{}={}",
                    j.image,
                    short(digest),
                    if denied { "deny" } else { "allow" }
                ));
                if denied {
                    let reasons: Vec<String> =
                        verdict.violations.iter().map(finding_text).collect();
                    denials.push(format!(
                        "{at}: {} ({}): {}",
                        j.image,
                        short(digest),
                        reasons.join("; ")
                    ));
                }
                for w in &verdict.warnings {
                    warnings.push(format!("{}: {}", j.image, finding_text(w)));
                }
            }
            Outcome::Exempt {
                pattern,
                reason,
                expires,
            } => {
                summary.push(format!("{}=exempt", j.image));
                warnings.push(format!(
                    "{}: exempted by {pattern} until {expires}{}",
                    j.image,
                    reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ));
            }
            Outcome::Pending { digest, job_id } => {
                summary.push(format!("{}@{}=pending", j.image, short(digest)));
                let text = format!(
                    "{at}: {}: no verdict within the time limit; the scan continues (job {job_id}), retry shortly",
                    j.image
                );
                if fail_open {
                    warnings.push(text);
                } else {
                    denials.push(text);
                }
            }
            Outcome::Error(e) => {
                summary.push(format!("{}=error", j.image));
                let text = format!("{at}: {}: cannot be judged: {e}", j.image);
                if fail_open {
                    warnings.push(text);
                } else {
                    denials.push(text);
                }
            }
        }
    }
    let mut r = base;
    r.audit_annotations.insert(
        "images".to_string(),
        clip(&summary.join(" "), MAX_ANNOTATION_BYTES),
    );
    if denials.is_empty() {
        r.warnings = warnings_list(warnings);
        r.audit_annotations
            .insert("decision".to_string(), "allow".to_string());
        return (r, "allow");
    }
    let message = format!(
        "gantry denied {} of {} image(s): {}",
        denials.len(),
        judged.len(),
        denials.join(" | ")
    );
    if warn_only {
        let mut all: Vec<String> = denials.iter().map(|d| format!("would deny: {d}")).collect();
        all.extend(warnings);
        r.warnings = warnings_list(all);
        r.audit_annotations.insert(
            "decision".to_string(),
            "deny (warn mode: admitted)".to_string(),
        );
        r.audit_annotations
            .insert("denied".to_string(), clip(&message, MAX_ANNOTATION_BYTES));
        return (r, "warn");
    }
    r.warnings = warnings_list(warnings);
    r.audit_annotations
        .insert("decision".to_string(), "deny".to_string());
    (deny(r, message), "deny")
}

fn warnings_list(mut warnings: Vec<String>) -> Option<Vec<String>> {
    if warnings.is_empty() {
        return None;
    }
    let extra = warnings.len().saturating_sub(MAX_WARNINGS);
    warnings.truncate(MAX_WARNINGS);
    let mut out: Vec<String> = warnings
        .iter()
        .map(|w| clip_chars(&format!("gantry: {w}"), MAX_WARNING_CHARS))
        .collect();
    if extra > 0 {
        out.push(format!(
            "gantry: … and {extra} more warnings (see GET /v1/images/{{digest}}/verdict)"
        ));
    }
    Some(out)
}

/// At most `max` bytes, cut on a character boundary, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn clip_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_respects_characters() {
        assert_eq!(clip("abcdef", 10), "abcdef");
        let c = clip(&"é".repeat(100), 11);
        assert!(c.len() <= 11 && c.ends_with('…'), "{c}");
        assert_eq!(clip_chars("abcdef", 4), "abc…");
    }

    #[test]
    fn expiry_dates_and_times() {
        assert!(parse_expiry("2027-01-31").is_some());
        assert!(parse_expiry("2027-01-31T10:00:00Z").is_some());
        assert!(parse_expiry("soon").is_none());
    }
}
