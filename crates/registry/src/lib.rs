//! gantry-registry: where images come from.
//!
//! One trait, [`ImageSource`], over four kinds of source, named by a [`SourceRef`]:
//!
//! - a **registry** (through the crate's own small Distribution client over reqwest):
//!   anonymous, basic, or bearer-token auth with credentials given explicitly or found in
//!   Docker's `config.json`; HTTPS required except for listed insecure registries and loopback
//!   registries the policy allows;
//! - an **OCI layout** directory (`oci:DIR[:TAG]`);
//! - an **oci-archive** (`oci-archive:FILE[:TAG]`), read in place by seeking into the tar;
//! - a **docker-archive** (`docker-archive:FILE[:REPO:TAG]`, `docker save` output), with a
//!   synthesised manifest.
//!
//! [`open`] turns a `SourceRef` into an `Arc<dyn ImageSource>`; [`resolve_one`] (or
//! [`resolve_all_platforms`]) walks from the named document through indexes to image manifests
//! and configs, each size-capped ([`FetchLimits`]) and digest-verified; [`ImageSource::blob`]
//! then streams layers, whose digests the layer walker verifies as it reads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gantry_registry::RegistryError> {
//! use gantry_registry::{SourceOptions, SourceRef, open, resolve_one};
//!
//! let source: SourceRef = "oci:./image:latest".parse()?;
//! let src = open(&source, &SourceOptions::default()).await?;
//! let image = resolve_one(src.as_ref(), None).await?;
//! for layer in &image.manifest.layers {
//!     let _bytes = src.blob(layer).await?; // AsyncRead of the stored (compressed) bytes
//! }
//! # Ok(()) }
//! ```
//!
//! Every host a registry source connects to passes the [`Egress`] policy of its
//! [`SourceOptions`]: an allowlist of registries ([`AllowRule`]) checked before connecting, and
//! address checks on the resolved addresses, every redirect hop and the token realm (loopback,
//! link-local, private and other non-public ranges only for listed hosts).
//!
//! Every failure is a [`RegistryError`] with a stable [`RegistryError::code`], and a
//! [`RegistryError::public_code`] that is safe to show to callers.

mod auth;
mod client;
mod docker_archive;
mod document;
mod egress;
mod error;
mod layout;
mod local;
mod open;
mod push;
mod remote;
mod resolve;
mod source;

pub use auth::docker_config_credentials;
pub use document::Document;
pub use egress::{AddressClass, AllowRule, Egress, HostResolver, SystemResolver};
pub use error::{BoxError, RegistryError};
pub use open::open;
pub use push::Pusher;
pub use resolve::{IndexInfo, MAX_INDEX_DEPTH, ResolvedImage, resolve_all_platforms, resolve_one};
pub use source::{BlobStream, FetchLimits, ImageSource, SourceOptions, SourceRef};
