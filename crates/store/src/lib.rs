//! gantry-store: what Gantry keeps between runs.
//!
//! Two parts:
//!
//! - [`DirLayerCache`], the per-layer result cache: one JSON file per (analyzer fingerprint,
//!   layer digest) under a cache directory. Layer blobs are immutable and content-addressed, so
//!   entries never go stale, and several processes (CLI runs in parallel CI jobs, a server's
//!   workers) can share the directory without a lock: writes go to a temp file and are renamed
//!   into place, so a reader sees a whole entry or none. A corrupt or truncated entry is a miss:
//!   it is removed and the layer is walked again.
//! - [`Store`], the database of `gantry serve`: the durable job queue ([`Store::enqueue`],
//!   [`Store::claim`], [`Store::resolve_digest`], [`Store::complete`], [`Store::fail`],
//!   [`Store::release`]), the reports (facts), SBOMs and tags per image and the verdicts per
//!   (image, bundle, reference, mode) ([`Store::put_scan`], [`Store::put_verdict`],
//!   [`Store::report`], [`Store::verdict`], [`Store::sbom`], [`Store::images`],
//!   [`Store::stale_verdicts`]), each read narrowed to what the caller may see
//!   ([`Visibility`]: images pulled with a namespace's pull secret are that namespace's), and the
//!   outbox of notifications to send ([`Store::enqueue_notification`],
//!   [`Store::claim_notification`]). SQLite (one file, the default) or Postgres (several
//!   replicas) through `sqlx`, same SQL for both; the schema is embedded and migrated on open.
//!
//! The queue delivers at least once: a job is leased to one worker at a time, and a worker that
//! dies loses its lease, after which another worker takes the job again — up to the attempt
//! limit, so an image that crashes every worker ends `failed`. A digest has at most one queued or
//! running job per policy bundle (a unique index), so it is never scanned twice at once.
//! Notifications are leased and retried the same way.
//!
//! ```
//! use gantry_store::DirLayerCache;
//! let dir = tempfile::tempdir().unwrap();
//! let cache = DirLayerCache::new(dir.path());
//! assert_eq!(cache.root(), dir.path());
//! ```

mod bases;
mod db;
mod error;
mod jobs;
mod layer_cache;
mod notifications;
mod prune;
mod results;

pub use bases::{BaseCheck, BaseState, RecordedBase};
pub use db::{MAX_DOCUMENT_BYTES, Store};
pub use error::{StoreError, redact_url};
pub use jobs::{
    DigestOutcome, Enqueued, FailOutcome, Job, JobSpec, JobStatus, JobView, QueueCounts,
    RetryPolicy,
};
pub use layer_cache::{DirLayerCache, default_cache_dir};
pub use notifications::{Notification, NotificationCounts};
pub use prune::{Pruned, PrunedResults};
pub use results::{
    ImageCursor, ImagePage, ImageSummary, ReportRecord, Scope, StaleVerdict, StoredReport,
    StoredVerdict, VerdictKey, VerdictRecord, Visibility,
};
