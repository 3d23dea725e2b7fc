//! [`ImageBuilder`]: layers + config + manifest, OCI or Docker schema 2, with knobs for
//! malformed images (wrong diff IDs, foreign media types, overridden config, raw manifest).

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::oci::{
    ContainerConfig, Descriptor, History, ImageConfig, ImageManifest, IndexPlatform, RootFs,
    media_type,
};
use gantry_model::{Digest, Platform};

use crate::blob::sha256;
use crate::error::{Error, Result, json};
use crate::layer::{BuiltLayer, LayerBuilder, layer_media_type};

/// Which family of media types an image or index uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaTypes {
    /// `application/vnd.oci.image.*` (the default).
    #[default]
    Oci,
    /// Docker schema 2: `application/vnd.docker.distribution.manifest.v2+json`, `…rootfs.diff.tar.gzip`.
    Docker,
}

/// The fixed `created` time of configs and history entries (determinism: no clock).
pub const CREATED: &str = "2024-01-01T00:00:00Z";

#[derive(Debug, Clone)]
enum Step {
    Layer(LayerBuilder, Option<String>),
    Empty(String),
}

/// A recipe for one image.
///
/// ```
/// use gantry_model::oci::Compression;
/// use gantry_testkit::{ImageBuilder, LayerBuilder};
/// let image = ImageBuilder::new()
///     .user("1000")
///     .env("PATH", "/usr/bin")
///     .layer(LayerBuilder::new(Compression::Gzip).file("etc/os-release", "ID=alpine\n"))
///     .build()?;
/// assert_eq!(image.layers.len(), 1);
/// # Ok::<(), gantry_testkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    media_types: MediaTypes,
    platform: Platform,
    created: String,
    user: String,
    env: Vec<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    workdir: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    exposed_ports: BTreeMap<String, serde_json::Value>,
    volumes: BTreeMap<String, serde_json::Value>,
    steps: Vec<Step>,
    media_type_overrides: BTreeMap<usize, String>,
    wrong_diff_ids: BTreeSet<usize>,
    config_override: Option<serde_json::Value>,
    healthcheck: Option<Vec<String>>,
    raw_config: Option<Vec<u8>>,
    raw_manifest: Option<Vec<u8>>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

