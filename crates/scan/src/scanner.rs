use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gantry_analyze::{
    AnalyzerSet, Budget, CapExceeded, Caps, DispatchError, Filesystem, ImageTally, LayerReport,
    MemoryBudget, squash_within,
};
use gantry_layer::{EntrySink, LayerError, LayerSpec, Limits, walk_layer};
use gantry_model::Digest;
use gantry_model::fs::{FileEntry, Whiteout};
use gantry_model::oci::{Descriptor, LayerKind};
use gantry_registry::{ImageSource, RegistryError, ResolvedImage};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;

use crate::{CachedLayer, LayerCache, WalkStats};

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Layers walked at once. Decompression is CPU-bound, so the default is the number of
    /// CPUs (at least 2, so one layer's network wait overlaps another's inflate); each walk
    /// holds only bounded buffers, so memory grows with this number, not with layer sizes.
    pub parallel_layers: usize,
    /// Hostile-input limits applied to every layer, and the record caps and memory budget
    /// of what the analyzers keep (docs/limits.md).
    pub limits: Limits,
}

impl Default for ScanOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        ScanOptions {
            parallel_layers: cpus.max(2),
            limits: Limits::default(),
        }
    }
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Fetching from the image source failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Walking a layer failed (its message names the layer).
    #[error("layer {index} could not be walked")]
    Layer {
        /// Layer index (0 = base).
        index: usize,
        /// What went wrong.
        #[source]
        source: LayerError,
    },
    /// A cached layer's real diff ID differs from what this image's config claims.
    #[error(
        "layer {index} ({layer}): config claims diff_id {expected} but the layer's uncompressed digest is {actual}"
    )]
    DiffIdMismatch {
        /// Layer index.
        index: usize,
        /// Layer digest.
        layer: Digest,
        /// From the config.
        expected: Digest,
        /// Measured.
        actual: Digest,
    },
    /// A layer (or the image's layers together) holds more packages, file records or
    /// findings than a cap allows. The same image is refused every time: not transient.
    #[error("layer {index} ({layer}){}: over a record cap", path.as_deref().map(|p| format!(", at {p}")).unwrap_or_default())]
    LimitExceeded {
        /// Layer index (0 = base).
        index: usize,
        /// Layer digest.
        layer: Digest,
        /// The entry being read when the cap was crossed (none for a cached layer).
        path: Option<String>,
        /// The cap, its name and value.
        #[source]
        source: CapExceeded,
    },
    /// The analyzer set could not be compiled (a bug in an analyzer).
    #[error(transparent)]
    Analyzers(#[from] DispatchError),
    /// The scan was stopped before this layer was walked.
    #[error("layer {index}: scan cancelled")]
    Cancelled {
        /// Layer index.
        index: usize,
    },
    /// A layer task panicked or was cancelled.
    #[error("layer {index}: analysis task failed")]
    Task {
        /// Layer index.
        index: usize,
        /// Join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Where a layer's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerSource {
    /// Streamed and walked in this scan.
    Walked,
    /// Taken from the layer cache.
    Cached,
    /// Not walked: its media type is foreign or unknown (see `LayerResult::skipped`).
    Skipped,
}

/// One layer of a scan.
#[derive(Debug, Clone, Serialize)]
pub struct LayerResult {
    /// Position in the manifest (0 = base).
    pub index: usize,
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// Where the result came from.
    pub source: LayerSource,
    /// Why the layer was not walked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Walk result (absent when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<CachedLayer>,
}

/// Everything a scan learnt about one image.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// Layers in manifest order.
    pub layers: Vec<LayerResult>,
    /// The squashed view. Incomplete when a layer was skipped (`complete` is false).
    pub filesystem: Filesystem,
    /// False when some layer could not be walked.
    pub complete: bool,
    /// Analyzer fingerprint the results were produced under.
    pub fingerprint: String,
}

/// Scans images; holds the compiled analyzer set and the cache, so build one and reuse it.
#[derive(Debug, Clone)]
pub struct Scanner {
    options: ScanOptions,
    analyzers: Arc<AnalyzerSet>,
    cache: Option<Arc<dyn LayerCache>>,
    /// The analyzers' large buffers, shared by every walk of this scanner and its clones.
    memory: Arc<MemoryBudget>,
}

