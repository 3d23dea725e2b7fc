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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use gantry_model::fs::EntryKind;

    use super::*;
    use crate::analyzers::{EveryFile, Interest};

    type Seen = Arc<Mutex<Vec<(&'static str, String, usize, bool)>>>;

    #[derive(Debug)]
    struct Probe {
        id: &'static str,
        interest: Interest,
        seen: Seen,
    }

    struct ProbeLayer {
        id: &'static str,
        seen: Seen,
    }

    impl Analyzer for Probe {
        fn id(&self) -> &'static str {
            self.id
        }
        fn version(&self) -> u32 {
            1
        }
        fn interest(&self) -> Interest {
            self.interest.clone()
        }
        fn start_layer(&self) -> Box<dyn LayerAnalysis> {
            Box::new(ProbeLayer {
                id: self.id,
                seen: Arc::clone(&self.seen),
            })
        }
    }

    impl LayerAnalysis for ProbeLayer {
        fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
            self.seen
                .lock()
                .unwrap()
                .push((self.id, entry.path.clone(), content.len(), complete));
        }
        fn finish(self: Box<Self>, _report: &mut LayerReport) {}
    }

    fn not_png(e: &FileEntry) -> bool {
        !e.path.ends_with(".png")
    }

    /// Counts the bytes the dispatcher pulls from each body.
    struct Counting<'a> {
        data: &'a [u8],
        read: &'a mut usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.data.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            *self.read += n;
            Ok(n)
        }
    }

    #[test]
    fn every_file_interest_is_filtered_and_glob_budget_is_kept() {
        let seen: Seen = Arc::default();
        let set = AnalyzerSet::new(vec![
            Box::new(Probe {
                id: "globs",
                interest: Interest::paths(&["etc/*"], 4),
                seen: Arc::clone(&seen),
            }),
            Box::new(Probe {
                id: "every",
                interest: Interest {
                    globs: &["etc/passwd"],
                    max_bytes: 2,
                    every_file: Some(EveryFile {
                        max_bytes: 8,
                        wants: not_png,
                    }),
                },
                seen: Arc::clone(&seen),
            }),
        ])
        .unwrap();
        let mut d = set.dispatcher();
        let data = b"0123456789abcdef";
        let mut reads = Vec::new();
        for path in ["etc/passwd", "etc/group", "app/logo.png", "app/main.js"] {
            let entry = FileEntry {
                path: path.into(),
                kind: EntryKind::File,
                size: data.len() as u64,
                mode: 0o644,
                uid: 0,
                gid: 0,
                link_target: None,
            };
            let mut read = 0;
            d.file(
                &entry,
                &mut Counting {
                    data,
                    read: &mut read,
                },
            )
            .unwrap();
            reads.push((path, read));
        }
        let report = d.finish();
        assert_eq!(report.files.len(), 4);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                // Matched by both globs: each analyzer its glob budget.
                ("globs", "etc/passwd".to_string(), 4, false),
                ("every", "etc/passwd".to_string(), 2, false),
                // Glob for one, every-file for the other.
                ("globs", "etc/group".to_string(), 4, false),
                ("every", "etc/group".to_string(), 8, false),
                ("every", "app/main.js".to_string(), 8, false),
            ]
        );
        // One read per entry, as far as the largest budget; nothing for a filtered file.
        assert_eq!(
            reads,
            vec![
                ("etc/passwd", 4),
                ("etc/group", 8),
                ("app/logo.png", 0),
                ("app/main.js", 8)
            ]
        );
    }
}
