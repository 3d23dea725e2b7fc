//! gantry-scan: from a resolved image to a [`ScanReport`].
//!
//! For each layer, in parallel up to [`ScanOptions::parallel_layers`]:
//! a [`LayerCache`] hit returns the stored per-layer report; a miss opens the blob stream
//! from the [`ImageSource`](gantry_registry::ImageSource), bridges it once into the blocking
//! pool (`SyncIoBridge`), where `gantry-layer` verifies, decompresses and walks it while an
//! `AnalyzerSet` dispatcher records files and feeds analyzers; the result is cached by
//! (layer digest, analyzer fingerprint). The layer reports are then squashed, base first,
//! into the final filesystem and the history of what later layers hid.
//!
//! The cache trait lives here, where it is consumed; `gantry-store` implements it on disk.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gantry_registry::{open, resolve_one, SourceOptions, SourceRef};
//! use gantry_scan::{Scanner, ScanOptions};
//! let source = open(&"oci:./image".parse::<SourceRef>()?, &SourceOptions::default()).await?;
//! let image = resolve_one(source.as_ref(), None).await?;
//! let report = Scanner::new(ScanOptions::default(), None)?.scan(&source, &image).await?;
//! println!("{} files", report.filesystem.files.len());
//! # Ok(()) }
//! ```

mod cache;
pub mod limits;
mod scanner;

pub use cache::{CachedLayer, LayerCache, WalkStats};
pub use scanner::{LayerResult, LayerSource, ScanError, ScanOptions, ScanReport, Scanner};
