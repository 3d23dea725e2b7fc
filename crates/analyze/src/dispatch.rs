//! Routing walker entries to analyzers: one `GlobSet` match per entry, content read once.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use gantry_layer::EntrySink;
use gantry_model::fs::{EntryKind, FileEntry, Whiteout};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::analyzers::{EveryFile, SNIFF_BYTES, STREAM_CHUNK, StreamInterest};
use crate::budget::{Budget, Kept, MemoryBudget};
use crate::{Analyzer, LayerAnalysis, LayerReport, builtin, fingerprint};

/// Capacity of the content buffer kept between entries. After a larger file (a Java archive,
/// an rpm database) the buffer is given back, so one big file does not pin its size in
/// memory for the rest of the walk.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

type WorkingBytes = fn(usize) -> usize;

/// An interested analyzer: its index, the bytes it may see, its working memory.
type Wanted = (usize, usize, WorkingBytes);

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
    /// For each glob in `globs`, the index of the analyzer that declared it and the byte
    /// budget and working memory of the interest it belongs to.
    glob_owner: Vec<Wanted>,
    /// Analyzers that also want every file their filter accepts, with that budget and their
    /// interest's working memory.
    every_file: Vec<(usize, EveryFile, WorkingBytes)>,
    /// Analyzers that want files recognised by content, streamed.
    streams: Vec<(usize, StreamInterest)>,
    fingerprint: String,
}

impl AnalyzerSet {
    /// Compiles the interests of `analyzers`.
    pub fn new(analyzers: Vec<Box<dyn Analyzer>>) -> Result<AnalyzerSet, DispatchError> {
        let mut builder = GlobSetBuilder::new();
        let mut glob_owner = Vec::new();
        let mut every_file = Vec::new();
        let mut streams = Vec::new();
        for (i, a) in analyzers.iter().enumerate() {
            let interest = a.interest();
            if let Some(every) = interest.every_file {
                every_file.push((i, every, interest.working_bytes));
            }
            if let Some(stream) = a.stream_interest() {
                streams.push((i, stream));
            }
            for interest in std::iter::once(interest).chain(a.extra_interests()) {
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
                    glob_owner.push((i, interest.max_bytes, interest.working_bytes));
                }
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
            every_file,
            streams,
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

    /// A sink for one layer walk under the default caps, without a shared memory budget.
    pub fn dispatcher(&self) -> LayerDispatcher<'_> {
        self.dispatcher_with(Budget::default(), None)
    }

    /// A sink for one layer walk: what it keeps is charged to `budget`, and its large
    /// buffers are reserved in `memory` (shared with the other walks of the scanner).
    pub fn dispatcher_with(
        &self,
        budget: Budget,
        memory: Option<Arc<MemoryBudget>>,
    ) -> LayerDispatcher<'_> {
        LayerDispatcher {
            set: self,
            states: self
                .analyzers
                .iter()
                .map(|a| a.start_layer(&budget))
                .collect(),
            budget,
            memory,
            report: LayerReport::default(),
            buf: Vec::new(),
            piece: Vec::new(),
            hits: Vec::new(),
            wanted: Vec::new(),
            streaming: Vec::new(),
        }
    }
}

/// The [`EntrySink`] for one layer: records the file list and feeds analyzers.
pub struct LayerDispatcher<'a> {
    set: &'a AnalyzerSet,
    states: Vec<Box<dyn LayerAnalysis>>,
    budget: Budget,
    memory: Option<Arc<MemoryBudget>>,
    report: LayerReport,
    buf: Vec<u8>,
    /// Stream pieces after the first (allocated on the first streamed file).
    piece: Vec<u8>,
    hits: Vec<usize>,
    /// Interested analyzers of the current entry, with the bytes each may see.
    wanted: Vec<Wanted>,
    /// Stream analyzers of the current entry.
    streaming: Vec<usize>,
}

impl std::fmt::Debug for LayerDispatcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerDispatcher")
            .field("files", &self.report.files.len())
            .finish_non_exhaustive()
    }
}

