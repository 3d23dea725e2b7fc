//! Routing walker entries to analyzers: one `GlobSet` match per entry, content read once.

use std::io::Read;

use gantry_layer::EntrySink;
use gantry_model::fs::{EntryKind, FileEntry, Whiteout};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::analyzers::EveryFile;
use crate::{Analyzer, LayerAnalysis, LayerReport, builtin, fingerprint};

/// An analyzer glob that does not compile: a bug in an analyzer, caught at start-up.
#[derive(Debug, thiserror::Error)]
#[error("analyzer {analyzer}: invalid glob {glob:?}")]
pub struct DispatchError {
    analyzer: &'static str,
    glob: &'static str,
    #[source]
    source: globset::Error,
}

/// A set of analyzers with their interests compiled into one matcher. Built once and shared by
/// every layer walk (it is immutable).
#[derive(Debug)]
pub struct AnalyzerSet {
    analyzers: Vec<Box<dyn Analyzer>>,
    globs: GlobSet,
    /// For each glob in `globs`, the index of the analyzer that declared it.
    glob_owner: Vec<usize>,
    /// For each analyzer, its byte budget per file.
    max_bytes: Vec<usize>,
    /// Analyzers that also want every file their filter accepts, with that budget.
    every_file: Vec<(usize, EveryFile)>,
    fingerprint: String,
}

impl AnalyzerSet {
    /// Compiles the interests of `analyzers`.
    pub fn new(analyzers: Vec<Box<dyn Analyzer>>) -> Result<AnalyzerSet, DispatchError> {
        let mut builder = GlobSetBuilder::new();
        let mut glob_owner = Vec::new();
        let mut max_bytes = Vec::new();
        let mut every_file = Vec::new();
        for (i, a) in analyzers.iter().enumerate() {
            let interest = a.interest();
            max_bytes.push(interest.max_bytes);
            if let Some(every) = interest.every_file {
                every_file.push((i, every));
            }
            for glob in interest.globs {
                // `*` must not cross `/`, as in a shell; `**` does.
                let g = GlobBuilder::new(glob)
                    .literal_separator(true)
                    .build()
                    .map_err(|source| DispatchError {
                        analyzer: a.id(),
                        glob,
                        source,
                    })?;
                builder.add(g);
                glob_owner.push(i);
            }
        }
        let globs = builder.build().map_err(|source| DispatchError {
            analyzer: "*",
            glob: "*",
            source,
        })?;
        let fingerprint = fingerprint(&analyzers);
        Ok(AnalyzerSet {
            analyzers,
            globs,
            glob_owner,
            max_bytes,
            every_file,
            fingerprint,
        })
    }

    /// The built-in analyzers ([`builtin`]).
    pub fn builtin() -> Result<AnalyzerSet, DispatchError> {
        AnalyzerSet::new(builtin())
    }

    /// The cache fingerprint of this set.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Ids and versions, for reports.
    pub fn describe(&self) -> Vec<(&'static str, u32)> {
        self.analyzers
            .iter()
            .map(|a| (a.id(), a.version()))
            .collect()
    }

    /// A sink for one layer walk.
    pub fn dispatcher(&self) -> LayerDispatcher<'_> {
        LayerDispatcher {
            set: self,
            states: self.analyzers.iter().map(|a| a.start_layer()).collect(),
            report: LayerReport::default(),
            buf: Vec::new(),
            hits: Vec::new(),
            wanted: Vec::new(),
        }
    }
}

/// The [`EntrySink`] for one layer: records the file list and feeds analyzers.
pub struct LayerDispatcher<'a> {
    set: &'a AnalyzerSet,
    states: Vec<Box<dyn LayerAnalysis>>,
    report: LayerReport,
    buf: Vec<u8>,
    hits: Vec<usize>,
    /// Interested analyzers of the current entry, with the bytes each may see.
    wanted: Vec<(usize, usize)>,
}

impl std::fmt::Debug for LayerDispatcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerDispatcher")
            .field("files", &self.report.files.len())
            .finish_non_exhaustive()
    }
}

impl LayerDispatcher<'_> {
    /// Ends the layer: every analyzer adds its findings to the report.
    pub fn finish(mut self) -> LayerReport {
        for state in self.states {
            state.finish(&mut self.report);
        }
        self.report
    }
}

impl EntrySink for LayerDispatcher<'_> {
    fn file(&mut self, entry: &FileEntry, body: &mut dyn Read) -> std::io::Result<()> {
        self.report.files.push(entry.clone());
        if entry.kind != EntryKind::File {
            return Ok(());
        }
        self.set
            .globs
            .matches_into(entry.path.as_str(), &mut self.hits);
        self.wanted.clear();
        self.wanted.extend(
            self.hits
                .iter()
                .map(|&g| self.set.glob_owner[g])
                .map(|a| (a, self.set.max_bytes[a])),
        );
        for (a, every) in &self.set.every_file {
            if !self.wanted.iter().any(|(w, _)| w == a) && (every.wants)(entry) {
                self.wanted.push((*a, every.max_bytes));
            }
        }
        if self.wanted.is_empty() {
            return Ok(());
        }
        // Analyzers see files in their fixed order; a glob-matched analyzer keeps its glob
        // budget.
        self.wanted.sort_unstable();
        self.wanted.dedup_by_key(|(a, _)| *a);
        // Read once, as much as the greediest interested analyzer may have.
        let budget = self.wanted.iter().map(|&(_, cap)| cap).max().unwrap_or(0);
        self.buf.clear();
        body.take(budget as u64).read_to_end(&mut self.buf)?;
        for &(a, cap) in &self.wanted {
            let len = self.buf.len().min(cap);
            let complete = entry.size <= cap as u64;
            self.states[a].file(entry, &self.buf[..len], complete);
        }
        Ok(())
    }

    fn whiteout(&mut self, whiteout: &Whiteout) -> std::io::Result<()> {
        self.report.whiteouts.push(whiteout.clone());
        Ok(())
    }
}
