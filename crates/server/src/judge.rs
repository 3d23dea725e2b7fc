//! One job, start to finish: resolve the image, scan and judge it (through gantry-gate, as the
//! CLI does), build its SBOM, store the result; and re-judging stored facts when the policy
//! bundle changed.

use std::sync::Arc;
use std::time::Instant;

use gantry_gate::{Checked, Context};
use gantry_model::oci::DocumentKind;
use gantry_model::{Digest, ImageRef, Verdict};
use gantry_registry::{ImageSource, RegistryError, SourceRef};
use gantry_sbom::{SbomInput, SpecVersion};
use gantry_scan::LayerSource;
use gantry_store::{DigestOutcome, Job, JobSpec, ResultRecord, StoreError, StoredVerdict};
use serde_json::{Value, json};

use crate::app::App;

/// Why a job's attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job names something that can never be pulled (retrying cannot help).
    #[error("invalid image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    /// Registry or scan failure.
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The scan or the input document failed.
    #[error("{0}")]
    Gate(#[from] gantry_gate::GateError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The SBOM could not be rendered (a bug).
    #[error("rendering the SBOM: {0}")]
    Sbom(#[from] gantry_sbom::SbomError),
    /// A document could not be serialised (a bug).
    #[error("serialising the result: {0}")]
    Json(#[from] serde_json::Error),
    /// The attempt's task panicked (a bug); the job is failed, the worker lives on.
    #[error("internal error: {0}")]
    Internal(String),
}

impl JobError {
    /// Whether another attempt may succeed. Registry outages and timeouts are transient;
    /// a missing manifest, a malformed image or a hostile layer is the same next time.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Reference { .. }
            | JobError::Sbom(_)
            | JobError::Json(_)
            | JobError::Internal(_) => false,
            JobError::Registry(e) => e.is_transient(),
            JobError::Gate(gantry_gate::GateError::Scan(e)) => scan_transient(e),
            JobError::Gate(_) => false,
            JobError::Store(e) => e.is_transient(),
        }
    }
}

fn scan_transient(e: &gantry_scan::ScanError) -> bool {
    use gantry_layer::LayerError;
    use gantry_scan::ScanError;
    // A layer that broke a limit, failed its digest or is corrupt is the same next time; a
    // failed read of the blob (the connection dropped, the registry timed out) may not be.
    match e {
        ScanError::Registry(r) => r.is_transient(),
        ScanError::Layer {
            source: LayerError::Read { source, .. },
            ..
        } => RegistryError::from_io_ref(source).is_none_or(RegistryError::is_transient),
        ScanError::Cancelled { .. } | ScanError::Task { .. } => true,
        _ => false,
    }
}

/// What a finished attempt did.
#[derive(Debug)]
pub enum JobOutcome {
    /// Scanned and judged; the result is stored.
    Judged { digest: String, decision: String },
    /// An index: one job per platform image was queued.
    Index { children: Vec<i64> },
    /// The tag resolved to a digest already queued or judged; the store closed this job.
    Duplicate,
}

/// The mode recorded in the policy input for jobs from `source`.
fn mode(source: &str) -> &'static str {
    if source == "api" { "api" } else { "webhook" }
}

fn reference_of(spec: &JobSpec) -> Result<(ImageRef, ImageRef), JobError> {
    let bad = |message: String| JobError::Reference {
        reference: spec.image_ref.clone(),
        message,
    };
    let reference: ImageRef = spec.image_ref.parse().map_err(|e| bad(format!("{e}")))?;
    let target = match &spec.digest {
        Some(d) => {
            let digest: Digest = d.parse().map_err(|e| bad(format!("{e}")))?;
            reference.with_digest(digest)
        }
        None => reference.clone(),
    };
    Ok((reference, target))
}

/// Opens the registry source of `target` with the credentials configured for its registry.
pub async fn open(app: &App, target: &ImageRef) -> Result<Arc<dyn ImageSource>, RegistryError> {
    let mut options = app.settings.registry.options_for(target.registry());
    if options.credentials.is_none() {
        // Configured credentials first; else what a pod's pull secret gave for this registry.
        options.credentials = app.pull_secrets.credentials(target.registry());
    }
    gantry_registry::open(&SourceRef::Registry(target.clone()), &options).await
}

/// Runs one attempt of `job` as `worker`. On success the job is complete in the store.
pub async fn run(app: &App, job: &Job, worker: &str) -> Result<JobOutcome, JobError> {
    let spec = &job.spec;
    let (reference, mut target) = reference_of(spec)?;
    let source = open(app, &target).await?;
    let root = source.root().await?;
    if spec.digest.is_none() {
        let digest = root.digest.to_string();
        let outcome = app.store.resolve_digest(job.id, worker, &digest).await?;
        record_tag(app, &reference, &digest).await?;
        match outcome {
            DigestOutcome::Set => {}
            DigestOutcome::Duplicate { .. } | DigestOutcome::AlreadyScanned => {
                return Ok(JobOutcome::Duplicate);
            }
        }
        target = reference.with_digest(root.digest.clone());
    }
    if root.kind == DocumentKind::Index {
        let images = gantry_registry::resolve_all_platforms(source.as_ref()).await?;
        let mut children = Vec::new();
        for image in images {
            let digest = image.manifest_digest.to_string();
            record_tag(app, &reference, &digest).await?;
            let child = app
                .store
                .enqueue(JobSpec {
                    image_ref: reference
                        .with_digest(image.manifest_digest.clone())
                        .to_string(),
                    digest: Some(digest),
                    event_id: None,
                    source: spec.source.clone(),
                    policy_digest: spec.policy_digest.clone(),
                })
                .await?;
            children.push(child.id);
        }
        app.store.complete(job.id, worker).await?;
        app.work.notify_waiters();
        return Ok(JobOutcome::Index { children });
    }

    let started = Instant::now();
    let judged = judge(app, &source, &target, spec).await;
    app.metrics
        .scan(started.elapsed().as_secs_f64(), judged.is_ok());
    let (checked, record) = judged?;
    app.store.put_result(&record).await?;
    crate::notify::verdict(app, &record, &checked.report.verdict, Some(job.id), false).await;
    app.store.complete(job.id, worker).await?;
    let hits = count_layers(&checked, LayerSource::Cached);
    let misses = count_layers(&checked, LayerSource::Walked);
    app.metrics.cache(hits, misses);
    app.metrics.verdict(&record.decision);
    Ok(JobOutcome::Judged {
        digest: record.manifest_digest,
        decision: record.decision,
    })
}

