//! [`SbomInput`]: everything an SBOM says, gathered from one judged image.

use std::collections::BTreeMap;

use gantry_analyze::facts::{LayerFacts, UnknownFact, final_packages};
use gantry_analyze::{OsRelease, Package};
use gantry_gate::{Checked, InputDocument};
use gantry_model::{Digest, ImageRef};
use gantry_scan::ScanReport;

/// The image an SBOM describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSubject {
    /// The image as the user named it (`debian:bookworm`, `oci:dir:tag`,
    /// `docker-archive:file.tar`).
    pub source: String,
    /// The registry reference, for registry images (gives the `pkg:oci` purl).
    pub reference: Option<ImageRef>,
    /// Manifest digest (the component's version).
    pub manifest_digest: Digest,
    /// Manifest media type.
    pub media_type: String,
    /// Config digest (the image ID).
    pub config_digest: Digest,
    /// The index the manifest was picked from.
    pub index_digest: Option<Digest>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Layers in manifest order.
    pub layers: Vec<LayerSubject>,
}

/// One layer of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSubject {
    /// Manifest position (0 = base).
    pub index: usize,
    /// Blob digest.
    pub digest: Digest,
    /// Digest of the uncompressed tar (what Syft calls the layer ID).
    pub diff_id: Option<Digest>,
}

/// Everything [`crate::cyclonedx`] needs.
#[derive(Debug, Clone)]
pub struct SbomInput {
    /// The image.
    pub image: ImageSubject,
    /// os-release of the final filesystem.
    pub os: Option<OsRelease>,
    /// Packages whose metadata is visible in the final filesystem.
    pub packages: Vec<Package>,
    /// Files analyzers could not read (those a later layer deleted are left out of the
    /// SBOM, which describes the final filesystem).
    pub unknowns: Vec<UnknownFact>,
    /// False when some layer could not be walked (foreign or unknown media type): the
    /// document then says its inventory is incomplete.
    pub complete: bool,
    /// Version of the tool that made the SBOM (`metadata.tools`).
    pub tool_version: String,
}

impl SbomInput {
    /// The input for a judged image (`gantry scan`).
    pub fn from_checked(checked: &Checked, tool_version: &str) -> SbomInput {
        SbomInput::from_input(&checked.report.input, &checked.scan, tool_version)
    }

    /// The input from a policy input document and the scan it was built from (`gantry sbom`
    /// builds the document without evaluating any policy).
    pub fn from_input(input: &InputDocument, scan: &ScanReport, tool_version: &str) -> SbomInput {
        let walked: Vec<LayerFacts<'_>> = scan
            .layers
            .iter()
            .filter_map(|l| {
                l.layer.as_ref().map(|w| LayerFacts {
                    index: l.index,
                    digest: &l.descriptor.digest,
                    report: &w.report,
                })
            })
            .collect();
        let packages = final_packages(&walked, &scan.filesystem);
        let image = &input.image;
        SbomInput {
            image: ImageSubject {
                source: image.source.clone(),
                reference: image.reference.as_deref().and_then(|r| r.parse().ok()),
                manifest_digest: image.digest.clone(),
                media_type: image.media_type.clone(),
                config_digest: image.config_digest.clone(),
                index_digest: image.index_digest.clone(),
                platform: image.platform.clone(),
                labels: image.labels.clone(),
                annotations: image.annotations.clone(),
                layers: input
                    .layers
                    .iter()
                    .map(|l| LayerSubject {
                        index: l.index,
                        digest: l.digest.clone(),
                        diff_id: l.diff_id.clone(),
                    })
                    .collect(),
            },
            os: input.facts.os.clone(),
            packages,
            unknowns: input.unknowns.clone(),
            complete: scan.complete,
            tool_version: tool_version.to_string(),
        }
    }
}
