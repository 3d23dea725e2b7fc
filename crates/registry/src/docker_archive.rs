//! `docker save` archives: `manifest.json` (`[{Config, RepoTags, Layers}]`), a config file and
//! one file per layer, legacy (`<id>/layer.tar`) or OCI-style (`blobs/sha256/<hex>`, Docker ≥ 25).
//!
//! A docker-archive holds no registry manifest, so one is synthesised (Docker schema 2, layers in
//! `manifest.json` order). Its digest is therefore Gantry's own — stable for the same archive
//! content, but not the digest the image has in any registry. The stable identity of a
//! docker-archive image is its config digest (Docker's image ID).

use std::collections::HashMap;

use gantry_model::oci::{Descriptor, ImageConfig, ImageManifest, media_type};
use gantry_model::{Digest, DigestAlgorithm, ImageRef};
use serde::Deserialize;

use crate::document::{Document, check_announced_size, digest_of, verify_content};
use crate::error::RegistryError;
use crate::local::{Store, TarStore, read_capped, read_prefix};
use crate::source::{BlobStream, FetchLimits, ImageSource};

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Option<Vec<String>>,
}

/// A `docker save` archive, indexed, with its synthesised manifest.
#[derive(Debug)]
pub(crate) struct DockerArchiveSource {
    store: TarStore,
    describe: String,
    root: Document,
    config_digest: Digest,
    config_bytes: Vec<u8>,
    /// Layer digest → path in the archive.
    layers: HashMap<Digest, String>,
}

impl DockerArchiveSource {
    pub(crate) async fn open(
        store: TarStore,
        reference: Option<&str>,
        describe: String,
        limits: &FetchLimits,
    ) -> Result<Self, RegistryError> {
        let location = store.location().display().to_string();
        if store.size("manifest.json").await?.is_none() {
            let hint = if store.size("index.json").await?.is_some() {
                " (it looks like an OCI layout: use oci-archive:)"
            } else {
                ""
            };
            return Err(RegistryError::MalformedImage {
                reason: format!(
                    "{location} is not a docker-archive: it has no manifest.json{hint}"
                ),
            });
        }
        let what = format!("manifest.json of {location}");
        let bytes = read_capped(&store, "manifest.json", limits.max_manifest_bytes, &what).await?;
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&bytes)
            .map_err(|source| RegistryError::InvalidJson { what, source })?;
        let entry = select(&entries, reference, &describe)?;

        let config_path = entry.config.trim_start_matches("./").to_string();
        let what = format!("config {config_path} in {describe}");
        let config_bytes =
            read_capped(&store, &config_path, limits.max_config_bytes, &what).await?;
        let config_digest = digest_of(DigestAlgorithm::Sha256, &config_bytes);
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|source| RegistryError::InvalidJson { what, source })?;

        let mut layer_descs = Vec::new();
        let mut layers = HashMap::new();
        for (i, path) in entry.layers.iter().flatten().enumerate() {
            let path = path.trim_start_matches("./").to_string();
            let size = store
                .size(&path)
                .await?
                .ok_or_else(|| crate::local::not_found(&store, &path))?;
            let digest = match oci_style_digest(&path) {
                Some(d) => d,
                // Legacy layers are uncompressed tars, so their digest is the diff ID.
                None => config.rootfs.diff_ids.get(i).cloned().ok_or_else(|| RegistryError::MalformedImage {
                    reason: format!(
                        "{describe}: manifest.json lists {} layers but the config has {} diff_ids",
                        entry.layers.as_ref().map_or(0, Vec::len),
                        config.rootfs.diff_ids.len()
                    ),
                })?,
            };
            let magic = read_prefix(&store, &path, 4).await?;
            layer_descs.push(Descriptor {
                media_type: sniff_layer_media_type(&magic).to_string(),
                digest: digest.clone(),
                size,
                urls: None,
                annotations: None,
                platform: None,
                artifact_type: None,
            });
            layers.insert(digest, path);
        }

        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::DOCKER_MANIFEST.to_string()),
            config: Descriptor {
                media_type: media_type::DOCKER_CONFIG.to_string(),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                urls: None,
                annotations: None,
                platform: None,
                artifact_type: None,
            },
            layers: layer_descs,
            annotations: None,
            subject: None,
            artifact_type: None,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|source| RegistryError::InvalidJson {
            what: format!("synthesised manifest of {describe}"),
            source,
        })?;
        let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
        let root = Document::parse(
            digest,
            Some(media_type::DOCKER_MANIFEST.to_string()),
            bytes,
            &format!("synthesised manifest of {describe}"),
        )?;
        Ok(DockerArchiveSource {
            store,
            describe,
            root,
            config_digest,
            config_bytes,
            layers,
        })
    }
}

