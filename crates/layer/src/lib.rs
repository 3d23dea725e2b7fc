//! gantry-layer: one streaming pass over one layer blob.
//!
//! [`walk_layer`] reads a layer blob once, start to end:
//!
//! ```text
//! blob ─► sha256 + size cap ─► gzip | zstd | none ─► sha256 + size cap + ratio check ─► tar walk ─► EntrySink
//! ```
//!
//! - The blob digest is always verified and the diff ID when the caller knows it; the blob
//!   is read to its last byte (trailing bytes after a gzip stream included) so verification
//!   always runs, even after the tar end-of-archive marker.
//! - Every cost is bounded by [`Limits`]: blob and tar sizes, decompression ratio (checked
//!   while streaming), entry count, PAX/GNU extension header size (checked before the body is
//!   read), path length. Memory stays at a few hundred KiB of buffers plus the zstd window;
//!   nothing is written to disk.
//! - Entries arrive at the [`EntrySink`] in tar order with normalised paths
//!   ([`FileEntry`](gantry_model::fs::FileEntry)); whiteouts arrive separately
//!   ([`Whiteout`](gantry_model::fs::Whiteout)). Paths that escape the root (`..`, leading
//!   `/`), in entries or hard link targets, fail the walk.
//! - Tar semantics follow Go's `archive/tar`, which containerd and Docker unpack layers with,
//!   so the scanner sees the files the runtime creates.
//! - Every failure is one [`LayerError`] naming the layer, with a stable
//!   [`kind_code`](LayerError::kind_code).
//!
//! ```
//! use std::io::{self, Read};
//! use gantry_layer::{walk_layer, EntrySink, LayerSpec, Limits};
//! use gantry_model::fs::{FileEntry, Whiteout};
//! use gantry_model::oci::Compression;
//!
//! struct Paths(Vec<String>);
//! impl EntrySink for Paths {
//!     fn file(&mut self, entry: &FileEntry, _body: &mut dyn Read) -> io::Result<()> {
//!         self.0.push(entry.path.clone());
//!         Ok(())
//!     }
//!     fn whiteout(&mut self, _: &Whiteout) -> io::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! let empty_tar = [0u8; 1024];
//! let spec = LayerSpec {
//!     digest: "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef".parse().unwrap(),
//!     diff_id: None,
//!     compression: Compression::None,
//! };
//! let mut sink = Paths(Vec::new());
//! let walk = walk_layer(&empty_tar[..], &spec, &Limits::default(), &mut sink).unwrap();
//! assert_eq!(walk.entries, 0);
//! assert_eq!(walk.uncompressed_size, 1024);
//! ```

pub use error::{LayerError, Stream};
pub use limits::Limits;
pub use walk::{EntrySink, LayerSpec, LayerWalk, walk_layer};

mod error;
pub mod header;
mod limits;
mod path;
mod stream;
mod walk;
