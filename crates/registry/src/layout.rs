//! OCI image layouts (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), from a directory or a
//! tar archive.

use std::collections::BTreeSet;

use gantry_model::oci::{Descriptor, DocumentKind, ImageIndex};
use gantry_model::{Digest, DigestAlgorithm};

use crate::document::{Document, check_announced_size, digest_of, verify_content};
use crate::error::RegistryError;
use crate::local::{Store, read_capped};
use crate::source::{BlobStream, FetchLimits, ImageSource};

/// Annotation naming an `index.json` entry (the tag of `oci:DIR:TAG`).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name (`ctr export`, nerdctl, Docker ≥ 25).
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Largest `oci-layout` file read: it holds one short JSON object.
const MAX_LAYOUT_FILE_BYTES: u64 = 64 * 1024;

/// What `root()` returns.
#[derive(Debug)]
enum Root {
    /// The `index.json` entry selected by tag (or the only one).
    Entry(Box<Descriptor>),
    /// `index.json` itself, when it lists per-platform manifests directly and no tag was given.
    IndexJson(Box<Document>),
}

/// An OCI image layout over any [`Store`].
#[derive(Debug)]
pub(crate) struct LayoutSource<S: Store> {
    store: S,
    describe: String,
    root: Root,
    limits: FetchLimits,
}

pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

impl<S: Store> LayoutSource<S> {
    pub(crate) async fn open(
        store: S,
        tag: Option<&str>,
        describe: String,
        limits: &FetchLimits,
    ) -> Result<Self, RegistryError> {
        let location = store.location().display().to_string();
        let not_layout = |why: &str| RegistryError::MalformedImage {
            reason: format!("{location} is not an OCI image layout: {why}"),
        };
        match store.size("oci-layout").await? {
            None => return Err(not_layout("it has no oci-layout file")),
            Some(_) => {
                let bytes = read_capped(
                    &store,
                    "oci-layout",
                    MAX_LAYOUT_FILE_BYTES,
                    "oci-layout file",
                )
                .await?;
                let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|source| {
                    RegistryError::InvalidJson {
                        what: format!("oci-layout file of {location}"),
                        source,
                    }
                })?;
                let version = v
                    .get("imageLayoutVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                if !version.starts_with("1.") {
                    return Err(not_layout(&format!(
                        "unsupported imageLayoutVersion {version:?} (1.x is read)"
                    )));
                }
            }
        }
        if store.size("index.json").await?.is_none() {
            return Err(not_layout("it has no index.json"));
        }
        let what = format!("index.json of {location}");
        let bytes = read_capped(&store, "index.json", limits.max_manifest_bytes, &what).await?;
        let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
        let doc = Document::parse(digest, None, bytes, &what)?;
        let Some(index) = doc.index.clone() else {
            return Err(not_layout("index.json is not an image index"));
        };
        let root = select(&index, tag, &describe, doc)?;
        Ok(LayoutSource {
            store,
            describe,
            root,
            limits: limits.clone(),
        })
    }

    async fn read_blob(
        &self,
        desc: &Descriptor,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        check_announced_size(what, desc, limit)?;
        let path = blob_path(&desc.digest);
        if self.store.size(&path).await?.is_none() {
            return Err(self.missing(desc));
        }
        let bytes = read_capped(&self.store, &path, limit, what).await?;
        verify_content(what, desc, &bytes)?;
        Ok(bytes)
    }

    fn missing(&self, desc: &Descriptor) -> RegistryError {
        RegistryError::NotFound {
            what: "blob",
            reference: format!("{} in {}", desc.digest, self.describe),
        }
    }
}

/// Picks the `index.json` entry for `tag`, or the only entry.
fn select(
    index: &ImageIndex,
    tag: Option<&str>,
    describe: &str,
    index_doc: Document,
) -> Result<Root, RegistryError> {
    let names = |d: &Descriptor| -> Vec<String> {
        let a = d.annotations.as_ref();
        [REF_NAME, CONTAINERD_NAME]
            .iter()
            .filter_map(|k| a.and_then(|a| a.get(*k)).cloned())
            .collect()
    };
    let tags: BTreeSet<String> = index
        .manifests
        .iter()
        .filter_map(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        })
        .collect();
    match tag {
        Some(tag) => index
            .manifests
            .iter()
            .find(|d| names(d).iter().any(|n| n == tag))
            .cloned()
            .map(|d| Root::Entry(Box::new(d)))
            .ok_or_else(|| RegistryError::NotFound {
                what: "tag",
                reference: format!(
                    "{describe} (tags in the layout: {})",
                    if tags.is_empty() {
                        "none".to_string()
                    } else {
                        tags.into_iter().collect::<Vec<_>>().join(", ")
                    }
                ),
            }),
        None => match index.manifests.as_slice() {
            [] => Err(RegistryError::MalformedImage {
                reason: format!("{describe}: index.json lists no images"),
            }),
            [only] => Ok(Root::Entry(Box::new(only.clone()))),
            entries => {
                // Some tools write a multi-platform image's manifests straight into index.json,
                // untagged; then index.json itself is the image index.
                let all_platform_manifests = entries
                    .iter()
                    .all(|d| d.platform.is_some() && names(d).is_empty());
                if all_platform_manifests && index_doc.kind == DocumentKind::Index {
                    Ok(Root::IndexJson(Box::new(index_doc)))
                } else {
                    Err(RegistryError::Ambiguous {
                        location: describe.to_string(),
                        available: tags.into_iter().collect(),
                    })
                }
            }
        },
    }
}

#[async_trait::async_trait]
impl<S: Store + 'static> ImageSource for LayoutSource<S> {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn root(&self) -> Result<Document, RegistryError> {
        match &self.root {
            Root::Entry(desc) => self.manifest(desc).await,
            Root::IndexJson(doc) => Ok((**doc).clone()),
        }
    }

    async fn manifest(&self, desc: &Descriptor) -> Result<Document, RegistryError> {
        let what = format!("manifest {} in {}", desc.digest, self.describe);
        let bytes = self
            .read_blob(desc, self.limits.max_manifest_bytes, &what)
            .await?;
        Document::parse(
            desc.digest.clone(),
            Some(desc.media_type.clone()),
            bytes,
            &what,
        )
    }

    async fn config(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let what = format!("config {} in {}", desc.digest, self.describe);
        self.read_blob(desc, self.limits.max_config_bytes, &what)
            .await
    }

    async fn blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        let path = blob_path(&desc.digest);
        if self.store.size(&path).await?.is_none() {
            return Err(self.missing(desc));
        }
        self.store.open(&path).await
    }
}
