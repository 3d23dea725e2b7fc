//! gantry-store: what Gantry keeps between runs.
//!
//! Today that is the per-layer result cache, [`DirLayerCache`]: one JSON file per
//! (analyzer fingerprint, layer digest) under a cache directory. Layer blobs are immutable and
//! content-addressed, so entries never go stale, and several processes (CLI runs in parallel
//! CI jobs, a server's workers) can share the directory without a lock: writes go to a temp
//! file and are renamed into place, so a reader sees a whole entry or none. A corrupt or
//! truncated entry is a miss: it is removed and the layer is walked again.
//!
//! ```
//! use gantry_store::DirLayerCache;
//! let dir = tempfile::tempdir().unwrap();
//! let cache = DirLayerCache::new(dir.path());
//! assert_eq!(cache.root(), dir.path());
//! ```

mod layer_cache;

pub use layer_cache::{DirLayerCache, default_cache_dir};
