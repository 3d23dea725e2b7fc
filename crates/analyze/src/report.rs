use gantry_model::fs::{FileEntry, Whiteout};
use serde::{Deserialize, Serialize};

use crate::OsRelease;
use crate::analyzers::npm::{NpmLockfile, NpmProject};
use crate::analyzers::passwd::{GroupFile, PasswdFile};
use crate::analyzers::secrets::SecretHit;
use crate::package::{CopyrightFile, FileList, Package};

/// Everything one walk of one layer produced. Cached on disk by (layer digest, analyzer
/// fingerprint), so it must hold all that later stages need: nothing re-reads the layer.
///
/// Analyzer results are per layer and keyed by path; which of them count for the image is
/// decided by [`crate::facts`] against the squashed filesystem (the `etc/passwd` a later
/// layer replaced does not resolve users; a key it deleted still ships).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Every non-whiteout entry, in tar order.
    pub files: Vec<FileEntry>,
    /// Every whiteout, in tar order.
    pub whiteouts: Vec<Whiteout>,
    /// `/etc/os-release` or `/usr/lib/os-release`, when this layer ships one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_release: Vec<(String, OsRelease)>,
    /// Parsed `passwd` files (`etc/passwd` and the few places it may link to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passwd: Vec<PasswdFile>,
    /// Parsed `group` files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupFile>,
    /// Installed packages of every package database, manifest and binary this layer ships
    /// (dpkg, apk, rpm, Python, npm, Go, Rust, Java), each with the file it was read from in
    /// `location.path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    /// dpkg file lists (`var/lib/dpkg/info/*.list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_lists: Vec<FileList>,
    /// Licenses named by Debian copyright files (`usr/share/doc/*/copyright`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copyrights: Vec<CopyrightFile>,
    /// `*.map` files whose content is a source map.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_maps: Vec<String>,
    /// Credentials found in this layer's files (redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretHit>,
    /// Go executables and the import path of their main package (from the embedded build
    /// info), e.g. `(usr/local/bin/tool, "cmd/go")`: the content-based identity of Go
    /// toolchain binaries, whatever their file name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go_mains: Vec<(String, String)>,
    /// Go executables and the functions of `go_buildinfo::GO_SYMBOLS` their function table
    /// names (TLS verification against the system store, time-zone loading, embedded roots
    /// and zones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go_symbols: Vec<(String, Vec<String>)>,
    /// npm projects' own `package.json` files (their direct and development dependencies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub npm_projects: Vec<NpmProject>,
    /// npm lockfiles, with the installed paths they mark as development-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub npm_lockfiles: Vec<NpmLockfile>,
    /// Files an analyzer wanted but could not understand: reported, never silently skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<Unknown>,
}

/// A file an analyzer could not parse (or could only partly read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    /// Analyzer id.
    pub analyzer: String,
    /// Path in the layer (empty when the unknown is about the layer as a whole).
    pub path: String,
    /// What went wrong.
    pub reason: String,
}
