//! "The verdict for this reference": resolve it to a platform image digest, answer from the
//! store, or queue a scan and wait for it. Shared by `POST /v1/scan` and admission.
//!
//! Concurrent callers asking for one digest share one scan: the store keeps one active job per
//! (digest, policy bundle) and everyone waits on that job — on any replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry_model::oci::DocumentKind;
use gantry_model::{Digest, ImageRef, Platform};
use gantry_registry::RegistryError;
use gantry_store::{JobSpec, JobStatus, StoreError, StoredVerdict};

use crate::app::App;
use crate::judge;

/// How often a waiter re-reads its job when no local worker signals (the job may run on
/// another replica).
const POLL: Duration = Duration::from_millis(200);

/// Most remembered resolutions; the map is cleared when full (a cache, not a record).
const MAX_RESOLUTIONS: usize = 10_000;

/// Why no verdict could be had.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The scan job failed for good.
    #[error("scan failed: {0}")]
    Failed(String),
    /// A done job left no verdict (another bundle took over meanwhile, or a bug).
    #[error("job {job} is done but no verdict is stored for {digest}")]
    Missing { job: i64, digest: String },
}

/// Where a lookup stands.
#[derive(Debug)]
pub enum Lookup {
    /// A verdict under the current bundle is stored.
    Known(StoredVerdict),
    /// A scan job is queued or running.
    Pending { digest: String, job_id: i64 },
}

/// Remembered reference → platform-image digest resolutions.
#[derive(Debug, Default)]
pub struct Resolutions {
    map: Mutex<HashMap<(String, String), (Digest, Instant)>>,
}

impl Resolutions {
    fn get(&self, key: &(String, String), ttl: Option<Duration>) -> Option<Digest> {
        let map = self.map.lock().ok()?;
        let (digest, at) = map.get(key)?;
        match ttl {
            // Resolutions of a digest never change.
            None => Some(digest.clone()),
            Some(ttl) if at.elapsed() < ttl => Some(digest.clone()),
            Some(_) => None,
        }
    }

    fn put(&self, key: (String, String), digest: Digest) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_RESOLUTIONS {
                map.clear();
            }
            map.insert(key, (digest, Instant::now()));
        }
    }
}

/// Verdicts recently read or written by this process, by (digest, policy bundle): admission
/// asks for the same few images thousands of times, and a verdict for a pair does not change
/// except by a new scan of the same bytes under the same rules.
#[derive(Debug, Default)]
pub struct Verdicts {
    map: Mutex<HashMap<(String, String), StoredVerdict>>,
}

impl Verdicts {
    fn get(&self, digest: &str, policy: &str) -> Option<StoredVerdict> {
        let map = self.map.lock().ok()?;
        map.get(&(digest.to_string(), policy.to_string())).cloned()
    }

    /// Remembers `v` (also called by the worker when it stores a result).
    pub fn put(&self, v: &StoredVerdict) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_RESOLUTIONS {
                map.clear();
            }
            map.insert(
                (v.manifest_digest.clone(), v.policy_digest.clone()),
                v.clone(),
            );
        }
    }
}

/// The stored verdict for `digest` under the current bundle, from memory or the store.
pub async fn stored_verdict(app: &App, digest: &str) -> Result<Option<StoredVerdict>, StoreError> {
    if let Some(v) = app.verdicts.get(digest, app.policy_digest()) {
        return Ok(Some(v));
    }
    let found = app.store.verdict(digest, app.policy_digest()).await?;
    if let Some(v) = &found {
        app.verdicts.put(v);
    }
    Ok(found)
}

/// The manifest digest of `reference` for `platform`. `tag_ttl` allows reusing a tag's
/// resolution that young (admission: many pods, one tag); a reference by digest is resolved
/// once per process.
pub async fn resolve(
    app: &App,
    reference: &ImageRef,
    platform: &Platform,
    tag_ttl: Duration,
) -> Result<Digest, RegistryError> {
    let key = (reference.to_string(), platform.to_string());
    let ttl = if reference.digest().is_some() {
        None
    } else {
        Some(tag_ttl)
    };
    if ttl != Some(Duration::ZERO)
        && let Some(d) = app.resolutions.get(&key, ttl)
    {
        return Ok(d);
    }
    let source = judge::open(app, reference).await?;
    let root = source.root().await?;
    let digest = match root.kind {
        DocumentKind::Manifest => root.digest.clone(),
        DocumentKind::Index => {
            gantry_registry::resolve_one(source.as_ref(), Some(platform))
                .await?
                .manifest_digest
        }
    };
    app.resolutions.put(key, digest.clone());
    Ok(digest)
}

/// The stored verdict of `reference`, or the job that will produce it (queued now if needed).
pub async fn lookup(
    app: &App,
    reference: &ImageRef,
    platform: &Platform,
    tag_ttl: Duration,
    source: &str,
) -> Result<Lookup, LookupError> {
    let digest = resolve(app, reference, platform, tag_ttl).await?;
    let digest_text = digest.to_string();
    if let Some(v) = stored_verdict(app, &digest_text).await? {
        return Ok(Lookup::Known(v));
    }
    if let Some(tag) = reference.tag() {
        app.store
            .add_tag(&reference.name(), tag, &digest_text)
            .await?;
    }
    let enqueued = app
        .store
        .enqueue(JobSpec {
            image_ref: reference.with_digest(digest).to_string(),
            digest: Some(digest_text.clone()),
            event_id: None,
            source: source.to_string(),
            policy_digest: app.policy_digest().to_string(),
        })
        .await?;
    app.work.notify_waiters();
    Ok(Lookup::Pending {
        digest: digest_text,
        job_id: enqueued.id,
    })
}

/// Waits for the job to finish (woken by local workers; polling for other replicas').
pub async fn wait(app: &App, job_id: i64, digest: &str) -> Result<StoredVerdict, LookupError> {
    loop {
        // Registered before reading the job, so a completion in between is not missed.
        let finished = app.finished.notified();
        let job = app.store.job(job_id).await?;
        match job.as_ref().map(|j| j.status) {
            Some(JobStatus::Done) | None => {
                // A done job can be an index or a duplicate: the verdict is what counts.
                return stored_verdict(app, digest)
                    .await?
                    .ok_or_else(|| LookupError::Missing {
                        job: job_id,
                        digest: digest.to_string(),
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
