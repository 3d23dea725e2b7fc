//! `POST /admission`: the Kubernetes validating admission webhook.
//!
//! For each image of the admitted object ([`images`]): exemptions first, then the verdict of
//! every platform image the pod may run — each platform an index offers, or those its node
//! selection names exactly — under the current policy bundle: from the store at once, or from
//! a scan that must finish within the API server's timeout minus a safety margin
//! ([`crate::lookup`]). One denied platform denies the pod, and the message says which. When
//! the budget runs out or the registry fails, the failure mode decides, and the scan goes on so
//! the next request is answered from the store. Every request that parses as an
//! AdmissionReview gets an AdmissionReview back with its uid — even if judging it panicked;
//! only bodies that are not one get a 400.
//!
//! A review's namespace and the pod's `imagePullSecrets` are acted on (a Secret read with
//! Gantry's own service account, a pull with it) only when the review came from a client whose
//! certificate the listener verified: the API server. A review from any other client is judged
//! with Gantry's own credentials, and sees only what every caller may see.

pub mod images;
pub mod pull_secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use futures_util::future::join_all;
use gantry_model::{Digest, Finding, ImageRef, Platform, Verdict};
use gantry_store::Visibility;
use globset::{GlobBuilder, GlobMatcher};
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::Deserialize;
use tokio::time::{Instant, timeout_at};