fn count_layers(checked: &Checked, kind: LayerSource) -> u64 {
    checked
        .scan
        .layers
        .iter()
        .filter(|l| l.source == kind)
        .count() as u64
}

async fn record_tag(app: &App, reference: &ImageRef, digest: &str) -> Result<(), StoreError> {
    match reference.tag() {
        Some(tag) => app.store.add_tag(&reference.name(), tag, digest).await,
        None => Ok(()),
    }
}

async fn judge(
    app: &App,
    source: &Arc<dyn ImageSource>,
    target: &ImageRef,
    spec: &JobSpec,
) -> Result<(Checked, ResultRecord), JobError> {
    let image = gantry_registry::resolve_one(source.as_ref(), None).await?;
    let context = Context {
        now: gantry_sbom::now(),
        mode: mode(&spec.source).to_string(),
    };
    let checked = app
        .gate
        .check(source, &target.to_string(), &image, context)
        .await?;
    let sbom = SbomInput::from_checked(&checked, env!("CARGO_PKG_VERSION"));
    if !sbom.complete {
        tracing::warn!(image = %target, "some layers could not be walked: the SBOM is incomplete");
    }
    let sbom_json = gantry_sbom::to_json(&gantry_sbom::cyclonedx(&sbom, SpecVersion::V1_6))?;
    let verdict = &checked.report.verdict;
    let record = ResultRecord {
        manifest_digest: image.manifest_digest.to_string(),
        policy_digest: app.policy_digest().to_string(),
        verdict_json: serde_json::to_string(verdict)?,
        report_json: serde_json::to_string(&checked.report)?,
        sbom_json: Some(sbom_json),
        decision: decision_str(verdict),
        repository: target.name(),
        tags: target.tag().map(str::to_string).into_iter().collect(),
    };
    Ok((checked, record))
}

/// `"allow"` or `"deny"`, as serialised.
pub fn decision_str(verdict: &Verdict) -> String {
    match serde_json::to_value(verdict.decision) {
        Ok(Value::String(s)) => s,
        _ => "deny".to_string(),
    }
}

/// Re-judges stored results made under another policy bundle with the current one, from the
/// facts stored in their reports: no registry access, no layer walk. Returns how many results
/// were re-evaluated. Safe to run in several replicas at once (the result row is the same).
pub async fn reevaluate_stale(app: &App) -> Result<usize, StoreError> {
    const BATCH: u32 = 100;
    let mut done = 0;
    loop {
        if app.is_draining() {
            return Ok(done);
        }
        let stale = app.store.stale_results(app.policy_digest(), BATCH).await?;
        if stale.is_empty() {
            return Ok(done);
        }
        let n = stale.len();
        for old in stale {
            match reevaluate(app, &old) {
                Ok((record, verdict)) => {
                    app.store.put_result(&record).await?;
                    app.metrics.verdict(&record.decision);
                    if record.decision != old.decision {
                        tracing::info!(
                            digest = %record.manifest_digest,
                            from = %old.decision,
                            to = %record.decision,
                            "verdict changed under the new policy bundle"
                        );
                    }
                    crate::notify::verdict(app, &record, &verdict, None, true).await;
                }
                Err(e) => {
                    // A report Gantry cannot read back is skipped, not fatal: the next push of
                    // the image scans it afresh.
                    tracing::warn!(digest = %old.manifest_digest, error = %e, "cannot re-evaluate stored facts");
                    continue;
                }
            }
            done += 1;
        }
        if n < BATCH as usize {
            return Ok(done);
        }
    }
}

fn reevaluate(
    app: &App,
    old: &StoredVerdict,
) -> Result<(ResultRecord, Verdict), serde_json::Error> {
    let mut input: Value = serde_json::from_str(&old.report_json)?;
    let Some(object) = input.as_object_mut() else {
        return Err(serde::de::Error::custom("stored report is not an object"));
    };
    // The report is the input document plus what the old policy concluded.
    object.remove("findings");
    object.remove("verdict");
    let mode = object
        .get("context")
        .and_then(|c| c.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("webhook")
        .to_string();
    object.insert(
        "context".to_string(),
        json!({"now": gantry_sbom::now(), "mode": mode}),
    );
    let verdict = app.policy().evaluate(&input);
    let findings: Vec<_> = verdict
        .violations
        .iter()
        .chain(&verdict.warnings)
        .cloned()
        .collect();
    if let Some(object) = input.as_object_mut() {
        object.insert("findings".to_string(), serde_json::to_value(&findings)?);
        object.insert("verdict".to_string(), serde_json::to_value(&verdict)?);
    }
    let record = ResultRecord {
        manifest_digest: old.manifest_digest.clone(),
        policy_digest: app.policy_digest().to_string(),
        verdict_json: serde_json::to_string(&verdict)?,
        report_json: serde_json::to_string(&input)?,
        sbom_json: None,
        decision: decision_str(&verdict),
        repository: old.repository.clone(),
        tags: Vec::new(),
    };
    Ok((record, verdict))
}