impl Scanner {
    /// A scanner with the built-in analyzers.
    pub fn new(
        options: ScanOptions,
        cache: Option<Arc<dyn LayerCache>>,
    ) -> Result<Scanner, ScanError> {
        Ok(Scanner {
            memory: MemoryBudget::new(options.limits.analyzer_memory_bytes),
            options,
            analyzers: Arc::new(AnalyzerSet::builtin()?),
            cache,
        })
    }

    /// The analyzer fingerprint (part of every cache key).
    pub fn fingerprint(&self) -> &str {
        self.analyzers.fingerprint()
    }

    /// Scans `image`, reading its layer blobs from `source`.
    pub async fn scan(
        &self,
        source: &Arc<dyn ImageSource>,
        image: &ResolvedImage,
    ) -> Result<ScanReport, ScanError> {
        let layers = &image.manifest.layers;
        let diff_ids = &image.config.rootfs.diff_ids;
        let semaphore = Arc::new(Semaphore::new(self.options.parallel_layers.max(1)));
        let caps = Caps::from_limits(&self.options.limits);
        let tally = ImageTally::new();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut results: Vec<Option<LayerResult>> = vec![None; layers.len()];
        let mut tasks = JoinSet::new();
        let mut task_index = std::collections::HashMap::new();

        for (index, desc) in layers.iter().enumerate() {
            let expected_diff_id = diff_ids.get(index).cloned();
            let compression = match LayerKind::of(&desc.media_type) {
                LayerKind::Tar(c) => c,
                LayerKind::Foreign(_) => {
                    results[index] = Some(skipped(
                        index,
                        desc,
                        "foreign (non-distributable) layer: not walked",
                    ));
                    continue;
                }
                LayerKind::Unknown => {
                    let why = format!("unknown layer media type {:?}: not walked", desc.media_type);
                    results[index] = Some(skipped(index, desc, &why));
                    continue;
                }
            };
            if let Some(hit) = self.cache_get(&desc.digest) {
                if let Err(source) = tally.charge_report(&caps, &hit.report) {
                    return Err(ScanError::LimitExceeded {
                        index,
                        layer: desc.digest.clone(),
                        path: None,
                        source,
                    });
                }
                if let Some(expected) = &expected_diff_id
                    && *expected != hit.stats.diff_id
                {
                    return Err(ScanError::DiffIdMismatch {
                        index,
                        layer: desc.digest.clone(),
                        expected: expected.clone(),
                        actual: hit.stats.diff_id,
                    });
                }
                results[index] = Some(LayerResult {
                    index,
                    descriptor: desc.clone(),
                    source: LayerSource::Cached,
                    skipped: None,
                    layer: Some(hit),
                });
                continue;
            }
            let spec = LayerSpec {
                digest: desc.digest.clone(),
                diff_id: expected_diff_id,
                compression,
            };
            let job = LayerJob {
                index,
                desc: desc.clone(),
                spec,
                source: Arc::clone(source),
                analyzers: Arc::clone(&self.analyzers),
                budget: Budget::new(caps, Arc::clone(&tally)),
                memory: Arc::clone(&self.memory),
                limits: self.options.limits,
                semaphore: Arc::clone(&semaphore),
                cancel: Arc::clone(&cancel),
            };
            let handle = tasks.spawn(async move { (index, job.run().await) });
            task_index.insert(handle.id(), index);
        }

        while let Some(joined) = tasks.join_next().await {
            let (index, outcome) = match joined {
                Ok(v) => v,
                Err(source) => {
                    cancel.store(true, Ordering::Relaxed);
                    let index = task_index.get(&source.id()).copied().unwrap_or(usize::MAX);
                    return Err(ScanError::Task { index, source });
                }
            };
            match outcome {
                Ok(layer) => {
                    if let Some(cache) = &self.cache {
                        cache.put(self.analyzers.fingerprint(), &layer.stats.digest, &layer);
                    }
                    results[index] = Some(LayerResult {
                        index,
                        descriptor: layers[index].clone(),
                        source: LayerSource::Walked,
                        skipped: None,
                        layer: Some(layer),
                    });
                }
                Err(e) => {
                    // Stop the other walks at their next entry; dropping the JoinSet aborts
                    // the tasks still waiting for a permit or a blob.
                    cancel.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }

        let results: Vec<LayerResult> = results.into_iter().flatten().collect();
        let complete = results.iter().all(|r| r.layer.is_some());
        // A skipped layer squashes as an empty one, so layer indexes in the filesystem stay
        // manifest indexes.
        let nothing = LayerReport::default();
        let filesystem = squash_within(
            results
                .iter()
                .map(|r| r.layer.as_ref().map_or(&nothing, |l| &l.report)),
            &caps,
        )
        .map_err(|(index, source)| ScanError::LimitExceeded {
            index,
            layer: layers[index].digest.clone(),
            path: None,
            source,
        })?;
        Ok(ScanReport {
            layers: results,
            filesystem,
            complete,
            fingerprint: self.analyzers.fingerprint().to_string(),
        })
    }

    fn cache_get(&self, digest: &Digest) -> Option<CachedLayer> {
        self.cache
            .as_ref()?
            .get(self.analyzers.fingerprint(), digest)
    }
}

fn skipped(index: usize, desc: &Descriptor, why: &str) -> LayerResult {
    LayerResult {
        index,
        descriptor: desc.clone(),
        source: LayerSource::Skipped,
        skipped: Some(why.to_string()),
        layer: None,
    }
}

/// One layer walk, owned by its task.
struct LayerJob {
    index: usize,
    desc: Descriptor,
    spec: LayerSpec,
    source: Arc<dyn ImageSource>,
    analyzers: Arc<AnalyzerSet>,
    budget: Budget,
    memory: Arc<MemoryBudget>,
    limits: Limits,
    semaphore: Arc<Semaphore>,
    cancel: Arc<AtomicBool>,
}

impl LayerJob {
    async fn run(self) -> Result<CachedLayer, ScanError> {
        let index = self.index;
        // The permit is held for the whole walk: it bounds concurrent blob streams and CPUs.
        let Ok(_permit) = self.semaphore.acquire_owned().await else {
            return Err(ScanError::Cancelled { index });
        };
        let blob = self.source.blob(&self.desc).await?;
        let LayerJob {
            desc,
            spec,
            analyzers,
            budget,
            memory,
            limits,
            cancel,
            ..
        } = self;
        // The one place async meets sync: the blocking pool runs inflate and the tar walk
        // while SyncIoBridge pulls bytes from the async blob stream.
        let walked = tokio::task::spawn_blocking(move || {
            let reader = SyncIoBridge::new(blob);
            let mut dispatcher = analyzers.dispatcher_with(budget, Some(memory));
            let mut sink = CancellableSink {
                inner: &mut dispatcher,
                cancel: &cancel,
            };
            let walk = walk_layer(reader, &spec, &limits, &mut sink)?;
            let report: LayerReport = dispatcher.finish();
            Ok::<_, LayerError>(CachedLayer {
                stats: WalkStats {
                    digest: walk.digest,
                    diff_id: walk.diff_id,
                    compressed_size: walk.compressed_size,
                    uncompressed_size: walk.uncompressed_size,
                    entries: walk.entries,
                },
                report,
            })
        })
        .await
        .map_err(|source| ScanError::Task { index, source })?;
        walked.map_err(|source| layer_error(index, &desc.digest, source))
    }
}

/// A walk's failure; a record cap crossed by the dispatcher is lifted out of the sink error
/// into [`ScanError::LimitExceeded`].
fn layer_error(index: usize, layer: &Digest, source: LayerError) -> ScanError {
    if let LayerError::Sink {
        path, source: io, ..
    } = &source
        && let Some(cap) = io.get_ref().and_then(|e| e.downcast_ref::<CapExceeded>())
    {
        return ScanError::LimitExceeded {
            index,
            layer: layer.clone(),
            path: Some(path.clone()),
            source: cap.clone(),
        };
    }
    ScanError::Layer { index, source }
}

/// Forwards to the dispatcher until another layer failed, then stops this walk early.
struct CancellableSink<'a, 'b> {
    inner: &'a mut gantry_analyze::LayerDispatcher<'b>,
    cancel: &'a AtomicBool,
}

impl CancellableSink<'_, '_> {
    fn check(&self) -> std::io::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "scan cancelled: another layer failed",
            ));
        }
        Ok(())
    }
}

impl EntrySink for CancellableSink<'_, '_> {
    fn file(&mut self, entry: &FileEntry, body: &mut dyn Read) -> std::io::Result<()> {
        self.check()?;
        self.inner.file(entry, body)
    }

    fn whiteout(&mut self, whiteout: &Whiteout) -> std::io::Result<()> {
        self.check()?;
        self.inner.whiteout(whiteout)
    }
}
