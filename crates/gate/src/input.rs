//! The policy input document, version 1 (docs/policies/input.md), built from one scan.

use std::collections::BTreeMap;

use gantry_analyze::{LayerFacts, OsRelease, redact_assignment, redact_env, redact_text};
use gantry_model::Digest;
use gantry_model::oci::{History, ImageConfig};
use gantry_registry::ResolvedImage;
use gantry_scan::ScanReport;
use serde::{Deserialize, Serialize};

/// Version of the input document. Fields may be added within a version, never removed or
/// changed in meaning.
pub const INPUT_VERSION: u32 = 1;

/// `input.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The image as the user named it.
    pub source: String,
    /// Normalised registry reference, for registry sources.
    pub reference: Option<String>,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest media type.
    pub media_type: String,
    /// Config digest (the image ID).
    pub config_digest: Digest,
    /// Digest of the index the manifest was picked from.
    pub index_digest: Option<Digest>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
}

/// One history step, with the layer it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStep {
    /// The build step.
    pub created_by: Option<String>,
    /// When it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    pub empty_layer: bool,
    /// The layer this step made (by convention the i-th non-empty step made layer i).
    pub layer_index: Option<usize>,
}

/// `input.config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigInfo {
    /// USER as written.
    pub user: String,
    /// Environment.
    pub env: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: String,
    /// Exposed ports, e.g. `8080/tcp`.
    pub exposed_ports: Vec<String>,
    /// Build history.
    pub history: Vec<HistoryStep>,
    /// `HEALTHCHECK` test as recorded (`["CMD-SHELL", "curl -f …"]`; `["NONE"]` disables an
    /// inherited one); null when the config has none.
    #[serde(default)]
    pub healthcheck: Option<Vec<String>>,
}

/// `input.layers[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Position (0 = base).
    pub index: usize,
    /// Blob digest.
    pub digest: Digest,
    /// Diff ID as measured (the config's when the layer was not walked).
    pub diff_id: Option<Digest>,
    /// Media type.
    pub media_type: String,
    /// Blob size.
    pub compressed_size: u64,
    /// Uncompressed size, when walked.
    pub uncompressed_size: Option<u64>,
    /// Entries (files, directories, links, devices), when walked.
    pub files: Option<usize>,
    /// The history step that made this layer.
    pub created_by: Option<String>,
    /// Whether the layer belongs to the base image, when known exactly.
    pub in_base: Option<bool>,
    /// False for layers that were not walked (foreign, unknown media type).
    pub walked: bool,
}

/// `input.context`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Evaluation time, RFC 3339 UTC (exceptions expire against it).
    pub now: String,
    /// Who asks: `cli`, `webhook`, `admission`.
    pub mode: String,
    /// What `gantry serve` last saw the base's tag point at; absent when it has not checked
    /// (and always for the CLI, which judges the image as it stands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseFreshness>,
}

/// `input.context.base`: the freshness of the recorded base. Not a fact of the image (it
/// changes when the base's tag moves, the image does not), so it is context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFreshness {
    /// The tag checked, `repository:tag`.
    pub reference: String,
    /// The digest the image records.
    pub recorded_digest: String,
    /// What the tag pointed at when last checked.
    pub current_digest: Option<String>,
    /// When it was last checked, RFC 3339 UTC.
    pub checked_at: String,
    /// The tag no longer points at the recorded digest (nor at an index holding it).
    pub outdated: bool,
    /// Since when Gantry has seen it point elsewhere, RFC 3339 UTC; null while fresh.
    pub outdated_since: Option<String>,
}

/// Labels or annotations for a report: secret-looking values redacted.
pub fn redacted_map(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), redact_assignment(k, v)))
        .collect()
}

/// Builds `input.image`. Label and annotation values that look secret are redacted
/// (`gantry_analyze::redact_assignment`): the input document is printed and stored.
pub fn image_info(source: &str, image: &ResolvedImage) -> ImageInfo {
    ImageInfo {
        source: source.to_string(),
        reference: image
            .reference
            .as_ref()
            .map(|r| r.with_digest(image.manifest_digest.clone()).to_string()),
        digest: image.manifest_digest.clone(),
        media_type: image.manifest_media_type.clone(),
        config_digest: image.config_digest.clone(),
        index_digest: image.index.as_ref().map(|i| i.digest.clone()),
        platform: image.platform.to_string(),
        annotations: image
            .manifest
            .annotations
            .as_ref()
            .map(redacted_map)
            .unwrap_or_default(),
        labels: redacted_map(&image.config.config.labels),
    }
}

