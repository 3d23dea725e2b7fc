//! OCI and Docker schema 2 documents: manifests, indexes, image configs, and the
//! classification of their media types.
//!
//! Every optional field may be absent or `null`, and unknown fields are ignored, as the
//! image spec requires of readers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Digest, Platform};

/// Media type strings Gantry recognises.
pub mod media_type {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI uncompressed layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable (foreign) layers, deprecated.
    pub const OCI_FOREIGN_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable gzip layer.
    pub const OCI_FOREIGN_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// OCI non-distributable zstd layer.
    pub const OCI_FOREIGN_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer (not in the Docker spec, seen in the wild).
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker zstd layer (written by some BuildKit versions).
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    /// Docker foreign layer (Windows base layers).
    pub const DOCKER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Manifest media types Gantry asks registries for, most preferred first.
    pub const ACCEPTED_MANIFESTS: [&str; 4] = [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
    ];
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (possibly several members).
    Gzip,
    /// zstd.
    Zstd,
}

/// What a layer descriptor's media type says about the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A tar changeset Gantry can walk.
    Tar(Compression),
    /// A non-distributable (foreign) layer: usually not in the registry; reported, not walked.
    Foreign(Compression),
    /// Anything else (an artifact, a plugin, a typo): reported, never guessed.
    Unknown,
}

impl LayerKind {
    /// Classifies a layer media type.
    pub fn of(mt: &str) -> LayerKind {
        use crate::oci::media_type as m;
        match mt {
            m::OCI_LAYER_TAR | m::DOCKER_LAYER_TAR => LayerKind::Tar(Compression::None),
            m::OCI_LAYER_GZIP | m::DOCKER_LAYER_GZIP => LayerKind::Tar(Compression::Gzip),
            m::OCI_LAYER_ZSTD | m::DOCKER_LAYER_ZSTD => LayerKind::Tar(Compression::Zstd),
            m::OCI_FOREIGN_TAR => LayerKind::Foreign(Compression::None),
            m::OCI_FOREIGN_GZIP | m::DOCKER_FOREIGN_GZIP => LayerKind::Foreign(Compression::Gzip),
            m::OCI_FOREIGN_ZSTD => LayerKind::Foreign(Compression::Zstd),
            _ => LayerKind::Unknown,
        }
    }
}

/// What a manifest-level document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// An image index or Docker manifest list.
    Index,
    /// An image manifest (OCI or Docker schema 2).
    Manifest,
}

impl DocumentKind {
    /// Classifies by media type, falling back to structure when the type is absent or generic
    /// (old OCI manifests omit `mediaType`; the registry's Content-Type may say `application/json`).
    pub fn detect(mt: Option<&str>, body: &serde_json::Value) -> Option<DocumentKind> {
        use crate::oci::media_type as m;
        match mt {
            Some(m::OCI_INDEX) | Some(m::DOCKER_MANIFEST_LIST) => Some(DocumentKind::Index),
            Some(m::OCI_MANIFEST) | Some(m::DOCKER_MANIFEST) => Some(DocumentKind::Manifest),
            _ => {
                if body.get("manifests").is_some_and(|v| v.is_array()) {
                    Some(DocumentKind::Index)
                } else if body.get("config").is_some_and(|v| v.is_object())
                    && body.get("layers").is_some_and(|v| v.is_array())
                {
                    Some(DocumentKind::Manifest)
                } else {
                    None
                }
            }
        }
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Alternative download locations (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Descriptor annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform (index entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<IndexPlatform>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// The `platform` object of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version (Windows).
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl IndexPlatform {
    /// As a [`Platform`].
    pub fn to_platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries: per-platform manifests, nested indexes, attestations.
    pub manifests: Vec<Descriptor>,
    /// Index annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// Entries that are runnable images with a platform (attestation manifests, which
    /// BuildKit marks with platform `unknown/unknown`, are left out).
    pub fn platforms(&self) -> Vec<(Platform, &Descriptor)> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| (p.to_platform(), d)))
            .filter(|(p, _)| p.os != "unknown" && p.architecture != "unknown")
            .collect()
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Manifest annotations (e.g. `org.opencontainers.image.base.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Subject (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// An image configuration (`application/vnd.oci.image.config.v1+json` or Docker's equivalent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Creation time (RFC 3339), as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Runtime defaults.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: ContainerConfig,
    /// Layer diff IDs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rootfs: RootFs,
    /// Build history, one entry per Dockerfile step.
    #[serde(default, deserialize_with = "null_as_default")]
    pub history: Vec<History>,
}

/// `config` of an image config: what a container runs with by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// `USER` as written (`name`, `uid`, `user:group`, …); empty means root.
    #[serde(rename = "User", default, deserialize_with = "null_as_default")]
    pub user: String,
    /// `KEY=VALUE` pairs.
    #[serde(rename = "Env", default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// Entrypoint.
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(rename = "WorkingDir", default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    /// Labels.
    #[serde(rename = "Labels", default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Exposed ports (`8080/tcp` → `{}`).
    #[serde(rename = "ExposedPorts", default, deserialize_with = "null_as_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// Volumes.
    #[serde(rename = "Volumes", default, deserialize_with = "null_as_default")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    /// Stop signal.
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK` (Docker's image config; the OCI spec has no such field, Buildah writes
    /// it only in Docker format).
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
}

/// `config.Healthcheck` of a Docker image config. Only the test is kept: the timings do not
/// change whether there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]`, or `["NONE"]` (disables an inherited check); empty
    /// means inherit.
    #[serde(rename = "Test", default, deserialize_with = "null_as_default")]
    pub test: Vec<String>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Must be `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Digests of the uncompressed layer tars, base first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

/// One build step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When the step ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The command, e.g. `/bin/sh -c apt-get install …` or `RUN …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_layers() {
        assert_eq!(
            LayerKind::of(media_type::DOCKER_LAYER_GZIP),
            LayerKind::Tar(Compression::Gzip)
        );
        assert_eq!(
            LayerKind::of(media_type::OCI_LAYER_ZSTD),
            LayerKind::Tar(Compression::Zstd)
        );
        assert_eq!(
            LayerKind::of(media_type::OCI_LAYER_TAR),
            LayerKind::Tar(Compression::None)
        );
        assert_eq!(
            LayerKind::of(media_type::DOCKER_FOREIGN_GZIP),
            LayerKind::Foreign(Compression::Gzip)
        );
        assert_eq!(
            LayerKind::of("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
            LayerKind::Unknown
        );
    }

    #[test]
    fn config_tolerates_nulls_and_extras() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"User":null,"Env":null,"Labels":null,"Extra":1},
                "rootfs":{"type":"layers","diff_ids":[]},"history":null,"container_config":{}}"#,
        )
        .unwrap();
        assert_eq!(c.config.user, "");
        assert!(c.history.is_empty());
        let c: ImageConfig = serde_json::from_str(r#"{"architecture":"amd64","os":"linux","config":null,"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert!(c.config.env.is_empty());
    }

    #[test]
    fn detects_document_kind() {
        let idx = serde_json::json!({"schemaVersion":2,"manifests":[]});
        assert_eq!(DocumentKind::detect(None, &idx), Some(DocumentKind::Index));
        let man = serde_json::json!({"schemaVersion":2,"config":{},"layers":[]});
        assert_eq!(
            DocumentKind::detect(Some("application/json"), &man),
            Some(DocumentKind::Manifest)
        );
        assert_eq!(
            DocumentKind::detect(None, &serde_json::json!({"x":1})),
            None
        );
    }
}
