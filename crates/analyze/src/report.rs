use gantry_model::fs::{FileEntry, Whiteout};
use serde::{Deserialize, Serialize};

use crate::OsRelease;

/// Everything one walk of one layer produced. Cached on disk by (layer digest, analyzer
/// fingerprint), so it must hold all that later stages need: nothing re-reads the layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Every non-whiteout entry, in tar order.
    pub files: Vec<FileEntry>,
    /// Every whiteout, in tar order.
    pub whiteouts: Vec<Whiteout>,
    /// `/etc/os-release` or `/usr/lib/os-release`, when this layer ships one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_release: Vec<(String, OsRelease)>,
    /// Files an analyzer wanted but could not understand: reported, never silently skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<Unknown>,
}

/// A file an analyzer could not parse (or could only partly read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    /// Analyzer id.
    pub analyzer: String,
    /// Path in the layer.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}
