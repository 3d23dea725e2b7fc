//! `facts.secrets`: credentials in every layer (deleted files included: they still ship) and
//! in the config's `Env` and `history`.

use gantry_model::Location;
use gantry_model::oci::{ContainerConfig, History};
use serde::{Deserialize, Serialize};

use super::Layers;
use crate::Filesystem;
use crate::analyzers::secrets::scan_text;

/// Where a secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// A file in a layer.
    File,
    /// The config's `Env`.
    Env,
    /// A history `created_by`.
    History,
}

/// `facts.secrets[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecretFact {
    /// Stable rule id.
    pub rule: String,
    /// What the rule detects.
    pub description: String,
    /// file | env | history.
    pub source: SecretSource,
    /// The file is not visible in the final filesystem (a later layer deleted it or put a
    /// different entry at its path): it still ships in its layer. Always false for config.
    pub deleted: bool,
    /// Redacted form; never the secret.
    pub redacted: String,
    /// A file: layer, index, path. Env: `{"field": "config.Env"}`. History:
    /// `{"field": "history[N]"}` (N indexes the config's `history`, empty layers included).
    pub location: Location,
}

pub(crate) fn derive(
    layers: &Layers<'_>,
    fs: &Filesystem,
    config: &ContainerConfig,
    history: &[History],
) -> Vec<SecretFact> {
    let mut out = Vec::new();
    for l in layers.all() {
        for hit in &l.report.secrets {
            let visible = fs.get(&hit.path).is_some_and(|f| f.layer == l.index);
            out.push(SecretFact {
                rule: hit.rule.clone(),
                description: hit.description.clone(),
                source: SecretSource::File,
                deleted: !visible,
                redacted: hit.redacted.clone(),
                location: layers.location(l.index, &hit.path),
            });
        }
    }
    let field = |f: String| Location {
        field: Some(f),
        ..Location::default()
    };
    for entry in &config.env {
        for m in scan_text(entry) {
            out.push(SecretFact {
                rule: m.rule.to_string(),
                description: m.description.to_string(),
                source: SecretSource::Env,
                deleted: false,
                redacted: m.redacted,
                location: field("config.Env".into()),
            });
        }
    }
    for (i, h) in history.iter().enumerate() {
        let Some(text) = h.created_by.as_deref() else {
            continue;
        };
        for m in scan_text(text) {
            out.push(SecretFact {
                rule: m.rule.to_string(),
                description: m.description.to_string(),
                source: SecretSource::History,
                deleted: false,
                redacted: m.redacted,
                location: field(format!("history[{i}]")),
            });
        }
    }
    // History steps in numeric order (`history[10]` after `history[9]`).
    let step = |l: &Location| {
        l.field
            .as_deref()
            .and_then(|f| f.strip_prefix("history["))
            .and_then(|f| f.strip_suffix(']'))
            .and_then(|n| n.parse::<usize>().ok())
    };
    out.sort_by(|a, b| {
        (
            a.source,
            a.location.layer_index,
            &a.location.path,
            step(&a.location),
            &a.rule,
            &a.redacted,
        )
            .cmp(&(
                b.source,
                b.location.layer_index,
                &b.location.path,
                step(&b.location),
                &b.rule,
                &b.redacted,
            ))
    });
    out
}