impl ImageBuilder {
    /// An OCI image for linux/amd64 with no layers.
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            media_types: MediaTypes::Oci,
            platform: Platform {
                os: "linux".to_string(),
                architecture: "amd64".to_string(),
                variant: None,
            },
            created: CREATED.to_string(),
            user: String::new(),
            env: Vec::new(),
            entrypoint: None,
            cmd: None,
            workdir: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            exposed_ports: BTreeMap::new(),
            volumes: BTreeMap::new(),
            steps: Vec::new(),
            media_type_overrides: BTreeMap::new(),
            wrong_diff_ids: BTreeSet::new(),
            config_override: None,
            healthcheck: None,
            raw_config: None,
            raw_manifest: None,
        }
    }

    /// OCI or Docker media types for manifest, config and layers.
    pub fn media_types(mut self, m: MediaTypes) -> Self {
        self.media_types = m;
        self
    }

    /// Platform written to the config (and to the index entry when put in an index).
    pub fn platform(mut self, p: Platform) -> Self {
        self.platform = p;
        self
    }

    /// `created` of the config and history (default [`CREATED`]).
    pub fn created(mut self, rfc3339: &str) -> Self {
        self.created = rfc3339.to_string();
        self
    }

    /// `config.User`.
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    /// Appends `KEY=VALUE` to `config.Env` (order kept).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// `config.Entrypoint`.
    pub fn entrypoint<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// `config.Cmd`.
    pub fn cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.cmd = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// `config.WorkingDir`.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = dir.to_string();
        self
    }

    /// A config label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// A manifest annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// An exposed port, e.g. `"8080/tcp"`.
    pub fn exposed_port(mut self, port: &str) -> Self {
        self.exposed_ports
            .insert(port.to_string(), serde_json::json!({}));
        self
    }

    /// A volume, e.g. `"/data"`.
    pub fn volume(mut self, path: &str) -> Self {
        self.volumes.insert(path.to_string(), serde_json::json!({}));
        self
    }

    /// Adds a layer; its history entry says `RUN layer N` (N counts layers from 1).
    pub fn layer(mut self, layer: LayerBuilder) -> Self {
        self.steps.push(Step::Layer(layer, None));
        self
    }

    /// Adds a layer with its history `created_by`.
    pub fn layer_with_history(mut self, layer: LayerBuilder, created_by: &str) -> Self {
        self.steps
            .push(Step::Layer(layer, Some(created_by.to_string())));
        self
    }

    /// A history entry with `empty_layer: true` (ENV, LABEL, … steps).
    pub fn empty_history(mut self, created_by: &str) -> Self {
        self.steps.push(Step::Empty(created_by.to_string()));
        self
    }

    /// Overrides the descriptor media type of layer `idx` (0-based), e.g. a Helm chart type
    /// or a foreign layer. The blob is unchanged.
    pub fn layer_media_type_override(mut self, idx: usize, media_type: &str) -> Self {
        self.media_type_overrides
            .insert(idx, media_type.to_string());
        self
    }

    /// Writes a diff ID for layer `idx` that does not match its uncompressed tar.
    pub fn wrong_diff_id(mut self, idx: usize) -> Self {
        self.wrong_diff_ids.insert(idx);
        self
    }

    /// A JSON merge patch (RFC 7386) applied to the generated config: objects merge, `null`
    /// removes a key, anything else replaces. E.g. `{"rootfs": {"type": "zfs"}}`.
    pub fn config_override(mut self, patch: serde_json::Value) -> Self {
        self.config_override = Some(patch);
        self
    }

    /// `HEALTHCHECK`: the config's `Healthcheck.Test` (`["CMD", "/app/health"]`, `["NONE"]`).
    pub fn healthcheck<S: Into<String>>(mut self, test: impl IntoIterator<Item = S>) -> Self {
        self.healthcheck = Some(test.into_iter().map(Into::into).collect());
        self
    }

    /// Uses these bytes as the config blob verbatim (malformed-config tests).
    pub fn raw_config(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_config = Some(bytes.into());
        self
    }

    /// Uses these bytes as the manifest verbatim (malformed-manifest tests); layers and
    /// config are still built, and written/pushed as blobs.
    pub fn raw_manifest(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_manifest = Some(bytes.into());
        self
    }

    /// Renders layers, config and manifest.
    pub fn build(&self) -> Result<BuiltImage> {
        let docker = self.media_types == MediaTypes::Docker;
        let mut layers = Vec::new();
        let mut history = Vec::new();
        for step in &self.steps {
            match step {
                Step::Layer(recipe, created_by) => {
                    let idx = layers.len();
                    let mt = match self.media_type_overrides.get(&idx) {
                        Some(mt) => mt.clone(),
                        None => layer_media_type(recipe.compression(), docker).to_string(),
                    };
                    layers.push(recipe.build()?.with_media_type(mt));
                    history.push(History {
                        created: Some(self.created.clone()),
                        created_by: Some(
                            created_by
                                .clone()
                                .unwrap_or_else(|| format!("RUN layer {}", idx + 1)),
                        ),
                        ..History::default()
                    });
                }
                Step::Empty(created_by) => history.push(History {
                    created: Some(self.created.clone()),
                    created_by: Some(created_by.clone()),
                    empty_layer: true,
                    ..History::default()
                }),
            }
        }
        if let Some(bad) = self
            .media_type_overrides
            .keys()
            .chain(&self.wrong_diff_ids)
            .find(|i| **i >= layers.len())
        {
            return Err(Error::Recipe(format!(
                "layer index {bad} out of range ({} layers)",
                layers.len()
            )));
        }

        let diff_ids = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if self.wrong_diff_ids.contains(&i) {
                    sha256(format!("wrong diff id of {}", l.diff_id).as_bytes())
                } else {
                    l.diff_id.clone()
                }
            })
            .collect();
        let config_doc = ImageConfig {
            architecture: self.platform.architecture.clone(),
            os: self.platform.os.clone(),
            variant: self.platform.variant.clone(),
            created: Some(self.created.clone()),
            author: None,
            config: ContainerConfig {
                user: self.user.clone(),
                env: self.env.clone(),
                entrypoint: self.entrypoint.clone(),
                cmd: self.cmd.clone(),
                working_dir: self.workdir.clone(),
                labels: self.labels.clone(),
                exposed_ports: self.exposed_ports.clone(),
                volumes: self.volumes.clone(),
                stop_signal: None,
                healthcheck: self
                    .healthcheck
                    .as_ref()
                    .map(|test| gantry_model::oci::Healthcheck { test: test.clone() }),
            },
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids,
            },
            history,
        };
        let config = match (&self.raw_config, &self.config_override) {
            (Some(raw), _) => raw.clone(),
            (None, Some(patch)) => {
                let mut v = serde_json::to_value(&config_doc).map_err(|source| Error::Json {
                    what: "image config".to_string(),
                    source,
                })?;
                merge_patch(&mut v, patch);
                json("image config", &v)?
            }
            (None, None) => json("image config", &config_doc)?,
        };
        let config_digest = sha256(&config);
        let (manifest_media_type, config_media_type) = if docker {
            (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
        } else {
            (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
        };
        let manifest = match &self.raw_manifest {
            Some(raw) => raw.clone(),
            None => json(
                "image manifest",
                &ImageManifest {
                    schema_version: 2,
                    media_type: Some(manifest_media_type.to_string()),
                    config: descriptor(config_media_type, &config_digest, config.len() as u64),
                    layers: layers
                        .iter()
                        .map(|l| descriptor(&l.media_type, &l.digest, l.size))
                        .collect(),
                    annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
                    subject: None,
                    artifact_type: None,
                },
            )?,
        };
        Ok(BuiltImage {
            manifest_digest: sha256(&manifest),
            manifest,
            manifest_media_type: manifest_media_type.to_string(),
            config,
            config_digest,
            config_media_type: config_media_type.to_string(),
            layers,
            platform: self.platform.clone(),
        })
    }
}

