//! gantry-testkit: real container images and a real registry for Gantry's tests (dev-only).
//!
//! - [`LayerBuilder`] renders a file tree into a real tar layer (gzip, zstd or plain), with
//!   whiteouts, links, and hostile entries on purpose (`../` paths, PAX/GNU long names, a PAX
//!   header claiming gigabytes, zero bombs, truncated or corrupt blobs).
//! - [`ImageBuilder`] and [`IndexBuilder`] assemble configs, manifests (OCI or Docker schema
//!   2) and indexes with BuildKit-style attestations; everything is deterministic (mtime 0,
//!   fixed `created`), so the same recipe gives the same digests.
//! - [`Artifact`] writes an OCI layout directory or archive, or pushes to a registry over the
//!   distribution API; [`BuiltImage::write_docker_archive`] writes `docker save` archives.
//! - [`RegistryHarness`] runs Debian's `docker-registry` on a free 127.0.0.1 port (optionally
//!   with htpasswd or token auth, [`Auth`]); [`FaultyRegistry`] answers every request badly.
//! - [`PostgresHarness`] runs a throwaway PostgreSQL cluster (Debian's `postgresql`) on a free
//!   127.0.0.1 port, for the store's Postgres backend.
//! - [`RegistryClient`] reads back what was pushed, independently of gantry-registry.
//! - [`CycloneDx`] validates SBOMs against the official CycloneDX 1.5/1.6 JSON schemas,
//!   vendored in `schemas/` and resolved offline.
//!
//! ```no_run
//! use gantry_model::oci::Compression;
//! use gantry_testkit::{Artifact, ImageBuilder, LayerBuilder, RegistryHarness};
//!
//! let image = ImageBuilder::new()
//!     .user("nobody")
//!     .layer(LayerBuilder::new(Compression::Gzip).file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"))
//!     .layer(LayerBuilder::new(Compression::Zstd).whiteout("etc/passwd"))
//!     .build()?;
//! let dir = tempfile::tempdir().map_err(|e| gantry_testkit::Error::Recipe(e.to_string()))?;
//! image.write_oci_layout(dir.path(), Some("v1"))?;
//!
//! let registry = RegistryHarness::start()?; // killed on drop
//! let pushed = image.push(&registry, "demo/app", Some("v1"), None)?;
//! assert_eq!(pushed.digest, image.manifest_digest);
//! # Ok::<(), gantry_testkit::Error>(())
//! ```

mod blob;
mod error;
mod faulty;
mod http;
mod image;
mod index;
mod layer;
mod postgres;
mod proxy;
mod push;
mod registry;
mod schema;
mod token;
mod write;

pub use blob::{Blob, sha256};
pub use error::{Error, Result};
pub use faulty::{Fault, FaultyRegistry};
pub use image::{BuiltImage, CREATED, ImageBuilder, MediaTypes};
pub use index::{
    ATTESTATION_ARTIFACT_TYPE, BuiltIndex, IN_TOTO, IndexBuilder, OCI_EMPTY, SLSA_PROVENANCE_V02,
};
pub use layer::{BuiltLayer, LayerBuilder};
pub use postgres::{POSTGRES_BIN_ENV, PostgresError, PostgresHarness};
pub use proxy::HoldingProxy;
pub use push::{FetchedManifest, Pushed, RawResponse, RegistryClient, Target};
pub use registry::{Auth, BINARY_ENV, RegistryHarness, RegistryOptions};
pub use schema::{CycloneDx, VendoredSchemas};
pub use write::{Artifact, Content, DockerArchiveStyle, REF_NAME};
