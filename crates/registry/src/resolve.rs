//! From the document a source names to image manifests and configs: platform selection for
//! indexes (nested ones included) and the structural checks every image must pass.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::oci::{
    Descriptor, DocumentKind, ImageConfig, ImageIndex, ImageManifest, media_type,
};
use gantry_model::{Digest, ImageRef, Platform};

use crate::document::Document;
use crate::error::RegistryError;
use crate::source::ImageSource;

/// How deep nested indexes are followed (index → index → … → manifest). Real images use one
/// level, sometimes two; the bound stops a cycle of indexes naming each other.
pub const MAX_INDEX_DEPTH: usize = 4;

/// One image, ready to scan: manifest and config fetched, verified and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The source, as [`ImageSource::describe`] names it.
    pub source: String,
    /// The registry reference, for registry sources.
    pub reference: Option<ImageRef>,
    /// Digest of the image manifest (for a docker-archive: of the synthesised manifest).
    pub manifest_digest: Digest,
    /// Media type of the manifest.
    pub manifest_media_type: String,
    /// The manifest.
    pub manifest: ImageManifest,
    /// Digest of the config (Docker's image ID).
    pub config_digest: Digest,
    /// The parsed config.
    pub config: ImageConfig,
    /// The config exactly as stored (for policy input and provenance).
    pub config_bytes: Vec<u8>,
    /// The image's platform (from its config; the index entry's when the config omits it).
    pub platform: Platform,
    /// The index the image was selected from, when the source named an index.
    pub index: Option<IndexInfo>,
}

/// The index an image was picked from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// Digest of the index the source names (the outermost one).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Every platform it offers (nested indexes included, attestations left out), sorted.
    pub platforms: Vec<Platform>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Resolves the source to the image for `platform` (default: the host's platform, see
/// [`Platform::host`]).
///
/// An index yields the first entry whose platform matches; attestation entries
/// (`unknown/unknown`) are skipped; nested indexes are followed up to [`MAX_INDEX_DEPTH`]. A
/// source naming a single manifest yields it, unless a platform was asked for explicitly and the
/// image is for another one.
pub async fn resolve_one(
    source: &dyn ImageSource,
    platform: Option<&Platform>,
) -> Result<ResolvedImage, RegistryError> {
    let root = source.root().await?;
    let wanted = platform.cloned().unwrap_or_else(Platform::host);
    match root.kind {
        DocumentKind::Manifest => {
            let image = finish(source, &root, None, None).await?;
            if platform.is_some() && !wanted.matches(&image.platform) {
                return Err(RegistryError::NoMatchingPlatform {
                    wanted,
                    available: vec![image.platform],
                });
            }
            Ok(image)
        }
        DocumentKind::Index => {
            let info = index_info(source, &root).await?;
            let found = find_platform(source, &root, &wanted, 0).await?;
            match found {
                Some((doc, entry_platform)) => {
                    finish(source, &doc, Some(info), Some(entry_platform)).await
                }
                None => Err(RegistryError::NoMatchingPlatform {
                    wanted,
                    available: info.platforms,
                }),
            }
        }
    }
}

/// Resolves every platform image of the source (one image for a single manifest), in index
/// order, skipping attestations and duplicates.
pub async fn resolve_all_platforms(
    source: &dyn ImageSource,
) -> Result<Vec<ResolvedImage>, RegistryError> {
    let root = source.root().await?;
    match root.kind {
        DocumentKind::Manifest => Ok(vec![finish(source, &root, None, None).await?]),
        DocumentKind::Index => {
            let info = index_info(source, &root).await?;
            let mut manifests = Vec::new();
            collect_manifests(source, &root, 0, &mut manifests).await?;
            let mut seen = BTreeSet::new();
            let mut images = Vec::new();
            for (doc, platform) in manifests {
                if seen.insert(doc.digest.clone()) {
                    images.push(finish(source, &doc, Some(info.clone()), Some(platform)).await?);
                }
            }
            Ok(images)
        }
    }
}

fn index_of(doc: &Document) -> Result<&ImageIndex, RegistryError> {
    doc.index
        .as_ref()
        .ok_or_else(|| RegistryError::MalformedImage {
            reason: format!("document {} is not an index", doc.digest),
        })
}

fn is_index_type(mt: &str) -> bool {
    mt == media_type::OCI_INDEX || mt == media_type::DOCKER_MANIFEST_LIST
}

/// Entries that are indexes themselves (followed, with or without a platform).
fn nested_indexes(index: &ImageIndex) -> impl Iterator<Item = &Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| is_index_type(&d.media_type))
}

fn nesting_error(doc: &Document) -> RegistryError {
    RegistryError::MalformedImage {
        reason: format!(
            "index {} nests indexes deeper than {MAX_INDEX_DEPTH} levels",
            doc.digest
        ),
    }
}

