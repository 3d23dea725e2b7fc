//! The analyzer contract and the explicit list of built-in analyzers.

use std::fmt::Debug;

use gantry_model::fs::FileEntry;
use sha2::{Digest as _, Sha256};

use crate::{Budget, LayerReport};

pub mod apk;
pub mod dpkg;
pub(crate) mod elf;
pub mod go_buildinfo;
pub mod java;
pub mod npm;
pub mod os_release;
pub mod passwd;
pub mod python;
pub mod rpm;
pub mod rust_auditable;
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
    /// Bytes the analyzer may allocate, beyond the content buffer, while it handles one
    /// matching file whose content is `len` bytes (SQLite's copy of a database, the
    /// archives nested in a Java archive). Reserved with the content in the scan's
    /// [`MemoryBudget`](crate::MemoryBudget) before the file is read.
    pub working_bytes: fn(len: usize) -> usize,
}

/// No working memory beyond the content: [`Interest::working_bytes`] of most analyzers.
pub fn no_working_bytes(_len: usize) -> usize {
    0
}

impl Interest {
    /// Files matching `globs`, at most `max_bytes` of each.
    pub fn paths(globs: &'static [&'static str], max_bytes: usize) -> Interest {
        Interest {
            globs,
            max_bytes,
            every_file: None,
            working_bytes: no_working_bytes,
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

/// An interest in files recognised by their first bytes, whose content is streamed to the
/// analyzer rather than buffered (see [`Analyzer::stream_interest`]).
///
/// For files that can be large and whose interesting part may lie anywhere — the build info
/// of a Go binary, the `.dep-v0` section of a Rust one. The dispatcher runs `wants` on the
/// entry (a few comparisons, for every regular file), reads the first [`SNIFF_BYTES`] of a
/// file it accepts, and only when they start with `magic` hands the analyzer the whole
/// content in pieces of at most [`STREAM_CHUNK`] bytes, in order, through the same single
/// read of the entry. The analyzer keeps what it needs, so its memory is bounded by what it
/// chooses to keep, not by the file size; it may decline the rest of a file at any point.
#[derive(Debug, Clone, Copy)]
pub struct StreamInterest {
    /// Decides from the entry alone (path, size, mode) whether the file is a candidate.
    /// Runs for every regular file of every layer: keep it to a few comparisons.
    pub wants: fn(&FileEntry) -> bool,
    /// The bytes a candidate's content must start with (at most [`SNIFF_BYTES`]).
    pub magic: &'static [u8],
}

/// How many leading bytes of a stream candidate are read to compare with its magic: enough
/// for an ELF header (64 bytes), so a stream analyzer's first piece always holds one.
pub const SNIFF_BYTES: usize = 64;

/// The largest piece of a streamed file handed to an analyzer at once (after the first,
/// which is as long as the buffered read of that entry).
pub const STREAM_CHUNK: usize = 256 * 1024;

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
    /// Further glob interests, each with its own byte budget, for an analyzer whose files
    /// need different budgets (the rpm analyzer reads a whole SQLite database but only the
    /// name of a BerkeleyDB one). Their `every_file` is ignored.
    fn extra_interests(&self) -> Vec<Interest> {
        Vec::new()
    }
    /// Files recognised by content and streamed (see [`StreamInterest`]); they arrive
    /// through [`LayerAnalysis::stream_start`], [`LayerAnalysis::stream`] and
    /// [`LayerAnalysis::stream_end`] instead of [`LayerAnalysis::file`].
    fn stream_interest(&self) -> Option<StreamInterest> {
        None
    }
    /// Fresh state for one layer (layers are analysed in parallel, each with its own state).
    /// Every package, listed path and finding the state keeps is charged to `budget` as it is
    /// created ([`Budget::charge`]); what a charge refuses is dropped, and the dispatcher
    /// fails the walk.
    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis>;
}

/// One analyzer's state while one layer is walked.
pub trait LayerAnalysis: Send {
    /// A matching regular file. `content` holds at most `Interest::max_bytes` of it;
    /// `complete` is false when the file was longer.
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool);
    /// A stream candidate whose first bytes matched the magic: its pieces follow.
    fn stream_start(&mut self, _entry: &FileEntry) {}
    /// The next piece of the streamed file, starting at byte `offset` of its content.
    /// Returns whether the analyzer wants more of this file.
    fn stream(&mut self, _entry: &FileEntry, _offset: u64, _piece: &[u8]) -> bool {
        false
    }
    /// The end of a streamed file: the content ended, or the analyzer declined the rest.
    fn stream_end(&mut self, _entry: &FileEntry) {}
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
        Box::new(rpm::RpmAnalyzer),
        Box::new(python::PythonAnalyzer),
        Box::new(npm::NpmAnalyzer),
        Box::new(go_buildinfo::GoBuildinfoAnalyzer),
        Box::new(rust_auditable::RustAuditableAnalyzer),
        Box::new(java::JavaAnalyzer),
        Box::new(toolchain::ToolchainAnalyzer),
        Box::new(secrets::SecretsAnalyzer),
    ]
}

/// Version of the layer-report format itself (the walker's file list and whiteouts); part of
/// the fingerprint so a change of [`LayerReport`]'s shape invalidates old cache entries.
/// 2: passwd/group, packages, file lists, source maps and secrets fields.
/// 3: packages of every ecosystem with namespace, licenses, dependencies, cataloger; dpkg
/// copyright files.
/// 5: passwd/group read as the container runtime reads them (every line, ids as i64).
const REPORT_FORMAT: u32 = 5;

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