pub(crate) fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: digest.clone(),
        size,
        urls: None,
        annotations: None,
        platform: None,
        artifact_type: None,
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// A rendered image: every byte of it, ready to write or push.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Digest of the manifest bytes.
    pub manifest_digest: Digest,
    /// Manifest media type (OCI or Docker).
    pub manifest_media_type: String,
    /// Config bytes.
    pub config: Vec<u8>,
    /// Digest of the config bytes (the image ID).
    pub config_digest: Digest,
    /// Config media type.
    pub config_media_type: String,
    /// Layers, base first.
    pub layers: Vec<BuiltLayer>,
    /// The platform the config names.
    pub platform: Platform,
}

impl BuiltImage {
    /// The descriptor of this manifest, with its platform, as an index lists it.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = descriptor(
            &self.manifest_media_type,
            &self.manifest_digest,
            self.manifest.len() as u64,
        );
        d.platform = Some(IndexPlatform {
            architecture: self.platform.architecture.clone(),
            os: self.platform.os.clone(),
            variant: self.platform.variant.clone(),
            os_version: None,
        });
        d
    }

    /// The layer with this blob digest.
    pub fn layer(&self, digest: &Digest) -> Option<&BuiltLayer> {
        self.layers.iter().find(|l| &l.digest == digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut v = serde_json::json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_patch(
            &mut v,
            &serde_json::json!({"a": {"b": null, "e": 4}, "d": [1]}),
        );
        assert_eq!(v, serde_json::json!({"a": {"c": 2, "e": 4}, "d": [1]}));
    }
}