use crate::app::{ApiError, App, read_body};
use crate::config::{AdmissionConfig, AdmissionMode, ConfigError, FailureMode, invalid};
use crate::judge::{Mode, Pull};
use crate::listener::Peer;
use crate::lookup::{self, Lookup, Platforms};
use crate::tls::ClientAuth;
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
/// The longest timeout the API server allows a webhook (`timeoutSeconds` is at most 30): a
/// larger `?timeout=` is no API server's, and must not hold a request open.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Platforms judged of a multi-platform image; `None`: every one it offers.
    pub platforms: Option<Vec<Platform>>,
    /// Who may send reviews.
    pub clients: ClientAuth,
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
        if c.platform.is_some() {
            return Err(invalid(
                "admission.platform",
                "replaced by admission.platforms: every platform a multi-platform image offers \
                 is judged by default (a pod may land on any of them); list platforms only to \
                 judge fewer",
            ));
        }
        let platforms = if c.platforms.is_empty() {
            None
        } else {
            Some(
                c.platforms
                    .iter()
                    .map(|p| {
                        p.parse::<Platform>()
                            .map_err(|e| invalid("admission.platforms", format!("{p:?}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let clients = match (&c.client_ca, c.allow_unauthenticated_clients) {
            (Some(ca), false) => ClientAuth::Verify {
                ca: ca.clone(),
                names: c.client_names.clone(),
            },
            (None, true) => {
                if !c.client_names.is_empty() {
                    return Err(invalid(
                        "admission.client_names",
                        "names are checked against a client certificate: set admission.client_ca",
                    ));
                }
                ClientAuth::Anyone
            }
            (Some(_), true) => {
                return Err(invalid(
                    "admission",
                    "set either client_ca (verify the API server) or \
                     allow_unauthenticated_clients, not both",
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "admission.client_ca",
                    "the admission listener must know the API server: set client_ca to the CA \
                     that signed the API server's webhook client certificate (docs/admission.md, \
                     \"Authenticating the API server\"), or set \
                     allow_unauthenticated_clients = true where the API server cannot present \
                     one (pods' imagePullSecrets are then not read)",
                ));
            }
        };
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
            platforms,
            clients,
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

/// What became of one platform image.
#[derive(Debug)]
enum PlatformOutcome {
    Verdict(Verdict),
    /// No verdict in time; the scan goes on.
    Pending {
        job_id: i64,
    },
    /// The image could not be judged.
    Error(String),
}

/// One platform image of an image reference.
#[derive(Debug)]
struct Judgement {
    platform: Option<Platform>,
    digest: Digest,
    outcome: PlatformOutcome,
}

/// What became of one image.
#[derive(Debug)]
enum Outcome {
    /// Every applicable platform image, with its outcome.
    Platforms(Vec<Judgement>),
    Exempt {
        pattern: String,
        reason: Option<String>,
        expires: String,
    },
    /// The reference could not be resolved or judged at all.
    Error(String),
}

#[derive(Debug)]
struct Judged {
    uses: Vec<ImageUse>,
    image: String,
    outcome: Outcome,
}

/// What the review may be trusted with.
#[derive(Debug, Clone, Copy)]
struct Trust {
    /// The client is the API server (its certificate verified): the namespace is real and the
    /// pod's pull secrets may be read.
    api_server: bool,
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
    peer: Option<Extension<Peer>>,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let invalid = |response: Response| {
        app.metrics
            .admission("invalid", started.elapsed().as_secs_f64());
        response
    };
    let body = match read_body(body, MAX_REVIEW_BYTES, app.settings.http.body_timeout).await {
        Ok(b) => b,
        Err(e) => return invalid(e.answer(MAX_REVIEW_BYTES).into_response()),
    };
    let Some(settings) = app.settings.admission.as_ref() else {
        return ApiError::not_found("admission is not configured").into_response();
    };
    let request = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => return invalid(e.into_response()),
    };
    let trust = Trust {
        api_server: matches!(settings.clients, ClientAuth::Verify { .. })
            && peer.is_some_and(|p| p.0.client_certificate),
    };
    let deadline = deadline_of(q.timeout.as_deref(), settings);
    // A panic while judging must still answer the API server, under the failure mode: a
    // webhook that drops the connection stalls every pod creation until its timeout.
    let judged = std::panic::AssertUnwindSafe(decide(&app, settings, &request, deadline, trust))
        .catch_unwind()
        .await;
    let (response, decision) = match judged {
        Ok(done) => done,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            tracing::error!(uid = %request.uid, panic = %what, "judging an admission review panicked");
            failure(
                settings,
                AdmissionResponse::from(&request),
                request.namespace.as_deref(),
                "internal error while judging the images".to_string(),
            )
        }
    };
    app.metrics
        .admission(decision, started.elapsed().as_secs_f64());
    Json(response.into_review()).into_response()
}

/// When the answer must be ready: the API server's `?timeout=` (at most [`MAX_TIMEOUT`]; the
/// configured default when absent or unreadable) less the safety margin, at least
/// [`MIN_BUDGET`].
fn deadline_of(timeout: Option<&str>, settings: &AdmissionSettings) -> Instant {
    let budget = budget_of(timeout, settings.default_timeout, settings.safety_margin);
    let now = Instant::now();
    // Both are bounded by MAX_TIMEOUT, so this cannot overflow; saturate all the same.
    now.checked_add(budget).unwrap_or(now)
}

/// How long judging may take for a `?timeout=` value (see [`deadline_of`]).
pub(crate) fn budget_of(
    timeout: Option<&str>,
    default_timeout: Duration,
    safety_margin: Duration,
) -> Duration {
    let timeout = timeout
        .and_then(|t| humantime::parse_duration(t).ok())
        .unwrap_or(default_timeout)
        .min(MAX_TIMEOUT);
    timeout.saturating_sub(safety_margin).max(MIN_BUDGET)
}

/// The body as an admission.k8s.io/v1 AdmissionRequest with a uid, or the 400 to answer.
pub(crate) fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, ApiError> {
    // The version first: a v1beta1 review deserves "wrong version", not a field error.
    let head: ReviewHead = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid-review", format!("not an AdmissionReview: {e}"))
    })?;
    if head.api_version.as_deref() != Some("admission.k8s.io/v1")
        || head.kind.as_deref() != Some("AdmissionReview")
    {
        return Err(ApiError::bad_request(
            "unsupported-review",
            format!(
                "expected admission.k8s.io/v1 AdmissionReview, got {} {} (set admissionReviewVersions: [v1])",
                head.api_version.as_deref().unwrap_or("(no apiVersion)"),
                head.kind.as_deref().unwrap_or("(no kind)")
            ),
        ));
    }
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid-review", format!("not an AdmissionReview: {e}"))
    })?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|e| ApiError::bad_request("invalid-review", format!("{e}")))?;
    if request.uid.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-review",
            "the request has no uid",
        ));
    }
    Ok(request)
}

