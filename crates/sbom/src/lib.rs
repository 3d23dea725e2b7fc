//! gantry-sbom: the CycloneDX SBOM of a judged image, from the same single pass over its layers.
//!
//! The catalogers (`gantry-analyze`) already found every package while the layers were walked
//! for the checks; this crate only writes them down:
//!
//! - [`SbomInput`] gathers what an SBOM says — the image (reference, digests, platform,
//!   layers), its os-release, the packages whose metadata is visible in the final filesystem
//!   (`gantry_analyze::final_packages`), the unknowns — from a [`gantry_gate::Checked`]
//!   ([`SbomInput::from_checked`]) or from a policy input document and its scan
//!   ([`SbomInput::from_input`], for `gantry sbom`, which judges nothing).
//! - [`cyclonedx`] turns it into a [`Bom`]: typed serde structs for the subset of CycloneDX
//!   1.6 (default) or 1.5 Gantry emits (the `cyclonedx-bom` crate stops at 1.5), every
//!   document valid against the official JSON schema.
//! - [`to_json`] writes it.
//!
//! Output is deterministic: components sorted by (purl, name, version, location), properties
//! in a fixed order, dependencies sorted, `bom-ref` = purl (suffixed `|2`, `|3`… when several
//! packages share one), and the serial number derived from the content — so the same image
//! gives the same file, `metadata.timestamp` aside (fix it with [`Bom::with_timestamp`]).
//! docs/sbom.md documents every field.
//!
//! ```
//! use gantry_sbom::{SpecVersion, license, purl};
//! assert_eq!("1.5".parse::<SpecVersion>().unwrap(), SpecVersion::V1_5);
//! assert_eq!(SpecVersion::default(), SpecVersion::V1_6);
//! assert_eq!(purl::percent_encode("1:2.36-9+deb12u9"), "1:2.36-9%2Bdeb12u9");
//! assert_eq!(license::spdx_id("apache-2.0"), Some("Apache-2.0"));
//! ```

mod build;
pub mod cdx;
mod deps;
mod input;
pub mod license;
mod package;
mod stamp;

pub use build::cyclonedx;
pub use cdx::{Bom, Component, ComponentType, SpecVersion, UnsupportedSpec};
/// Package URLs: gantry-analyze's encoder, the one every purl in a document comes from.
pub use gantry_analyze::purl;
pub use input::{ImageSubject, LayerSubject, SbomInput};

/// Why an SBOM could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// Serialising the document failed (a bug: the types always serialise).
    #[error("serialising the CycloneDX document failed")]
    Serialize(#[source] serde_json::Error),
}

/// The document as pretty-printed JSON with a trailing newline.
pub fn to_json(bom: &Bom) -> Result<String, SbomError> {
    let mut s = serde_json::to_string_pretty(bom).map_err(SbomError::Serialize)?;
    s.push('\n');
    Ok(s)
}