impl LayerDispatcher<'_> {
    /// Streams the rest of the current entry to `self.streaming`: what was read into `buf`
    /// first, then the body piece by piece until its end or until no analyzer wants more.
    fn stream(&mut self, entry: &FileEntry, body: &mut dyn Read) -> std::io::Result<()> {
        let mut active: Vec<usize> = self.streaming.clone();
        for &a in &active {
            self.states[a].stream_start(entry);
        }
        let mut offset = self.buf.len() as u64;
        active.retain(|&a| self.states[a].stream(entry, 0, &self.buf));
        if !active.is_empty() {
            self.piece.resize(STREAM_CHUNK, 0);
        }
        while !active.is_empty() {
            let n = match body.read(&mut self.piece) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let piece = &self.piece[..n];
            active.retain(|&a| self.states[a].stream(entry, offset, piece));
            offset += n as u64;
        }
        for &a in &self.streaming {
            self.states[a].stream_end(entry);
        }
        Ok(())
    }

    /// The walk's error once a record cap is crossed (by this entry or an earlier one).
    fn check_caps(&self) -> std::io::Result<()> {
        match self.budget.exceeded() {
            Some(e) => Err(std::io::Error::other(e)),
            None => Ok(()),
        }
    }

    /// What this layer has kept so far, by kind.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

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
        if !self.budget.charge(Kept::Files, 1) {
            return self.check_caps();
        }
        self.report.files.push(entry.clone());
        if entry.kind != EntryKind::File {
            return Ok(());
        }
        self.set
            .globs
            .matches_into(entry.path.as_str(), &mut self.hits);
        self.wanted.clear();
        self.wanted
            .extend(self.hits.iter().map(|&g| self.set.glob_owner[g]));
        for (a, every, working) in &self.set.every_file {
            if !self.wanted.iter().any(|(w, _, _)| w == a) && (every.wants)(entry) {
                self.wanted.push((*a, every.max_bytes, *working));
            }
        }
        self.streaming.clear();
        self.streaming.extend(
            self.set
                .streams
                .iter()
                .filter(|(_, s)| (s.wants)(entry))
                .map(|(a, _)| *a),
        );
        if self.wanted.is_empty() && self.streaming.is_empty() {
            return Ok(());
        }
        // Analyzers see files in their fixed order; an analyzer matched by several of its
        // interests gets the largest budget among them, and a glob-matched analyzer keeps
        // its glob budget over its every-file one.
        self.wanted
            .sort_unstable_by(|(a, x, _), (b, y, _)| a.cmp(b).then(y.cmp(x)));
        self.wanted.dedup_by_key(|(a, _, _)| *a);
        // Read once, as much as the greediest interested analyzer may have (and enough to
        // recognise a stream candidate).
        let mut budget = self
            .wanted
            .iter()
            .map(|&(_, cap, _)| cap)
            .max()
            .unwrap_or(0);
        if !self.streaming.is_empty() {
            budget = budget.max(SNIFF_BYTES);
        }
        // What this entry will hold — its content, and what the analyzers that read it may
        // allocate on top — is reserved before anything is read; given back when it drops,
        // at the end of this entry. Nothing else is reserved meanwhile, so waiting here
        // cannot deadlock with another walk.
        let content = usize::try_from(entry.size)
            .unwrap_or(usize::MAX)
            .min(budget);
        let working = self
            .wanted
            .iter()
            .map(|&(_, cap, working)| working(content.min(cap)))
            .max()
            .unwrap_or(0);
        let _reservation = self
            .memory
            .as_ref()
            .map(|m| m.reserve(content.saturating_add(working) as u64));
        self.buf.clear();
        // Reserve what the entry holds (within budget), so the buffer does not grow by
        // doubling past it.
        self.buf.reserve(content);
        body.take(budget as u64).read_to_end(&mut self.buf)?;
        let buf = &self.buf;
        let set = self.set;
        self.streaming.retain(|&a| {
            set.streams
                .iter()
                .any(|(s, i)| *s == a && buf.starts_with(i.magic))
        });
        if !self.streaming.is_empty() {
            self.stream(entry, body)?;
            self.check_caps()?;
        }
        for &(a, cap, _) in &self.wanted {
            let len = self.buf.len().min(cap);
            let complete = entry.size <= cap as u64;
            self.states[a].file(entry, &self.buf[..len], complete);
        }
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        self.check_caps()
    }

    fn whiteout(&mut self, whiteout: &Whiteout) -> std::io::Result<()> {
        if !self.budget.charge(Kept::Files, 1) {
            return self.check_caps();
        }
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

    /// A stream analyzer that wants `want` bytes of each file, recording what it got as
    /// (id, path, bytes streamed, pieces).
    #[derive(Debug)]
    struct Streamer {
        id: &'static str,
        want: u64,
        seen: Seen,
    }

    struct StreamerLayer {
        id: &'static str,
        want: u64,
        got: u64,
        pieces: usize,
        seen: Seen,
    }

    fn executable(e: &FileEntry) -> bool {
        e.mode & 0o111 != 0
    }

    impl Analyzer for Streamer {
        fn id(&self) -> &'static str {
            self.id
        }
        fn version(&self) -> u32 {
            1
        }
        fn interest(&self) -> Interest {
            Interest::paths(&[], 0)
        }
        fn stream_interest(&self) -> Option<StreamInterest> {
            Some(StreamInterest {
                wants: executable,
                magic: b"\x7fELF",
            })
        }
        fn start_layer(&self, _: &Budget) -> Box<dyn LayerAnalysis> {
            Box::new(StreamerLayer {
                id: self.id,
                want: self.want,
                got: 0,
                pieces: 0,
                seen: Arc::clone(&self.seen),
            })
        }
    }

    impl LayerAnalysis for StreamerLayer {
        fn file(&mut self, _: &FileEntry, _: &[u8], _: bool) {
            unreachable!("stream analyzers get no buffered files")
        }
        fn stream_start(&mut self, _: &FileEntry) {
            (self.got, self.pieces) = (0, 0);
        }
        fn stream(&mut self, _: &FileEntry, offset: u64, piece: &[u8]) -> bool {
            assert_eq!(offset, self.got, "pieces arrive in order, without gaps");
            self.got += piece.len() as u64;
            self.pieces += 1;
            self.got < self.want
        }
        fn stream_end(&mut self, entry: &FileEntry) {
            self.seen.lock().unwrap().push((
                self.id,
                entry.path.clone(),
                self.got as usize,
                self.pieces > 0,
            ));
        }
        fn finish(self: Box<Self>, _report: &mut LayerReport) {}
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
        fn start_layer(&self, _: &Budget) -> Box<dyn LayerAnalysis> {
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
    fn stream_candidates_are_sniffed_then_streamed_through_the_same_read() {
        let seen: Seen = Arc::default();
        let set = AnalyzerSet::new(vec![
            Box::new(Probe {
                id: "globs",
                interest: Interest::paths(&["bin/*"], 100),
                seen: Arc::clone(&seen),
            }),
            Box::new(Streamer {
                id: "all",
                want: u64::MAX,
                seen: Arc::clone(&seen),
            }),
            Box::new(Streamer {
                id: "head",
                want: 1000,
                seen: Arc::clone(&seen),
            }),
        ])
        .unwrap();
        let mut d = set.dispatcher();
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(STREAM_CHUNK * 2 + 123, 7);
        let script = b"#!/bin/sh\n".repeat(100);
        let mut reads = Vec::new();
        for (path, data, mode) in [
            ("bin/tool", &elf, 0o755),
            ("bin/script", &script, 0o755),
            ("lib/data.bin", &elf, 0o644),
            ("opt/tool", &elf, 0o755),
        ] {
            let entry = FileEntry {
                path: path.into(),
                kind: EntryKind::File,
                size: data.len() as u64,
                mode,
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
        let n = elf.len();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                // The buffered analyzer still gets its budget; both streams see the ELF.
                ("all", "bin/tool".to_string(), n, true),
                ("head", "bin/tool".to_string(), 100 + STREAM_CHUNK, true),
                ("globs", "bin/tool".to_string(), 100, false),
                ("globs", "bin/script".to_string(), 100, false),
                // Without a glob, the first piece is the sniffed 64 bytes.
                ("all", "opt/tool".to_string(), n, true),
                ("head", "opt/tool".to_string(), 64 + STREAM_CHUNK, true),
            ]
        );
        assert_eq!(
            reads,
            vec![
                ("bin/tool", n),
                // Not ELF: only what the glob budget and the sniff needed.
                ("bin/script", 100),
                // Not executable: never read.
                ("lib/data.bin", 0),
                ("opt/tool", n),
            ]
        );
    }

    #[test]
    fn streaming_stops_when_no_analyzer_wants_more() {
        let seen: Seen = Arc::default();
        let set = AnalyzerSet::new(vec![Box::new(Streamer {
            id: "head",
            want: 10,
            seen: Arc::clone(&seen),
        })])
        .unwrap();
        let mut d = set.dispatcher();
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(10 * STREAM_CHUNK, 0);
        let entry = FileEntry {
            path: "usr/bin/big".into(),
            kind: EntryKind::File,
            size: elf.len() as u64,
            mode: 0o755,
            uid: 0,
            gid: 0,
            link_target: None,
        };
        let mut read = 0;
        d.file(
            &entry,
            &mut Counting {
                data: &elf,
                read: &mut read,
            },
        )
        .unwrap();
        assert_eq!(read, SNIFF_BYTES, "the walker skips the rest");
        assert_eq!(seen.lock().unwrap()[0].2, SNIFF_BYTES);
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
                    working_bytes: crate::analyzers::no_working_bytes,
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
