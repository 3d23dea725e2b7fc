use gantry_analyze::LayerReport;
use gantry_model::Digest;
use serde::{Deserialize, Serialize};

/// What the walk measured of one layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStats {
    /// Digest of the blob as stored (verified).
    pub digest: Digest,
    /// Digest of the uncompressed tar (computed while walking).
    pub diff_id: Digest,
    /// Bytes of the blob as stored.
    pub compressed_size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Tar entries, whiteouts included.
    pub entries: u64,
}

/// A layer's walk result, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    /// Sizes and digests.
    pub stats: WalkStats,
    /// Files, whiteouts and analyzer output.
    pub report: LayerReport,
}

/// Per-layer result cache keyed by (layer digest, analyzer fingerprint).
///
/// Layer blobs are content-addressed and immutable, so an entry never goes stale; a changed
/// analyzer set has another fingerprint. Implementations must treat an unreadable or corrupt
/// entry as a miss (the layer is walked again), and a failed write as a warning: the cache can
/// only make scans faster, never make them fail.
pub trait LayerCache: Send + Sync + std::fmt::Debug {
    /// The cached result, if present and intact.
    fn get(&self, fingerprint: &str, layer: &Digest) -> Option<CachedLayer>;
    /// Stores a result.
    fn put(&self, fingerprint: &str, layer: &Digest, value: &CachedLayer);
}