/// History steps with the layer each made; secrets in `created_by` and `comment` redacted
/// (`gantry_analyze::redact_text`).
pub fn history_steps(history: &[History]) -> Vec<HistoryStep> {
    let mut next_layer = 0;
    history
        .iter()
        .map(|h| {
            let layer_index = (!h.empty_layer).then(|| {
                next_layer += 1;
                next_layer - 1
            });
            HistoryStep {
                created_by: h.created_by.as_deref().map(redact_text),
                created: h.created.clone(),
                comment: h.comment.as_deref().map(redact_text),
                empty_layer: h.empty_layer,
                layer_index,
            }
        })
        .collect()
}

/// Builds `input.config`. Secret-named `Env` values become `NAME=<redacted>`, and secrets
/// in the history and in `Entrypoint`/`Cmd` arguments are redacted: the input document is
/// printed and stored, while the secret facts (`input.facts.secrets`) are derived from the
/// raw config and still say what was there.
pub fn config_info(config: &ImageConfig) -> ConfigInfo {
    let c = &config.config;
    let argv = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|args| args.iter().map(|a| redact_text(a)).collect())
    };
    ConfigInfo {
        user: c.user.clone(),
        env: c.env.iter().map(|e| redact_env(e)).collect(),
        entrypoint: argv(&c.entrypoint),
        cmd: argv(&c.cmd),
        working_dir: c.working_dir.clone(),
        exposed_ports: c.exposed_ports.keys().cloned().collect(),
        history: history_steps(&config.history),
        healthcheck: c.healthcheck.as_ref().map(|h| h.test.clone()),
    }
}

/// Builds `input.layers`; `base_layers` marks layers known to belong to the base.
pub fn layer_infos(
    image: &ResolvedImage,
    scan: &ScanReport,
    base_layers: Option<&[usize]>,
) -> Vec<LayerInfo> {
    let steps = history_steps(&image.config.history);
    scan.layers
        .iter()
        .map(|l| {
            let walked = l.layer.as_ref();
            LayerInfo {
                index: l.index,
                digest: l.descriptor.digest.clone(),
                diff_id: walked
                    .map(|w| w.stats.diff_id.clone())
                    .or_else(|| image.config.rootfs.diff_ids.get(l.index).cloned()),
                media_type: l.descriptor.media_type.clone(),
                compressed_size: l.descriptor.size,
                uncompressed_size: walked.map(|w| w.stats.uncompressed_size),
                files: walked.map(|w| w.report.files.len()),
                created_by: steps
                    .iter()
                    .find(|s| s.layer_index == Some(l.index))
                    .and_then(|s| s.created_by.clone()),
                in_base: base_layers.map(|b| b.contains(&l.index)),
                walked: walked.is_some(),
            }
        })
        .collect()
}

/// The layers that were walked, as gantry-analyze's fact functions take them.
pub fn walked_layers(scan: &ScanReport) -> Vec<LayerFacts<'_>> {
    scan.layers
        .iter()
        .filter_map(|l| {
            l.layer.as_ref().map(|w| LayerFacts {
                index: l.index,
                digest: &l.descriptor.digest,
                report: &w.report,
            })
        })
        .collect()
}

/// The os-release visible in the final filesystem (`etc/os-release` first, as systemd reads it).
pub fn final_os_release(scan: &ScanReport) -> Option<OsRelease> {
    gantry_analyze::final_os_release(&walked_layers(scan), &scan.filesystem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_maps_non_empty_steps_to_layers() {
        let h = |by: &str, empty: bool| History {
            created_by: Some(by.into()),
            empty_layer: empty,
            ..History::default()
        };
        let steps = history_steps(&[h("ADD", false), h("ENV", true), h("RUN", false)]);
        let idx: Vec<_> = steps.iter().map(|s| s.layer_index).collect();
        assert_eq!(idx, vec![Some(0), None, Some(1)]);
    }
}
