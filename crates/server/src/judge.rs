//! One job, start to finish: pull the image with the credentials of its scope, scan and judge
//! it (through gantry-gate, as the CLI does), build its SBOM, store facts and verdict; and
//! judging stored facts again — under another name, for another kind of caller, after an
//! exception expired or the policy bundle changed — without pulling anything.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gantry_gate::{BaseFreshness, Checked, Context};
use gantry_model::oci::DocumentKind;
use gantry_model::{Digest, ImageRef, Verdict};
use gantry_registry::{ImageSource, RegistryError, SourceRef};
use gantry_sbom::{SbomInput, SpecVersion};
use gantry_scan::LayerSource;
use gantry_store::{
    DigestOutcome, Job, JobSpec, RecordedBase, ReportRecord, Scope, StoreError, StoredReport,
    VerdictKey, VerdictRecord, Visibility,
};
use serde_json::Value;

use crate::app::App;

/// Why a job's attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job names something that can never be pulled (retrying cannot help).
    #[error("invalid image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    /// Registry or scan failure.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The scan or the input document failed.
    #[error(transparent)]
    Gate(#[from] gantry_gate::GateError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The namespace's pull secrets could not be read, or hold nothing for the registry.
    #[error(transparent)]
    PullSecrets(#[from] crate::admission::pull_secrets::PullSecretError),
    /// The SBOM could not be rendered (a bug).
    #[error("rendering the SBOM")]
    Sbom(#[from] gantry_sbom::SbomError),
    /// A document could not be serialised or read back (a bug, or a report from a Gantry
    /// this version cannot read).
    #[error("serialising or reading back the result")]
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
            JobError::PullSecrets(e) => e.is_transient(),
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

/// Who asks for a verdict: the policy input's `context.mode`, and part of a verdict's key
/// (a bundle may judge an admission differently from a registry push).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A registry push (any webhook sender).
    Webhook,
    /// `POST /v1/scan`.
    Api,
    /// A Kubernetes admission review.
    Admission,
}

impl Mode {
    /// The name in the policy input and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Webhook => "webhook",
            Mode::Api => "api",
            Mode::Admission => "admission",
        }
    }

    /// The mode of a job that came from `source` (a sender's name, `api` or `admission`).
    pub fn of_source(source: &str) -> Mode {
        match source {
            "api" => Mode::Api,
            "admission" => Mode::Admission,
            _ => Mode::Webhook,
        }
    }
}

/// Whose credentials pull an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pull {
    /// Anonymous, or Gantry's own configured credentials for the registry.
    Public,
    /// A namespace's pull secrets (names; the worker reads them from the Kubernetes API).
    Namespace {
        namespace: String,
        secrets: Vec<String>,
    },
}

impl Pull {
    /// The store scope of what this pull produces.
    pub fn scope(&self) -> Scope {
        match self {
            Pull::Public => Scope::Public,
            Pull::Namespace { namespace, .. } => Scope::Namespace(namespace.clone()),
        }
    }

    fn of_job(spec: &JobSpec) -> Pull {
        match &spec.scope {
            Scope::Public => Pull::Public,
            Scope::Namespace(ns) => Pull::Namespace {
                namespace: ns.clone(),
                secrets: spec.pull_secrets.clone(),
            },
        }
    }
}

/// What a finished attempt did.
#[derive(Debug)]
pub enum JobOutcome {
    /// Scanned and judged; the result is stored.
    Judged { digest: String, decision: String },
    /// An index: one job per platform image was queued.
    Index { children: Vec<i64> },
    /// The tag resolved to a digest already queued or scanned; the store closed this job.
    Duplicate,
}

/// The name a verdict is keyed by: `registry/repository[:tag]`, without the digest — what
/// rules and exceptions match image names against.
pub fn verdict_reference(reference: &ImageRef) -> String {
    match reference.tag() {
        Some(tag) => format!("{}:{tag}", reference.name()),
        None => reference.name(),
    }
}

