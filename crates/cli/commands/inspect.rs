//! `gantry inspect IMAGE`: what Gantry read from an image.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use gantry_analyze::{ChangeKind, OsRelease, Unknown};
use gantry_model::Digest;
use gantry_registry::ResolvedImage;
use gantry_scan::{LayerSource, ScanReport};
use serde::Serialize;

use crate::args::{Format, InspectArgs};
use crate::output;

/// The JSON document `gantry inspect --format json` prints (one per platform).
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// The image as the user named it.
    pub source: String,
    /// The resolved manifest.
    pub manifest: ManifestInfo,
    /// The index the manifest was picked from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexInfo>,
    /// Platform of this manifest.
    pub platform: String,
    /// Operating system from os-release in the final filesystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    /// Image config.
    pub config: ConfigInfo,
    /// Layers, base first.
    pub layers: Vec<LayerInfo>,
    /// Sums over the image.
    pub totals: Totals,
    /// False when a layer could not be walked (foreign or unknown media type).
    pub complete: bool,
    /// Files analyzers could not parse.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<Unknown>,
}

/// Manifest facts.
#[derive(Debug, Serialize)]
pub struct ManifestInfo {
    /// Digest of the manifest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Index facts.
#[derive(Debug, Serialize)]
pub struct IndexInfo {
    /// Digest of the index.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Platforms it offers.
    pub platforms: Vec<String>,
}

/// Config facts: the policy input's `config`, plus what a reader of an image wants to see.
#[derive(Debug, Serialize)]
pub struct ConfigInfo {
    /// Digest of the config (the image ID).
    pub digest: Digest,
    /// User, env, entrypoint, cmd, working dir, ports, history.
    #[serde(flatten)]
    pub config: gantry_gate::ConfigInfo,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created: Option<String>,
}

/// One layer: the policy input's `layers[]`, plus whiteouts and where the result came from.
#[derive(Debug, Serialize)]
pub struct LayerInfo {
    /// Digest, sizes, files, history step.
    #[serde(flatten)]
    pub layer: gantry_gate::LayerInfo,
    /// Whiteouts: paths this layer deletes from lower layers (` (opaque)` marks opaque ones).
    pub whiteouts: Vec<String>,
    /// walked, cached or skipped.
    pub source: LayerSource,
    /// Why the layer was not walked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Image totals.
#[derive(Debug, Serialize)]
pub struct Totals {
    /// Layer count.
    pub layers: usize,
    /// Sum of blob sizes.
    pub compressed_size: u64,
    /// Sum of uncompressed layer sizes.
    pub uncompressed_size: u64,
    /// Paths in the final filesystem.
    pub final_paths: usize,
    /// Bytes of regular files in the final filesystem.
    pub final_file_bytes: u64,
    /// Entries shipped but deleted by a later layer.
    pub deleted_entries: usize,
    /// Entries shipped but overwritten by a later layer.
    pub overwritten_entries: usize,
    /// Bytes shipped in layers but not visible in the final filesystem.
    pub hidden_bytes: u64,
}

pub async fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let source = super::open_source(&args.image, &args.source, &args.scan).await?;
    let images = if args.all_platforms {
        gantry_registry::resolve_all_platforms(source.as_ref()).await
    } else {
        gantry_registry::resolve_one(source.as_ref(), args.platform.as_ref())
            .await
            .map(|i| vec![i])
    }
    .with_context(|| format!("reading {}", args.image))?;
    let scanner = super::scanner(&args.scan)?;
    let mut reports = Vec::with_capacity(images.len());
    for image in &images {
        let scan = scanner.scan(&source, image).await.with_context(|| {
            format!("walking the layers of {} ({})", args.image, image.platform)
        })?;
        reports.push(build(&args.image.to_string(), image, &scan));
    }
    match args.format {
        Format::Json if args.all_platforms => output::json(&reports)?,
        Format::Json => {
            for r in &reports {
                output::json(r)?;
            }
        }
        Format::Table => {
            for r in &reports {
                output::text(&output::inspect_table(r))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build(source: &str, image: &ResolvedImage, scan: &ScanReport) -> InspectReport {
    let layers: Vec<LayerInfo> = gantry_gate::input::layer_infos(image, scan, None)
        .into_iter()
        .zip(&scan.layers)
        .map(|(layer, l)| LayerInfo {
            layer,
            whiteouts: l
                .layer
                .iter()
                .flat_map(|w| &w.report.whiteouts)
                .map(|wh| {
                    if wh.opaque {
                        format!("{}/ (opaque)", wh.path)
                    } else {
                        wh.path.clone()
                    }
                })
                .collect(),
            source: l.source,
            skipped: l.skipped.clone(),
        })
        .collect();
    let fs = &scan.filesystem;
    let totals = Totals {
        layers: layers.len(),
        compressed_size: layers.iter().map(|l| l.layer.compressed_size).sum(),
        uncompressed_size: layers
            .iter()
            .filter_map(|l| l.layer.uncompressed_size)
            .sum(),
        final_paths: fs.files.len(),
        final_file_bytes: fs.visible_bytes(),
        deleted_entries: fs
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Deleted)
            .count(),
        overwritten_entries: fs
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Overwritten)
            .count(),
        hidden_bytes: fs.hidden_bytes(),
    };
    InspectReport {
        source: source.to_string(),
        manifest: ManifestInfo {
            digest: image.manifest_digest.clone(),
            media_type: image.manifest_media_type.clone(),
            annotations: image
                .manifest
                .annotations
                .as_ref()
                .map(gantry_gate::input::redacted_map)
                .unwrap_or_default(),
        },
        index: image.index.as_ref().map(|i| IndexInfo {
            digest: i.digest.clone(),
            media_type: i.media_type.clone(),
            platforms: i.platforms.iter().map(ToString::to_string).collect(),
        }),
        platform: image.platform.to_string(),
        os: gantry_gate::input::final_os_release(scan),
        config: ConfigInfo {
            digest: image.config_digest.clone(),
            config: gantry_gate::input::config_info(&image.config),
            labels: gantry_gate::input::redacted_map(&image.config.config.labels),
            created: image.config.created.clone(),
        },
        layers,
        totals,
        complete: scan.complete,
        unknowns: scan
            .layers
            .iter()
            .filter_map(|l| l.layer.as_ref())
            .flat_map(|l| l.report.unknowns.iter().cloned())
            .collect(),
    }
}
