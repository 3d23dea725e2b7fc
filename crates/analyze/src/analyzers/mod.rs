//! The analyzer contract and the explicit list of built-in analyzers.

use std::fmt::Debug;

use gantry_model::fs::FileEntry;
use sha2::{Digest as _, Sha256};

use crate::LayerReport;

pub mod apk;
pub mod dpkg;
pub mod os_release;
pub mod passwd;
pub mod secrets;
pub mod toolchain;

/// Which files an analyzer wants, and how much of each.
///
/// Most analyzers name their files with globs (`etc/passwd`, `var/lib/dpkg/info/*.list`):
/// the dispatcher matches every entry against one compiled `GlobSet`, so an analyzer that
/// wants three paths costs nothing on the other 100,000. An analyzer that must see (almost)
/// every file — the secrets scanner — sets [`Interest::every_file`] instead: a cheap test on
/// the entry (name, size, mode) decides, before any byte is read, whether the file is read
/// for it at all. Either way a file's content is read once, into one buffer, as far as the
/// greediest interested analyzer's budget.
#[derive(Debug, Clone)]
pub struct Interest {
    /// Globs over normalised paths (no leading `/`), e.g. `etc/os-release`, `**/*.dist-info/METADATA`.
    pub globs: &'static [&'static str],
    /// At most this many bytes of a matching file are read. Bounds memory per entry no
    /// matter what a layer claims; a larger file arrives truncated, with `complete = false`.
    pub max_bytes: usize,
    /// Also receive regular files that no glob of this analyzer matched, when the filter
    /// accepts them.
    pub every_file: Option<EveryFile>,
}

impl Interest {
    /// Files matching `globs`, at most `max_bytes` of each.
    pub fn paths(globs: &'static [&'static str], max_bytes: usize) -> Interest {
        Interest {
            globs,
            max_bytes,
            every_file: None,
        }
    }
}

/// An interest in every regular file the filter accepts (see [`Interest::every_file`]).
#[derive(Debug, Clone, Copy)]
pub struct EveryFile {
    /// At most this many bytes of each file are read (`complete = false` beyond).
    pub max_bytes: usize,
    /// Decides from the entry alone (path, size, mode) whether to read the file for this
    /// analyzer. Runs for every regular file of every layer: keep it to a few comparisons.
    pub wants: fn(&FileEntry) -> bool,
}

/// An analyzer: declares interest up front and creates per-layer state.
///
/// Analyzers never see the tar stream; the walker pushes matching entries to them.
pub trait Analyzer: Send + Sync + Debug {
    /// Stable kebab-case id, part of the cache fingerprint.
    fn id(&self) -> &'static str;
    /// Bump when the output for the same input changes: cached layer results then expire.
    fn version(&self) -> u32;
    /// Which files to receive.
    fn interest(&self) -> Interest;
    /// Fresh state for one layer (layers are analysed in parallel, each with its own state).
    fn start_layer(&self) -> Box<dyn LayerAnalysis>;
}

/// One analyzer's state while one layer is walked.
pub trait LayerAnalysis: Send {
    /// A matching regular file. `content` holds at most `Interest::max_bytes` of it;
    /// `complete` is false when the file was longer.
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool);
    /// Adds what was found to the layer's report.
    fn finish(self: Box<Self>, report: &mut LayerReport);
}

/// Every built-in analyzer, in a fixed order. Nothing registers itself by side effect: to add
/// an analyzer, add a module and a line here.
pub fn builtin() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(os_release::OsReleaseAnalyzer),
        Box::new(passwd::PasswdAnalyzer),
        Box::new(dpkg::DpkgAnalyzer),
        Box::new(apk::ApkAnalyzer),
        Box::new(toolchain::ToolchainAnalyzer),
        Box::new(secrets::SecretsAnalyzer),
    ]
}

/// Version of the layer-report format itself (the walker's file list and whiteouts); part of
/// the fingerprint so a change of [`LayerReport`]'s shape invalidates old cache entries.
/// 2: passwd/group, packages, file lists, source maps and secrets fields.
const REPORT_FORMAT: u32 = 2;

/// A short, stable fingerprint of an analyzer set: `v1-` + 16 hex digits of the SHA-256 of
/// the report format and every `id@version`, in order.
pub fn fingerprint(analyzers: &[Box<dyn Analyzer>]) -> String {
    let mut h = Sha256::new();
    h.update(format!("report@{REPORT_FORMAT}").as_bytes());
    for a in analyzers {
        h.update(format!(";{}@{}", a.id(), a.version()).as_bytes());
    }
    let digest = h.finalize();
    format!("v1-{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case() {
        let all = builtin();
        let mut ids: Vec<&str> = all.iter().map(|a| a.id()).collect();
        for id in &ids {
            assert!(
                id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{id}"
            );
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate analyzer id");
    }

    #[test]
    fn fingerprint_is_stable_and_changes_with_versions() {
        let a = fingerprint(&builtin());
        assert_eq!(a, fingerprint(&builtin()));
        assert_ne!(a, fingerprint(&[]));
    }
}
