//! "The verdict for this reference": resolve it to platform image digests, answer from a stored
//! verdict or the stored facts, or queue a scan and wait for it. Shared by `POST /v1/scan` and
//! admission.
//!
//! Concurrent callers asking for one digest share one scan: the store keeps one active job per
//! (digest, policy bundle, scope) and everyone waits on that job — on any replica. A verdict
//! for a name, a mode or a bundle the image was never judged under is computed from the stored
//! facts, without a pull.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry_model::oci::DocumentKind;
use gantry_model::{Digest, ImageRef, Platform};
use gantry_registry::RegistryError;
use gantry_store::{JobSpec, JobStatus, Scope, StoreError, StoredVerdict, VerdictKey, Visibility};

use crate::app::App;
use crate::judge::{self, JobError, Mode, Pull};

/// How often a waiter re-reads its job when no local worker signals (the job may run on
/// another replica).
const POLL: Duration = Duration::from_millis(200);

/// Most remembered resolutions and verdicts; a map is cleared when full (a cache, not a
/// record).
const MAX_CACHED: usize = 10_000;

/// Why no verdict could be had.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Opening the registry or judging stored facts failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The scan job failed for good.
    #[error("scan failed: {0}")]
    Failed(String),
    /// A done job left no report (pruned meanwhile, or a bug).
    #[error("job {job} is done but no result is stored for {digest}")]
    Missing { job: i64, digest: String },
    /// The image is an index without the platforms asked for.
    #[error("{reference} offers none of the platforms {wanted}")]
    NoPlatform { reference: String, wanted: String },
}

impl LookupError {
    /// The registry error behind this one, if any.
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            LookupError::Registry(r) | LookupError::Job(JobError::Registry(r)) => Some(r),
            _ => None,
        }
    }

    /// What may be told to a caller who is not the operator (a pod's author, a team's reader
    /// token): the precise error unless it would say what answered at some host — a refused
    /// connection, a timeout, a non-registry answer — which becomes one fixed text, so the
    /// gate cannot be used to scan ports or map a network. The precise one goes to the log.
    pub fn public_message(&self) -> String {
        match self.registry() {
            Some(r) if !r.is_public() => {
                tracing::info!(error = %crate::error_chain(self), "registry failure (shown to the caller as registry-unavailable)");
                format!(
                    "{}: the registry could not be reached or did not answer as a registry",
                    r.public_code()
                )
            }
            _ => crate::error_chain(self),
        }
    }
}

/// Where a lookup stands.
#[derive(Debug)]
pub enum Lookup {
    /// A verdict holds.
    Known(Box<StoredVerdict>),
    /// A scan job is queued or running.
    Pending { job_id: i64 },
}

/// Which platform images of a reference to judge.
#[derive(Debug, Clone, Copy)]
pub enum Platforms<'a> {
    /// The one for this platform (`POST /v1/scan`).
    One(&'a Platform),
    /// Every platform an index offers, or those of the list it offers (admission: a pod may
    /// land on any node the index has an image for).
    Every(Option<&'a [Platform]>),
}

/// What a reference resolved to: the image manifest, or an index's platform images.
#[derive(Debug, Clone)]
enum Resolved {
    Manifest(Digest),
    Index(Vec<(Platform, Digest)>),
}

/// Remembered reference → digest resolutions, per scope (a namespace's credentials may see a
/// tag that Gantry's own do not, or another image under it).
#[derive(Debug, Default)]
pub struct Resolutions {
    map: Mutex<HashMap<(String, Scope), (Resolved, Instant)>>,
}

impl Resolutions {
    fn get(&self, key: &(String, Scope), ttl: Option<Duration>) -> Option<Resolved> {
        let map = self.map.lock().ok()?;
        let (resolved, at) = map.get(key)?;
        match ttl {
            // Resolutions of a digest never change.
            None => Some(resolved.clone()),
            Some(ttl) if at.elapsed() < ttl => Some(resolved.clone()),
            Some(_) => None,
        }
    }

    fn put(&self, key: (String, Scope), resolved: Resolved) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_CACHED {
                map.clear();
            }
            map.insert(key, (resolved, Instant::now()));
        }
    }
}

/// Verdicts recently read or computed by this process, with who may see their image:
/// admission asks for the same few images thousands of times.
#[derive(Debug, Default)]
pub struct Verdicts {
    map: Mutex<HashMap<VerdictKey, (StoredVerdict, Vec<Scope>)>>,
}

impl Verdicts {
    fn get(&self, key: &VerdictKey, visibility: &Visibility, now_ms: i64) -> Option<StoredVerdict> {
        let map = self.map.lock().ok()?;
        let (v, scopes) = map.get(key)?;
        (visibility.sees(scopes) && v.is_valid_at(now_ms)).then(|| v.clone())
    }

    fn put(&self, v: &StoredVerdict, scopes: Vec<Scope>) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_CACHED {
                map.clear();
            }
            map.insert(v.key.clone(), (v.clone(), scopes));
        }
    }

    /// Drops a verdict that was computed again elsewhere.
    pub fn forget(&self, key: &VerdictKey) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }
}

/// The verdict named by `key` that `visibility` may see and that holds now: from memory, the
/// store, or computed from the stored facts (and stored). `None` when the image was never
/// scanned (for that visibility).
pub async fn known_verdict(
    app: &App,
    key: &VerdictKey,
    visibility: &Visibility,
) -> Result<Option<StoredVerdict>, LookupError> {
    let now = judge::now_ms();
    if let Some(v) = app.verdicts.get(key, visibility, now) {
        return Ok(Some(v));
    }
    let Some(report) = app.store.report(&key.manifest_digest, visibility).await? else {
        return Ok(None);
    };
    if let Some(v) = app.store.verdict(key, visibility).await?
        && v.is_valid_at(now)
    {
        app.verdicts.put(&v, report.scopes.clone());
        return Ok(Some(v));
    }
    let (record, _) = judge::rejudge(app, &report, key).await?;
    app.store.put_verdict(&record).await?;
    app.metrics.verdict(&record.decision);
    let stored = app
        .store
        .verdict(key, visibility)
        .await?
        .ok_or_else(|| LookupError::Missing {
            job: 0,
            digest: key.manifest_digest.clone(),
        })?;
    app.verdicts.put(&stored, report.scopes);
    Ok(Some(stored))
}

