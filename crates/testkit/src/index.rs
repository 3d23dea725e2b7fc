//! [`IndexBuilder`]: multi-platform indexes (OCI index or Docker manifest list), with
//! BuildKit-style attestation manifests.

use std::collections::BTreeMap;

use gantry_model::oci::{ImageIndex, ImageManifest, media_type};
use gantry_model::{Digest, Platform};

use crate::blob::sha256;
use crate::error::{Error, Result, json};
use crate::image::{BuiltImage, MediaTypes, descriptor};
use crate::layer::BuiltLayer;

/// `application/vnd.oci.empty.v1+json`: the `{}` config of artifact manifests.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// `artifactType` of BuildKit attestation manifests.
pub const ATTESTATION_ARTIFACT_TYPE: &str = "application/vnd.docker.attestation.manifest.v1+json";
/// Media type of in-toto statement layers.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// SLSA provenance v0.2 predicate type (BuildKit's default `mode=min` provenance).
pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";

#[derive(Debug, Clone)]
struct Attestation {
    image_idx: usize,
    predicate_type: String,
    predicate: serde_json::Value,
}

/// A recipe for an index.
///
/// ```
/// use gantry_testkit::{ImageBuilder, IndexBuilder};
/// let amd = ImageBuilder::new().platform("linux/amd64".parse()?).build()?;
/// let arm = ImageBuilder::new().platform("linux/arm64/v8".parse()?).build()?;
/// let index = IndexBuilder::new().image(amd).image(arm).attestation_for(0).build()?;
/// assert_eq!(index.attestations.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    media_types: MediaTypes,
    images: Vec<BuiltImage>,
    annotations: BTreeMap<String, String>,
    attestations: Vec<Attestation>,
    raw_index: Option<Vec<u8>>,
}

impl IndexBuilder {
    /// An empty OCI index.
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }

    /// OCI index or Docker manifest list.
    pub fn media_types(mut self, m: MediaTypes) -> Self {
        self.media_types = m;
        self
    }

    /// Adds an image; its entry's platform is the image's.
    pub fn image(mut self, image: BuiltImage) -> Self {
        self.images.push(image);
        self
    }

    /// An index annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// Appends a BuildKit-style attestation manifest (SLSA provenance v0.2) for image
    /// `image_idx`: platform `unknown/unknown`, annotations `vnd.docker.reference.type:
    /// attestation-manifest` and `vnd.docker.reference.digest: <image manifest digest>`.
    pub fn attestation_for(self, image_idx: usize) -> Self {
        let predicate = serde_json::json!({
            "builder": {"id": ""},
            "buildType": "https://mobyproject.org/buildkit@v1",
            "materials": [],
        });
        self.attestation_with(image_idx, SLSA_PROVENANCE_V02, predicate)
    }

    /// Like [`IndexBuilder::attestation_for`] with any predicate (SPDX, provenance v1, …).
    pub fn attestation_with(
        mut self,
        image_idx: usize,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Self {
        self.attestations.push(Attestation {
            image_idx,
            predicate_type: predicate_type.to_string(),
            predicate,
        });
        self
    }

    /// Uses these bytes as the index verbatim (children are still written and pushed).
    pub fn raw_index(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_index = Some(bytes.into());
        self
    }

    /// Renders the attestation manifests and the index.
    pub fn build(&self) -> Result<BuiltIndex> {
        let mut attestations = Vec::new();
        for a in &self.attestations {
            let subject = self.images.get(a.image_idx).ok_or_else(|| {
                Error::Recipe(format!(
                    "attestation for image {} of {}",
                    a.image_idx,
                    self.images.len()
                ))
            })?;
            attestations.push(attestation(subject, a)?);
        }
        let mut manifests: Vec<_> = self.images.iter().map(BuiltImage::descriptor).collect();
        for (a, built) in self.attestations.iter().zip(&attestations) {
            let mut d = built.descriptor();
            let subject = &self.images[a.image_idx];
            d.annotations = Some(BTreeMap::from([
                (
                    "vnd.docker.reference.digest".to_string(),
                    subject.manifest_digest.to_string(),
                ),
                (
                    "vnd.docker.reference.type".to_string(),
                    "attestation-manifest".to_string(),
                ),
            ]));
            manifests.push(d);
        }
        let media_type = match self.media_types {
            MediaTypes::Oci => media_type::OCI_INDEX,
            MediaTypes::Docker => media_type::DOCKER_MANIFEST_LIST,
        };
        let index = match &self.raw_index {
            Some(raw) => raw.clone(),
            None => json(
                "image index",
                &ImageIndex {
                    schema_version: 2,
                    media_type: Some(media_type.to_string()),
                    manifests,
                    annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
                },
            )?,
        };
        Ok(BuiltIndex {
            digest: sha256(&index),
            index,
            media_type: media_type.to_string(),
            images: self.images.clone(),
            attestations,
        })
    }
}

fn attestation(subject: &BuiltImage, a: &Attestation) -> Result<BuiltImage> {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": a.predicate_type,
        "subject": [{
            "name": format!("pkg:docker/gantry-test@latest?platform={}", subject.platform.to_string().replace('/', "%2F")),
            "digest": {"sha256": subject.manifest_digest.hex()},
        }],
        "predicate": a.predicate,
    });
    let layer = BuiltLayer::from_bytes(json("in-toto statement", &statement)?, IN_TOTO);
    let config = b"{}".to_vec();
    let config_digest = sha256(&config);
    let mut layer_desc = descriptor(&layer.media_type, &layer.digest, layer.size);
    layer_desc.annotations = Some(BTreeMap::from([(
        "in-toto.io/predicate-type".to_string(),
        a.predicate_type.clone(),
    )]));
    let manifest = json(
        "attestation manifest",
        &ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_string()),
            config: descriptor(OCI_EMPTY, &config_digest, config.len() as u64),
            layers: vec![layer_desc],
            annotations: None,
            subject: Some(descriptor(
                &subject.manifest_media_type,
                &subject.manifest_digest,
                subject.manifest.len() as u64,
            )),
            artifact_type: Some(ATTESTATION_ARTIFACT_TYPE.to_string()),
        },
    )?;
    Ok(BuiltImage {
        manifest_digest: sha256(&manifest),
        manifest,
        manifest_media_type: media_type::OCI_MANIFEST.to_string(),
        config,
        config_digest,
        config_media_type: OCI_EMPTY.to_string(),
        layers: vec![layer],
        platform: Platform {
            os: "unknown".to_string(),
            architecture: "unknown".to_string(),
            variant: None,
        },
    })
}

/// A rendered index with its children.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    /// Index bytes.
    pub index: Vec<u8>,
    /// Digest of the index bytes.
    pub digest: Digest,
    /// OCI index or Docker manifest list media type.
    pub media_type: String,
    /// The runnable images, in index order.
    pub images: Vec<BuiltImage>,
    /// Attestation manifests, listed after the images.
    pub attestations: Vec<BuiltImage>,
}

impl BuiltIndex {
    /// Every child manifest in index order: images, then attestations.
    pub fn children(&self) -> impl Iterator<Item = &BuiltImage> {
        self.images.iter().chain(&self.attestations)
    }
}