async fn decide(
    app: &App,
    settings: &AdmissionSettings,
    request: &AdmissionRequest<DynamicObject>,
    deadline: Instant,
    trust: Trust,
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
    // Only the API server's word on the namespace is taken: anyone else sees public results.
    let (visibility, secrets) = match (trust.api_server, namespace) {
        (true, Some(ns)) => (Visibility::namespaces([ns]), pod.pull_secrets.as_slice()),
        _ => (Visibility::public(), &[][..]),
    };
    if !trust.api_server && !pod.pull_secrets.is_empty() {
        tracing::debug!(
            uid = %request.uid,
            "the review's client is not the verified API server: its imagePullSecrets are not read"
        );
    }
    let platforms = pod.platforms.as_deref().or(settings.platforms.as_deref());
    let ask = Ask {
        app,
        settings,
        namespace,
        secrets,
        visibility: &visibility,
        platforms,
        deadline,
    };
    let judged = join_all(by_image.into_iter().map(|(image, uses)| {
        let ask = &ask;
        async move {
            let outcome = ask.judge_image(&image).await;
            Judged {
                uses,
                image,
                outcome,
            }
        }
    }))
    .await;
    respond(settings, base, namespace, &judged)
}

/// What judging one image of a review needs.
struct Ask<'a> {
    app: &'a App,
    settings: &'a AdmissionSettings,
    namespace: Option<&'a str>,
    /// The pod's pull secrets, when they may be read.
    secrets: &'a [String],
    visibility: &'a Visibility,
    platforms: Option<&'a [Platform]>,
    deadline: Instant,
}

impl Ask<'_> {
    /// Whose credentials pull `reference`: the namespace's, when one of the pod's pull secrets
    /// has some for its registry (as the kubelet would pull it); else Gantry's own.
    async fn pull_for(&self, reference: &ImageRef) -> Pull {
        let (Some(ns), false) = (self.namespace, self.secrets.is_empty()) else {
            return Pull::Public;
        };
        if !self.app.pull_secrets.in_cluster() {
            return Pull::Public;
        }
        match self
            .app
            .pull_secrets
            .lookup(ns, self.secrets, reference.registry())
            .await
        {
            Ok(Some(_)) => Pull::Namespace {
                namespace: ns.to_string(),
                secrets: self.secrets.to_vec(),
            },
            Ok(None) => Pull::Public,
            Err(e) => {
                tracing::warn!(namespace = ns, error = %crate::error_chain(&e), "cannot read a pod's imagePullSecrets; pulling with Gantry's own credentials");
                Pull::Public
            }
        }
    }

    async fn judge_image(&self, image: &str) -> Outcome {
        let reference: ImageRef = match image.parse() {
            Ok(r) => r,
            Err(e) => return Outcome::Error(format!("invalid image reference: {e}")),
        };
        if let Some(e) = self.settings.exemption(&reference, self.namespace) {
            return Outcome::Exempt {
                pattern: e.pattern.clone(),
                reason: e.reason.clone(),
                expires: e.expires_text.clone(),
            };
        }
        let pull = self.pull_for(&reference).await;
        let resolved = lookup::resolve(
            self.app,
            &reference,
            Platforms::Every(self.platforms),
            &pull,
            self.settings.tag_cache_ttl,
        );
        let images = match timeout_at(self.deadline, resolved).await {
            Err(_) => {
                return Outcome::Error(
                    "resolving the image took longer than the budget".to_string(),
                );
            }
            Ok(Err(e)) => return Outcome::Error(e.public_message()),
            Ok(Ok(images)) => images,
        };
        let judged = join_all(images.into_iter().map(|(platform, digest)| {
            let (pull, reference) = (&pull, &reference);
            async move {
                let outcome = self.judge_platform(reference, &digest, pull).await;
                Judgement {
                    platform,
                    digest,
                    outcome,
                }
            }
        }))
        .await;
        Outcome::Platforms(judged)
    }

    async fn judge_platform(
        &self,
        reference: &ImageRef,
        digest: &Digest,
        pull: &Pull,
    ) -> PlatformOutcome {
        let found = lookup::lookup(
            self.app,
            reference,
            digest,
            Mode::Admission,
            pull,
            self.visibility,
        );
        let job_id = match timeout_at(self.deadline, found).await {
            Err(_) => {
                return PlatformOutcome::Error(
                    "looking up the verdict took longer than the budget".to_string(),
                );
            }
            Ok(Err(e)) => return PlatformOutcome::Error(e.public_message()),
            Ok(Ok(Lookup::Known(v))) => return stored(*v),
            Ok(Ok(Lookup::Pending { job_id })) => job_id,
        };
        let key = crate::judge::verdict_key(self.app, reference, digest, Mode::Admission);
        match timeout_at(
            self.deadline,
            lookup::wait(self.app, job_id, &key, self.visibility),
        )
        .await
        {
            Err(_) => PlatformOutcome::Pending { job_id },
            Ok(Err(e)) => PlatformOutcome::Error(e.public_message()),
            Ok(Ok(v)) => stored(v),
        }
    }
}