/// The manifest digests of `reference` for `platforms`, pulled as `pull`. `tag_ttl` allows
/// reusing a tag's resolution that young (admission: many pods, one tag); a reference by
/// digest is resolved once per process.
pub async fn resolve(
    app: &App,
    reference: &ImageRef,
    platforms: Platforms<'_>,
    pull: &Pull,
    tag_ttl: Duration,
) -> Result<Vec<(Option<Platform>, Digest)>, LookupError> {
    let key = (reference.to_string(), pull.scope());
    let ttl = if reference.digest().is_some() {
        None
    } else {
        Some(tag_ttl)
    };
    let cached = match ttl {
        Some(Duration::ZERO) => None,
        _ => app.resolutions.get(&key, ttl),
    };
    let resolved = match cached {
        Some(r) => r,
        None => {
            let source = judge::open(app, reference, pull).await?;
            let root = source.root().await?;
            let resolved = match root.kind {
                DocumentKind::Manifest => Resolved::Manifest(root.digest.clone()),
                DocumentKind::Index => Resolved::Index(
                    gantry_registry::resolve_all_platforms(source.as_ref())
                        .await?
                        .into_iter()
                        .map(|i| (i.platform, i.manifest_digest))
                        .collect(),
                ),
            };
            app.resolutions.put(key, resolved.clone());
            resolved
        }
    };
    let images = match resolved {
        // A single image is judged whatever its platform: it is the only one there is.
        Resolved::Manifest(d) => vec![(None, d)],
        Resolved::Index(images) => {
            let picked: Vec<_> = images
                .into_iter()
                .filter(|(p, _)| match platforms {
                    Platforms::One(want) => want.matches(p),
                    Platforms::Every(None) => true,
                    Platforms::Every(Some(list)) => list.iter().any(|want| want.matches(p)),
                })
                .map(|(p, d)| (Some(p), d))
                .collect();
            let picked = match platforms {
                Platforms::One(_) => picked.into_iter().take(1).collect(),
                Platforms::Every(_) => picked,
            };
            if picked.is_empty() {
                return Err(LookupError::NoPlatform {
                    reference: reference.to_string(),
                    wanted: match platforms {
                        Platforms::One(p) => p.to_string(),
                        Platforms::Every(Some(list)) => list
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        Platforms::Every(None) => "(any)".to_string(),
                    },
                });
            }
            picked
        }
    };
    Ok(images)
}

/// The verdict of `reference` at `digest` for `mode`, or the job that will produce it
/// (queued now if needed, pulling as `pull`).
pub async fn lookup(
    app: &App,
    reference: &ImageRef,
    digest: &Digest,
    mode: Mode,
    pull: &Pull,
    visibility: &Visibility,
) -> Result<Lookup, LookupError> {
    let key = judge::verdict_key(app, reference, digest, mode);
    if let Some(v) = known_verdict(app, &key, visibility).await? {
        return Ok(Lookup::Known(Box::new(v)));
    }
    if let Some(tag) = reference.tag() {
        app.store
            .add_tag(&reference.name(), tag, &key.manifest_digest)
            .await?;
    }
    let (scope, pull_secrets) = match pull {
        Pull::Public => (Scope::Public, Vec::new()),
        Pull::Namespace { namespace, secrets } => {
            (Scope::Namespace(namespace.clone()), secrets.clone())
        }
    };
    let enqueued = app
        .store
        .enqueue(JobSpec {
            image_ref: reference.with_digest(digest.clone()).to_string(),
            digest: Some(key.manifest_digest.clone()),
            event_id: None,
            source: mode.as_str().to_string(),
            policy_digest: app.policy_digest().to_string(),
            scope,
            pull_secrets,
        })
        .await?;
    app.work.notify_waiters();
    // Born done: the facts were stored meanwhile (by another replica).
    if enqueued.deduplicated
        && let Some(v) = known_verdict(app, &key, visibility).await?
    {
        return Ok(Lookup::Known(Box::new(v)));
    }
    Ok(Lookup::Pending {
        job_id: enqueued.id,
    })
}

/// Waits for the job to finish (woken by local workers; polling for other replicas'), then
/// the verdict of `key` from the facts it stored.
pub async fn wait(
    app: &App,
    job_id: i64,
    key: &VerdictKey,
    visibility: &Visibility,
) -> Result<StoredVerdict, LookupError> {
    loop {
        // Registered before reading the job, so a completion in between is not missed.
        let finished = app.finished.notified();
        let job = app.store.job(job_id).await?;
        match job.as_ref().map(|j| j.status) {
            Some(JobStatus::Done) | None => {
                // A done job can be an index or a duplicate: the facts are what count.
                return known_verdict(app, key, visibility).await?.ok_or_else(|| {
                    LookupError::Missing {
                        job: job_id,
                        digest: key.manifest_digest.clone(),
                    }
                });
            }
            Some(JobStatus::Failed) => {
                return Err(LookupError::Failed(
                    job.and_then(|j| j.last_error)
                        .unwrap_or_else(|| format!("job {job_id} failed")),
                ));
            }
            Some(JobStatus::Queued | JobStatus::Running) => {
                tokio::select! {
                    () = finished => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }
}