/// The key of the verdict for `reference` at `digest`, asked by `mode`, under the current
/// bundle.
pub fn verdict_key(app: &App, reference: &ImageRef, digest: &Digest, mode: Mode) -> VerdictKey {
    VerdictKey {
        manifest_digest: digest.to_string(),
        policy_digest: app.policy_digest().to_string(),
        reference: verdict_reference(reference),
        mode: mode.as_str().to_string(),
    }
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

/// Opens the registry source of `target` with the credentials of `pull`: Gantry's own for its
/// registry, or those the namespace's pull secrets hold for it.
pub async fn open(
    app: &App,
    target: &ImageRef,
    pull: &Pull,
) -> Result<Arc<dyn ImageSource>, JobError> {
    let mut options = app.settings.registry.options_for(target.registry());
    if let Pull::Namespace { namespace, secrets } = pull {
        options.credentials = Some(
            app.pull_secrets
                .credentials(namespace, secrets, target.registry())
                .await?,
        );
    }
    Ok(gantry_registry::open(&SourceRef::Registry(target.clone()), &options).await?)
}

/// Runs one attempt of `job` as `worker`. On success the job is complete in the store.
pub async fn run(app: &App, job: &Job, worker: &str) -> Result<JobOutcome, JobError> {
    let spec = &job.spec;
    let pull = Pull::of_job(spec);
    let (reference, mut target) = reference_of(spec)?;
    let source = open(app, &target, &pull).await?;
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
                    scope: spec.scope.clone(),
                    pull_secrets: spec.pull_secrets.clone(),
                })
                .await?;
            children.push(child.id);
        }
        app.store.complete(job.id, worker).await?;
        app.work.notify_waiters();
        return Ok(JobOutcome::Index { children });
    }

    let started = Instant::now();
    let mode = Mode::of_source(&spec.source);
    let judged = scan(app, &source, &reference, &target, mode, &pull).await;
    app.metrics
        .scan(started.elapsed().as_secs_f64(), judged.is_ok());
    let (checked, report, verdict) = judged?;
    app.store.put_scan(&report, &verdict).await?;
    crate::notify::verdict(
        app,
        &verdict,
        &report.repository,
        &report.tags,
        &checked.report.verdict,
        Some(job.id),
        false,
    )
    .await;
    app.store.complete(job.id, worker).await?;
    let hits = count_layers(&checked, LayerSource::Cached);
    let misses = count_layers(&checked, LayerSource::Walked);
    app.metrics.cache(hits, misses);
    app.metrics.verdict(&verdict.decision);
    Ok(JobOutcome::Judged {
        digest: verdict.key.manifest_digest,
        decision: verdict.decision,
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

/// Scans and judges `target`; the report (the facts, without context) and first verdict.
async fn scan(
    app: &App,
    source: &Arc<dyn ImageSource>,
    reference: &ImageRef,
    target: &ImageRef,
    mode: Mode,
    pull: &Pull,
) -> Result<(Checked, ReportRecord, VerdictRecord), JobError> {
    let image = gantry_registry::resolve_one(source.as_ref(), None).await?;
    let context = Context {
        now: gantry_model::time::now(),
        mode: mode.as_str().to_string(),
        base: None,
    };
    let mut checked = app
        .gate
        .check(source, &target.to_string(), &image, context)
        .await?;
    let sbom = SbomInput::from_checked(&checked, env!("CARGO_PKG_VERSION"));
    if !sbom.complete {
        tracing::warn!(image = %target, "some layers could not be walked: the SBOM is incomplete");
    }
    let sbom_json = gantry_sbom::to_json(&gantry_sbom::cyclonedx(&sbom, SpecVersion::V1_6))?;
    let mut facts = serde_json::to_value(&checked.report.input)?;
    if let Some(object) = facts.as_object_mut() {
        object.remove("context");
    }
    let key = VerdictKey {
        manifest_digest: image.manifest_digest.to_string(),
        policy_digest: app.policy_digest().to_string(),
        reference: verdict_reference(reference),
        mode: mode.as_str().to_string(),
    };
    let base = recorded_base(&checked.report.input.facts.base);
    // What an earlier check saw the base's tag point at counts from the first verdict on: the
    // check ran for another image built on the same base.
    let (context, outdated_since_ms) = base_context(app, base.as_ref()).await?;
    if context.is_some() {
        checked.report.verdict = judge_facts(app, facts.clone(), &key, context).await?;
    }
    let report = ReportRecord {
        manifest_digest: key.manifest_digest.clone(),
        report_json: serde_json::to_string(&facts)?,
        sbom_json: Some(sbom_json),
        repository: target.name(),
        tags: target.tag().map(str::to_string).into_iter().collect(),
        scope: pull.scope(),
        base,
        base_outdated_since_ms: outdated_since_ms,
    };
    let record = verdict_record(app, key, &checked.report.verdict)?;
    Ok((checked, report, record))
}

/// The base tag and digest an image records, when it records both (nothing to check else).
pub fn recorded_base(base: &gantry_gate::BaseFacts) -> Option<RecordedBase> {
    if base.scratch {
        return None;
    }
    let (repository, tag, digest) = (
        base.repository.as_ref()?,
        base.tag.as_ref()?,
        base.digest.as_ref()?,
    );
    Some(RecordedBase {
        reference: format!("{repository}:{tag}"),
        digest: digest.clone(),
    })
}

/// `input.context.base` for an image recording `base`, when base checks are on and its tag
/// was checked; with the stored form of its outdated-since time.
async fn base_context(
    app: &App,
    base: Option<&RecordedBase>,
) -> Result<(Option<BaseFreshness>, Option<i64>), StoreError> {
    let (Some(base), Some(_)) = (base, app.settings.base_freshness) else {
        return Ok((None, None));
    };
    let Some(state) = app.store.base_state(base).await? else {
        return Ok((None, None));
    };
    let at = gantry_model::time::rfc3339_millis;
    let since = state.outdated_since_ms;
    let context = BaseFreshness {
        reference: state.reference,
        recorded_digest: state.recorded_digest,
        current_digest: state.current_digest,
        checked_at: at(state.checked_at_ms),
        outdated: since.is_some(),
        outdated_since: since.map(at),
    };
    Ok((Some(context), since))
}

/// Judges `facts` (a stored report: the input document without context) again for `key`
/// (its reference and mode), now, through the gate like every judgement.
async fn judge_facts(
    app: &App,
    facts: Value,
    key: &VerdictKey,
    base: Option<BaseFreshness>,
) -> Result<Verdict, JobError> {
    let context = Context {
        now: gantry_model::time::now(),
        mode: key.mode.clone(),
        base,
    };
    let named = format!("{}@{}", key.reference, key.manifest_digest);
    Ok(app.gate.rejudge(facts, &named, context).await?)
}

fn verdict_record(
    app: &App,
    key: VerdictKey,
    verdict: &Verdict,
) -> Result<VerdictRecord, JobError> {
    Ok(VerdictRecord {
        verdict_json: serde_json::to_string(verdict)?,
        decision: decision_str(verdict),
        valid_until_ms: Some(valid_until_ms(verdict, now_ms(), app.settings.verdict_ttl)),
        key,
    })
}

/// `"allow"` or `"deny"`, as serialised.
pub fn decision_str(verdict: &Verdict) -> String {
    match serde_json::to_value(verdict.decision) {
        Ok(Value::String(s)) => s,
        _ => "deny".to_string(),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Until when `verdict` holds: the earliest expiry of an exception it relied on (the waived
/// findings count again after it), and at most `ttl` from `now` (rules may read the time).
pub fn valid_until_ms(verdict: &Verdict, now: i64, ttl: Duration) -> i64 {
    let cap = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    verdict
        .waived
        .iter()
        .filter_map(|w| expiry_ms(&w.expires))
        .fold(cap, i64::min)
}

/// When an exception stops applying, as the built-in bundle reads `expires`: a date lasts to
/// the end of that day (UTC), a time is the instant itself. `None` for anything else (the
/// bundle reports such an exception as invalid, so it waived nothing).
fn expiry_ms(expires: &str) -> Option<i64> {
    let t = expires.trim();
    let at = if t.len() == 10 {
        humantime::parse_rfc3339(&format!("{t}T00:00:00Z"))
            .ok()?
            .checked_add(Duration::from_secs(24 * 3600))?
    } else {
        humantime::parse_rfc3339_weak(t).ok()?
    };
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// Evaluates the current bundle over a stored report for `key` (its reference and mode), now:
/// no registry access, no layer walk. The policy runs on the blocking pool.
pub async fn rejudge(
    app: &App,
    report: &StoredReport,
    key: &VerdictKey,
) -> Result<(VerdictRecord, Verdict), JobError> {
    let facts: Value = serde_json::from_str(&report.report_json)?;
    let (base, _) = base_context(app, report.base.as_ref()).await?;
    let verdict = judge_facts(app, facts, key, base).await?;
    let record = verdict_record(app, key.clone(), &verdict)?;
    Ok((record, verdict))
}

/// Re-judges the newest verdict of every (image, reference, mode) that has none under the
/// current bundle, or whose verdict expired, from the stored facts. Returns how many were
/// re-judged. Safe to run in several replicas at once (the verdict row is the same).
pub async fn reevaluate_stale(app: &App) -> Result<usize, StoreError> {
    const BATCH: u32 = 100;
    let mut done = 0;
    // Stale verdicts come sorted by key, and each batch is a prefix of what is left: the ones
    // that could not be re-judged (an unreadable report) stay at the front, so the next batch
    // starts after them.
    let mut skipped: u32 = 0;
    loop {
        if app.is_draining() {
            return Ok(done);
        }
        let stale = app
            .store
            .stale_verdicts(app.policy_digest(), now_ms(), skipped.saturating_add(BATCH))
            .await?;
        let fetched = stale.len();
        for old in stale.into_iter().skip(skipped as usize) {
            match rejudge_stale(app, &old).await {
                Ok(()) => done += 1,
                Err(e) => {
                    // Not fatal: the next push of the image scans it afresh.
                    tracing::warn!(digest = %old.key.manifest_digest, error = %crate::error_chain(&e), "cannot re-evaluate stored facts");
                    skipped += 1;
                }
            }
        }
        if fetched < (skipped as usize).saturating_add(BATCH as usize) {
            return Ok(done);
        }
    }
}

async fn rejudge_stale(app: &App, old: &gantry_store::StaleVerdict) -> Result<(), JobError> {
    let Some(report) = app
        .store
        .report(&old.key.manifest_digest, &Visibility::everything())
        .await?
    else {
        return Err(JobError::Json(serde::de::Error::custom(
            "the verdict's report is gone",
        )));
    };
    let key = VerdictKey {
        policy_digest: app.policy_digest().to_string(),
        ..old.key.clone()
    };
    let (record, verdict) = rejudge(app, &report, &key).await?;
    app.store.put_verdict(&record).await?;
    app.verdicts.forget(&key);
    app.metrics.verdict(&record.decision);
    if record.decision != old.decision {
        tracing::info!(
            digest = %key.manifest_digest,
            reference = %key.reference,
            from = %old.decision,
            to = %record.decision,
            "verdict changed (new policy bundle or an expired exception)"
        );
    }
    // A verdict re-judged only because it aged (verdict_ttl) and came out the same under the
    // same bundle is news to nobody: receivers hear of a changed decision or a new bundle.
    if record.decision != old.decision || old.key.policy_digest != key.policy_digest {
        crate::notify::verdict(app, &record, &report.repository, &[], &verdict, None, true).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_model::{Decision, Finding, Severity, Waived};

    fn waived(expires: &str) -> Waived {
        Waived {
            finding: Finding {
                code: "root-user".into(),
                severity: Severity::Deny,
                message: "m".into(),
                location: None,
            },
            reason: "r".into(),
            expires: expires.into(),
        }
    }

    #[test]
    fn a_verdict_holds_until_its_first_exception_expires_or_the_ttl() {
        let mut v = Verdict {
            decision: Decision::Allow,
            violations: vec![],
            warnings: vec![],
            waived: vec![],
            policy_digest: "sha256:p".into(),
        };
        let now = expiry_ms("2026-12-01T00:00:00Z").unwrap();
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(valid_until_ms(&v, now, day), now + 86_400_000);
        v.waived = vec![
            waived("2026-12-01"),
            waived("2026-12-01T06:00:00Z"),
            waived("soon"),
        ];
        assert_eq!(valid_until_ms(&v, now, day), now + 6 * 3_600_000);
        // A date lasts to the end of the day.
        v.waived = vec![waived("2026-12-01")];
        assert_eq!(valid_until_ms(&v, now, day * 7), now + 86_400_000);
    }

    #[test]
    fn modes_and_reference_keys() {
        assert_eq!(Mode::of_source("admission"), Mode::Admission);
        assert_eq!(Mode::of_source("api"), Mode::Api);
        assert_eq!(Mode::of_source("quay"), Mode::Webhook);
        let r: ImageRef = "registry.example/team/app:1.4".parse().unwrap();
        assert_eq!(verdict_reference(&r), "registry.example/team/app:1.4");
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        let by_digest: ImageRef = format!("registry.example/team/app@{d}").parse().unwrap();
        assert_eq!(verdict_reference(&by_digest), "registry.example/team/app");
        assert_eq!(
            verdict_reference(&r.with_digest(d)),
            "registry.example/team/app:1.4"
        );
    }
}