/// Every platform offered by `doc` and its nested indexes, plus the outer index's metadata.
async fn index_info(source: &dyn ImageSource, root: &Document) -> Result<IndexInfo, RegistryError> {
    let mut platforms = BTreeSet::new();
    let mut pending = vec![(root.clone(), 0usize)];
    while let Some((doc, depth)) = pending.pop() {
        let index = index_of(&doc)?;
        platforms.extend(
            index
                .platforms()
                .into_iter()
                .filter(|(_, d)| !is_index_type(&d.media_type))
                .map(|(p, _)| p),
        );
        for nested in nested_indexes(index) {
            if depth + 1 >= MAX_INDEX_DEPTH {
                return Err(nesting_error(&doc));
            }
            pending.push((source.manifest(nested).await?, depth + 1));
        }
    }
    let index = index_of(root)?;
    Ok(IndexInfo {
        digest: root.digest.clone(),
        media_type: root
            .media_type
            .clone()
            .or_else(|| index.media_type.clone())
            .unwrap_or_else(|| media_type::OCI_INDEX.to_string()),
        platforms: platforms.into_iter().collect(),
        annotations: index.annotations.clone().unwrap_or_default(),
    })
}

/// Depth-first search for the first manifest entry matching `wanted`.
async fn find_platform(
    source: &dyn ImageSource,
    doc: &Document,
    wanted: &Platform,
    depth: usize,
) -> Result<Option<(Document, Platform)>, RegistryError> {
    let index = index_of(doc)?;
    if let Some((platform, desc)) = index
        .platforms()
        .into_iter()
        .find(|(p, d)| !is_index_type(&d.media_type) && wanted.matches(p))
    {
        let child = source.manifest(desc).await?;
        return match child.kind {
            DocumentKind::Manifest => Ok(Some((child, platform))),
            DocumentKind::Index => Err(RegistryError::MalformedImage {
                reason: format!(
                    "index entry {} for {platform} is an index, not a manifest",
                    desc.digest
                ),
            }),
        };
    }
    for nested in nested_indexes(index) {
        if depth + 1 >= MAX_INDEX_DEPTH {
            return Err(nesting_error(doc));
        }
        let child = source.manifest(nested).await?;
        if child.kind != DocumentKind::Index {
            continue;
        }
        if let Some(found) = Box::pin(find_platform(source, &child, wanted, depth + 1)).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Every platform manifest reachable from `doc`, in order.
async fn collect_manifests(
    source: &dyn ImageSource,
    doc: &Document,
    depth: usize,
    out: &mut Vec<(Document, Platform)>,
) -> Result<(), RegistryError> {
    let index = index_of(doc)?;
    let platforms: BTreeMap<Digest, Platform> = index
        .platforms()
        .into_iter()
        .map(|(p, d)| (d.digest.clone(), p))
        .collect();
    for desc in &index.manifests {
        if is_index_type(&desc.media_type) {
            if depth + 1 >= MAX_INDEX_DEPTH {
                return Err(nesting_error(doc));
            }
            let child = source.manifest(desc).await?;
            Box::pin(collect_manifests(source, &child, depth + 1, out)).await?;
        } else if let Some(platform) = platforms.get(&desc.digest) {
            let child = source.manifest(desc).await?;
            if child.kind == DocumentKind::Manifest {
                out.push((child, platform.clone()));
            }
        }
    }
    Ok(())
}

/// Fetches and checks the config of an image manifest.
async fn finish(
    source: &dyn ImageSource,
    doc: &Document,
    index: Option<IndexInfo>,
    entry_platform: Option<Platform>,
) -> Result<ResolvedImage, RegistryError> {
    let malformed = |reason: String| RegistryError::MalformedImage {
        reason: format!("{} (manifest {}): {reason}", source.describe(), doc.digest),
    };
    let manifest = doc
        .manifest
        .clone()
        .ok_or_else(|| malformed("not an image manifest".into()))?;
    if manifest.schema_version != 2 {
        return Err(malformed(format!(
            "schemaVersion is {}, expected 2",
            manifest.schema_version
        )));
    }
    let config_type = manifest.config.media_type.as_str();
    if config_type != media_type::OCI_CONFIG && config_type != media_type::DOCKER_CONFIG {
        // An artifact (Helm chart, signature, SBOM…) rather than a container image.
        return Err(RegistryError::UnsupportedMediaType {
            media_type: config_type.to_string(),
        });
    }
    let config_bytes = source.config(&manifest.config).await?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| RegistryError::InvalidJson {
            what: format!("config {} of {}", manifest.config.digest, source.describe()),
            source: e,
        })?;
    if config.rootfs.kind != "layers" {
        return Err(malformed(format!(
            "config rootfs.type is {:?}, expected \"layers\"",
            config.rootfs.kind
        )));
    }
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(malformed(format!(
            "the manifest lists {} layers but the config has {} diff_ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let platform = if config.os.is_empty() || config.architecture.is_empty() {
        entry_platform.ok_or_else(|| malformed("config has no os/architecture".into()))?
    } else {
        Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config
                .variant
                .clone()
                .or_else(|| entry_platform.and_then(|p| p.variant)),
        }
    };
    Ok(ResolvedImage {
        source: source.describe(),
        reference: source.reference().cloned(),
        manifest_digest: doc.digest.clone(),
        manifest_media_type: manifest
            .media_type
            .clone()
            .or_else(|| doc.media_type.clone())
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string()),
        config_digest: manifest.config.digest.clone(),
        config,
        config_bytes,
        manifest,
        platform,
        index,
    })
}
