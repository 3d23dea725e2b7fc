//! gantry-model: the vocabulary every other Gantry crate speaks.
//!
//! Plain data with serde, no IO. Values are parsed once at the edge of the program
//! (CLI arguments, manifests, configs, webhook payloads) into these validated types,
//! and later code trusts them:
//!
//! - [`Digest`]: a content digest (`sha256:…` / `sha512:…`), validated on parse.
//! - [`ImageRef`]: an image reference normalised exactly as Docker does
//!   (`alpine` → `docker.io/library/alpine:latest`).
//! - [`Platform`]: `os/arch[/variant]`, e.g. `linux/arm64/v8`.
//! - [`oci`]: manifests, indexes, image configs and media-type classification.
//! - [`fs`]: what a layer walk records about each tar entry.
//! - [`time`]: RFC 3339 timestamps, the one formatter Gantry writes times with.
//! - [`Verdict`]: a policy decision with [`Finding`]s that point at a [`Location`].
//!
//! ```
//! use gantry_model::ImageRef;
//! let r: ImageRef = "alpine".parse().unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
//! ```

mod digest;
pub mod fs;
pub mod oci;
mod platform;
mod reference;
pub mod time;
mod verdict;

pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use platform::{Platform, PlatformError};
pub use reference::{ImageRef, ReferenceError};
pub use verdict::{Decision, Finding, Location, Severity, Verdict, Waived};