/// Picks the entry whose `RepoTags` hold `reference` (both sides normalised), or the only one.
fn select<'a>(
    entries: &'a [ArchiveEntry],
    reference: Option<&str>,
    describe: &str,
) -> Result<&'a ArchiveEntry, RegistryError> {
    let tags_of = |e: &ArchiveEntry| e.repo_tags.clone().unwrap_or_default();
    let all_tags = || entries.iter().flat_map(tags_of).collect::<Vec<_>>();
    match reference {
        Some(r) => {
            let wanted: ImageRef = r.parse().map_err(|e| RegistryError::InvalidSource {
                input: r.to_string(),
                reason: "not a REPO:TAG reference".to_string(),
                source: Some(e),
            })?;
            entries
                .iter()
                .find(|e| {
                    tags_of(e)
                        .iter()
                        .filter_map(|t| t.parse::<ImageRef>().ok())
                        .any(|t| t.name() == wanted.name() && t.tag() == wanted.tag())
                })
                .ok_or_else(|| {
                    let tags = all_tags();
                    RegistryError::NotFound {
                        what: "tag",
                        reference: format!(
                            "{wanted} in {describe} (RepoTags: {})",
                            if tags.is_empty() {
                                "none".to_string()
                            } else {
                                tags.join(", ")
                            }
                        ),
                    }
                })
        }
        None => match entries {
            [] => Err(RegistryError::MalformedImage {
                reason: format!("{describe}: manifest.json lists no images"),
            }),
            [only] => Ok(only),
            _ => Err(RegistryError::Ambiguous {
                location: describe.to_string(),
                available: all_tags(),
            }),
        },
    }
}

/// `blobs/sha256/<hex>` → that digest (Docker ≥ 25 writes layers OCI-layout style).
fn oci_style_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

/// Media type from a layer's first bytes: `docker save` does not record it.
fn sniff_layer_media_type(magic: &[u8]) -> &'static str {
    match magic {
        [0x1f, 0x8b, ..] => media_type::DOCKER_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => media_type::OCI_LAYER_ZSTD,
        _ => media_type::DOCKER_LAYER_TAR,
    }
}

#[async_trait::async_trait]
impl ImageSource for DockerArchiveSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn root(&self) -> Result<Document, RegistryError> {
        Ok(self.root.clone())
    }

    async fn manifest(&self, desc: &Descriptor) -> Result<Document, RegistryError> {
        if desc.digest == self.root.digest {
            return Ok(self.root.clone());
        }
        Err(RegistryError::NotFound {
            what: "manifest",
            reference: format!("{} in {}", desc.digest, self.describe),
        })
    }

    async fn config(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let what = format!("config {} in {}", desc.digest, self.describe);
        if desc.digest != self.config_digest {
            return Err(RegistryError::NotFound {
                what: "blob",
                reference: what,
            });
        }
        check_announced_size(&what, desc, self.config_bytes.len() as u64)?;
        verify_content(&what, desc, &self.config_bytes)?;
        Ok(self.config_bytes.clone())
    }

    async fn blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        let path = self
            .layers
            .get(&desc.digest)
            .ok_or_else(|| RegistryError::NotFound {
                what: "blob",
                reference: format!("{} in {}", desc.digest, self.describe),
            })?;
        self.store.open(path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_reads_paths() {
        assert_eq!(
            sniff_layer_media_type(&[0x1f, 0x8b, 8, 0]),
            media_type::DOCKER_LAYER_GZIP
        );
        assert_eq!(
            sniff_layer_media_type(&[0x28, 0xb5, 0x2f, 0xfd]),
            media_type::OCI_LAYER_ZSTD
        );
        assert_eq!(
            sniff_layer_media_type(b"etc/"),
            media_type::DOCKER_LAYER_TAR
        );
        assert_eq!(sniff_layer_media_type(&[]), media_type::DOCKER_LAYER_TAR);
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            oci_style_digest(&format!("blobs/sha256/{hex}")).map(|d| d.to_string()),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(oci_style_digest("abc/layer.tar"), None);
        assert_eq!(oci_style_digest("blobs/sha256/xyz"), None);
    }
}