fn stored(v: gantry_store::StoredVerdict) -> PlatformOutcome {
    match serde_json::from_str::<Verdict>(&v.verdict_json) {
        Ok(verdict) => PlatformOutcome::Verdict(verdict),
        Err(e) => PlatformOutcome::Error(format!(
            "stored verdict of {} is unreadable: {e}",
            v.key.manifest_digest
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

/// `sha256:` and the first 12 hex digits.
fn short(digest: &Digest) -> String {
    let full = digest.to_string();
    full.get(..19).unwrap_or(&full).to_string()
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
    let unjudged = |text: String, warnings: &mut Vec<String>, denials: &mut Vec<String>| {
        if fail_open {
            warnings.push(text);
        } else {
            denials.push(text);
        }
    };
    for j in judged {
        let at = places(&j.uses);
        match &j.outcome {
            Outcome::Platforms(platforms) => {
                for p in platforms {
                    // `image (linux/arm64 sha256:…)`; the platform only for multi-platform images.
                    let which = match &p.platform {
                        Some(platform) => format!("{platform} {}", short(&p.digest)),
                        None => short(&p.digest).to_string(),
                    };
                    let tag = p
                        .platform
                        .as_ref()
                        .map(|pl| format!("[{pl}]"))
                        .unwrap_or_default();
                    match &p.outcome {
                        PlatformOutcome::Verdict(verdict) => {
                            let denied = !verdict.violations.is_empty()
                                || verdict.decision == gantry_model::Decision::Deny;
                            summary.push(format!(
                                "{}@{}{tag}={}",
                                j.image,
                                short(&p.digest),
                                if denied { "deny" } else { "allow" }
                            ));
                            if denied {
                                let reasons: Vec<String> =
                                    verdict.violations.iter().map(finding_text).collect();
                                denials.push(format!(
                                    "{at}: {} ({which}): {}",
                                    j.image,
                                    reasons.join("; ")
                                ));
                            }
                            for w in &verdict.warnings {
                                warnings.push(format!("{}{tag}: {}", j.image, finding_text(w)));
                            }
                        }
                        PlatformOutcome::Pending { job_id } => {
                            summary.push(format!("{}@{}{tag}=pending", j.image, short(&p.digest)));
                            unjudged(
                                format!(
                                    "{at}: {} ({which}): no verdict within the time limit; the scan continues (job {job_id}), retry shortly",
                                    j.image
                                ),
                                &mut warnings,
                                &mut denials,
                            );
                        }
                        PlatformOutcome::Error(e) => {
                            summary.push(format!("{}@{}{tag}=error", j.image, short(&p.digest)));
                            unjudged(
                                format!("{at}: {} ({which}): cannot be judged: {e}", j.image),
                                &mut warnings,
                                &mut denials,
                            );
                        }
                    }
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
            Outcome::Error(e) => {
                summary.push(format!("{}=error", j.image));
                unjudged(
                    format!("{at}: {}: cannot be judged: {e}", j.image),
                    &mut warnings,
                    &mut denials,
                );
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
    fn timeouts_are_clamped_to_what_an_api_server_sends() {
        let settings = AdmissionSettings::resolve(&AdmissionConfig {
            tls_cert: Some("c".into()),
            tls_key: Some("k".into()),
            allow_unauthenticated_clients: true,
            ..AdmissionConfig::default()
        })
        .unwrap()
        .unwrap();
        let budget = |t: Option<&str>| deadline_of(t, &settings) - Instant::now();
        // 18446744073709551615s overflowed a time addition and panicked; 100000h held the
        // request open for ever.
        for hostile in ["18446744073709551615s", "100000h", "99999999999999999999s"] {
            let b = budget(Some(hostile));
            assert!(b <= MAX_TIMEOUT, "{hostile}: {b:?}");
        }
        assert!(budget(Some("10s")) <= Duration::from_secs(8));
        assert!(budget(Some("1s")) >= MIN_BUDGET - Duration::from_millis(50));
        assert!(budget(Some("soon")) <= Duration::from_secs(8));
    }

    #[test]
    fn expiry_dates_and_times() {
        assert!(parse_expiry("2027-01-31").is_some());
        assert!(parse_expiry("2027-01-31T10:00:00Z").is_some());
        assert!(parse_expiry("soon").is_none());
    }
}
