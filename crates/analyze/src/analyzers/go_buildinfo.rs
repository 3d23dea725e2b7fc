//! go-buildinfo: the Go modules compiled into a binary, from the build information the Go
//! linker embeds (what `go version -m` prints).
//!
//! Go (since 1.13) writes a 32-byte header starting with `\xff Go buildinf:` at a 16-byte
//! aligned offset of the `.go.buildinfo` section, at the start of the writable data — about
//! halfway into the file, far beyond any fixed prefix. Since Go 1.18 the Go version and the
//! module information follow the header inline, each as a varint length and bytes. Rather
//! than buffering binaries, this analyzer takes executables as a stream
//! ([`super::StreamInterest`]): every executable regular file starting with `\x7fELF` is
//! scanned once, front to back, for the magic (a SIMD substring search, much faster than the
//! inflate that produces the bytes), keeping only the bytes of a found header and its
//! strings. A candidate is checked (pointer size, flags, a Go version string) before it is
//! believed: Go programs that read build info themselves contain the magic as data.
//!
//! From the module information (`path`, `mod`, `dep`, `=>` replacement lines) come:
//! - the main module (version `(devel)` for a local build), depending on every other module;
//! - each dependency — replaced by its replacement module unless that is a local directory;
//! - `stdlib`, versioned with the Go release (`go1.22.1`), as Syft reports it.
//!
//! Binaries of Go ≤ 1.17 keep the strings behind pointers elsewhere in the file and become
//! an unknown.
//!
//! In the same pass the analyzer looks for a few function names in the binary's function
//! name table (`.gopclntab`, which Go keeps even in stripped binaries because stack traces
//! need it; every name there is NUL-terminated): [`GO_SYMBOLS`]. A name there means the
//! linker kept that function — the program *can* call it, which is what the CA-certificate
//! and time-zone checks need to know ("can verify TLS certificates against the system store",
//! "can load named zones"), without claiming that it does.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use gantry_model::Location;
use gantry_model::fs::FileEntry;
use memchr::memmem;

use super::elf::MAGIC as ELF_MAGIC;
use super::{Analyzer, Interest, LayerAnalysis, StreamInterest};
use crate::package::{Ecosystem, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "go-buildinfo";

/// The build-info header's magic.
const MAGIC: &[u8] = b"\xff Go buildinf:";

/// Header length; the inline strings start after it.
const HEADER: usize = 32;

/// Bytes kept after a build-info header: the Go version and the module list. A large
/// program (Kubernetes, ~300 modules) has about 40 KiB of module information; 1 MiB is far
/// above any real one and is the most this analyzer holds for a file.
pub const MAX_CAPTURE: usize = 1024 * 1024;

/// Aligned magic occurrences checked per file before giving up (a file that is mostly
/// fake headers is hostile or corrupt).
const MAX_CANDIDATES: usize = 64;

/// Function names looked for in Go binaries, as `.gopclntab` stores them (NUL on both sides:
/// the end of the previous name and the end of this one, so `time.LoadLocationFromTZData`
/// does not count as `time.LoadLocation`).
pub const GO_SYMBOLS: &[&str] = &[
    // Verifying a server certificate without explicit roots loads the system CA store.
    "crypto/x509.loadSystemRoots",
    // golang.org/x/crypto/x509roots/fallback registers roots compiled into the binary.
    "crypto/x509.SetFallbackRoots",
    // The TLS client handshake.
    "crypto/tls.(*Conn).clientHandshake",
    // Loading a named time zone (from the system's zoneinfo unless embedded).
    "time.LoadLocation",
    // `import _ "time/tzdata"` (or -tags timetzdata): the zone database compiled in.
    "time/tzdata.loadFromEmbeddedTZData",
];

/// One automaton over the NUL-delimited names: a single pass over every executable.
static SYMBOLS: LazyLock<Option<(AhoCorasick, usize)>> = LazyLock::new(|| {
    let needles: Vec<Vec<u8>> = GO_SYMBOLS
        .iter()
        .map(|s| [&b"\0"[..], s.as_bytes(), &b"\0"[..]].concat())
        .collect();
    let longest = needles.iter().map(Vec::len).max().unwrap_or(0);
    AhoCorasick::new(&needles).ok().map(|ac| (ac, longest))
});

/// The search for [`GO_SYMBOLS`] in one file.
#[derive(Default)]
struct SymbolScan {
    /// Bit `i` set: `GO_SYMBOLS[i]` was found.
    found: u32,
    /// The last bytes of the previous piece (a name may straddle pieces).
    carry: Vec<u8>,
}

impl SymbolScan {
    const ALL: u32 = (1 << GO_SYMBOLS.len()) - 1;

    /// Searches the next piece; returns whether more is wanted (some name still unseen).
    fn feed(&mut self, piece: &[u8]) -> bool {
        let Some((ac, longest)) = SYMBOLS.as_ref() else {
            return false;
        };
        // A name that ends in this piece but starts before it starts in the last
        // `keep` bytes of the stream so far: search those with the piece's head.
        let keep = longest - 1;
        let mut seam = std::mem::take(&mut self.carry);
        let carried = seam.len();
        seam.extend_from_slice(&piece[..piece.len().min(keep)]);
        if carried > 0 {
            for m in ac.find_overlapping_iter(&seam[..]) {
                self.found |= 1 << m.pattern().as_usize();
            }
        }
        for m in ac.find_overlapping_iter(piece) {
            self.found |= 1 << m.pattern().as_usize();
        }
        self.carry = if piece.len() >= keep {
            piece[piece.len() - keep..].to_vec()
        } else {
            // A short piece: the carry grows by it, up to `keep` bytes.
            seam.drain(..seam.len().saturating_sub(keep));
            seam
        };
        self.found != Self::ALL
    }

    fn take(&mut self) -> Vec<String> {
        let found = std::mem::take(&mut self.found);
        self.carry.clear();
        GO_SYMBOLS
            .iter()
            .enumerate()
            .filter(|(i, _)| found & (1 << i) != 0)
            .map(|(_, s)| (*s).to_string())
            .collect()
    }
}

/// Reads Go build information from executables.
#[derive(Debug)]
pub struct GoBuildinfoAnalyzer;

impl Analyzer for GoBuildinfoAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        // 2: records each binary's main package path (Go toolchain identity).
        // 3: records the GO_SYMBOLS each binary links.
        3
    }

    fn interest(&self) -> Interest {
        Interest::paths(&[], 0)
    }

    fn stream_interest(&self) -> Option<StreamInterest> {
        Some(StreamInterest {
            wants: executable,
            magic: ELF_MAGIC,
        })
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(GoLayer {
            budget: budget.clone(),
            ..GoLayer::default()
        })
    }
}

/// A regular file with an execute bit, large enough for an ELF header. (The dispatcher only
/// streams regular files.) There is no upper size: the walker inflates every byte of the
/// file anyway, the scan adds a few percent to that (`analyze_bench`), what is kept is
/// bounded ([`MAX_CAPTURE`]), and the layer's own limits bound the total — so no large
/// binary goes unexamined.
pub fn executable(entry: &FileEntry) -> bool {
    entry.mode & 0o111 != 0 && entry.size >= 64
}

#[derive(Default)]
struct GoLayer {
    budget: Budget,
    scan: Scan,
    symbols: SymbolScan,
    /// (executable path, GO_SYMBOLS it links), for Go binaries.
    linked: Vec<(String, Vec<String>)>,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
    /// (executable path, main package import path).
    mains: Vec<(String, String)>,
}

/// The state of one file's scan.
#[derive(Default)]
struct Scan {
    /// The tail of the previous piece (a magic may straddle pieces), or a candidate whose
    /// check needs bytes of the next piece.
    carry: Vec<u8>,
    /// File offset of `carry[0]`.
    carry_at: u64,
    /// The bytes from an accepted header on, while they arrive.
    capture: Option<Vec<u8>>,
    candidates: usize,
    outcome: Option<Result<BuildInfo, String>>,
}

/// How many bytes a candidate check needs: header, varint, and a version string.
const CHECK: usize = HEADER + 10 + 64;

/// What [`Scan::search`] found.
enum Search {
    /// No build info here; keep scanning.
    Clean,
    /// The candidate at this index needs bytes beyond the buffer.
    Pending(usize),
    /// A capture started (or the scan was abandoned): stop searching.
    Stop,
}

impl Scan {
    /// Consumes the next piece (`eof`: it is the last); returns whether more is wanted.
    ///
    /// Pieces are searched where they lie; only the few bytes around a piece boundary are
    /// copied (the carry of the previous piece and the head of this one).
    fn feed(&mut self, offset: u64, piece: &[u8], eof: bool) -> bool {
        if self.outcome.is_some() {
            return false;
        }
        if let Some(capture) = &mut self.capture {
            let room = MAX_CAPTURE.saturating_sub(capture.len());
            capture.extend_from_slice(&piece[..piece.len().min(room)]);
            return self.try_decode(eof);
        }
        let mut rest = piece;
        let mut rest_at = offset;
        if !self.carry.is_empty() {
            // Magics that start in the carry. A small piece is joined whole; of a large one
            // the head is enough to check any candidate starting in the carry.
            let small = piece.len() < 2 * CHECK;
            let head = if small { piece.len() } else { CHECK };
            let mut boundary = std::mem::take(&mut self.carry);
            let at = self.carry_at;
            let carried = boundary.len();
            boundary.extend_from_slice(&piece[..head]);
            let limit = if small { boundary.len() } else { carried };
            match self.search(&boundary, at, limit, eof && small) {
                Search::Stop => {
                    if !small && let Some(capture) = &mut self.capture {
                        let room = MAX_CAPTURE.saturating_sub(capture.len());
                        let more = &piece[head..];
                        capture.extend_from_slice(&more[..more.len().min(room)]);
                    }
                    return self.capture.is_some() && self.try_decode(eof);
                }
                Search::Pending(i) => {
                    // Only a small piece leaves a candidate short of bytes.
                    self.carry = boundary[i..].to_vec();
                    self.carry_at = at + i as u64;
                    return true;
                }
                Search::Clean if small => {
                    self.keep_tail(&boundary, at);
                    return true;
                }
                Search::Clean => {}
            }
            rest = piece;
            rest_at = offset;
        }
        match self.search(rest, rest_at, rest.len(), eof) {
            Search::Stop => self.capture.is_some() && self.try_decode(eof),
            Search::Pending(i) => {
                self.carry = rest[i..].to_vec();
                self.carry_at = rest_at + i as u64;
                true
            }
            Search::Clean => {
                self.keep_tail(rest, rest_at);
                true
            }
        }
    }

    /// Keeps the last bytes of `buf` (at file offset `at`), where a magic may begin.
    fn keep_tail(&mut self, buf: &[u8], at: u64) {
        let from = buf.len().saturating_sub(MAGIC.len() - 1);
        self.carry.clear();
        self.carry.extend_from_slice(&buf[from..]);
        self.carry_at = at + from as u64;
    }

    /// Checks the 16-aligned magics of `buf` (file offset `base`) that start before
    /// `limit`.
    fn search(&mut self, buf: &[u8], base: u64, limit: usize, eof: bool) -> Search {
        for i in memmem::find_iter(buf, MAGIC) {
            if i >= limit {
                break;
            }
            if !(base + i as u64).is_multiple_of(16) {
                continue;
            }
            if buf.len() - i < CHECK && !eof {
                return Search::Pending(i);
            }
            match check(&buf[i..]) {
                Check::No => {
                    self.candidates += 1;
                    if self.candidates > MAX_CANDIDATES {
                        self.outcome = Some(Err(format!(
                            "more than {MAX_CANDIDATES} build-info magics that are not build info; scan abandoned"
                        )));
                        return Search::Stop;
                    }
                }
                Check::Yes => {
                    let end = buf.len().min(i + MAX_CAPTURE);
                    self.capture = Some(buf[i..end].to_vec());
                    return Search::Stop;
                }
            }
        }
        Search::Clean
    }

    /// Decodes the capture if it is long enough; returns whether more bytes are wanted.
    fn try_decode(&mut self, eof: bool) -> bool {
        let Some(capture) = &self.capture else {
            return false;
        };
        match decode(capture) {
            Decoded::Need(n) if n > MAX_CAPTURE => {
                self.outcome = Some(Err(format!(
                    "build info of {n} bytes, larger than the {} KiB limit",
                    MAX_CAPTURE / 1024
                )));
                false
            }
            Decoded::Need(n) if eof => {
                self.outcome = Some(Err(format!(
                    "file ends inside the build info ({} of {n} bytes)",
                    capture.len()
                )));
                false
            }
            Decoded::Need(_) => true,
            Decoded::Done(r) => {
                self.outcome = Some(r);
                false
            }
        }
    }

    /// The file ended: settles what is pending and resets for the next file.
    fn end(&mut self) -> Option<Result<BuildInfo, String>> {
        if self.outcome.is_none() {
            if self.capture.is_some() {
                self.try_decode(true);
            } else if !self.carry.is_empty() {
                let at = self.carry_at;
                self.feed(at, &[], true);
            }
        }
        let out = self.outcome.take();
        *self = Scan::default();
        out
    }
}

enum Check {
    Yes,
    No,
}

/// Whether the bytes at an aligned magic look like a real header.
fn check(b: &[u8]) -> Check {
    let (Some(&ptr_size), Some(&flags)) = (b.get(14), b.get(15)) else {
        return Check::No;
    };
    if !matches!(ptr_size, 4 | 8) || flags & !3 != 0 {
        return Check::No;
    }
    if flags & 2 == 0 {
        // Pre-1.18 pointer format: nothing more to check here.
        return Check::Yes;
    }
    let Some((len, n)) = b.get(HEADER..).and_then(uvarint) else {
        return Check::No;
    };
    let Some(version) = b
        .get(HEADER + n..)
        .and_then(|r| r.get(..(len as usize).min(64)))
    else {
        return Check::No;
    };
    if (1..=256).contains(&len) && (version.starts_with(b"go") || version.starts_with(b"devel")) {
        Check::Yes
    } else {
        Check::No
    }
}

enum Decoded {
    /// At least this many bytes are needed.
    Need(usize),
    Done(Result<BuildInfo, String>),
}

/// Decodes a header and its inline strings.
fn decode(b: &[u8]) -> Decoded {
    if b.len() < HEADER {
        return Decoded::Need(HEADER);
    }
    if b[15] & 2 == 0 {
        return Decoded::Done(Err(
            "Go ≤ 1.17 build info (pointer format) not supported".to_string()
        ));
    }
    let mut at = HEADER;
    let mut strings: Vec<&[u8]> = Vec::with_capacity(2);
    for _ in 0..2 {
        let Some((len, n)) = b.get(at..).and_then(uvarint) else {
            if b.len() - at >= 10 {
                return Decoded::Done(Err("malformed length in build info".into()));
            }
            return Decoded::Need(at + 10);
        };
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| (at + n).checked_add(l))
        else {
            return Decoded::Done(Err("malformed length in build info".into()));
        };
        if end > b.len() {
            return Decoded::Need(end);
        }
        strings.push(&b[at + n..end]);
        at = end;
    }
    let version = String::from_utf8_lossy(strings[0]);
    Decoded::Done(parse_modinfo(&version, strings[1]))
}

/// Go's unsigned varint (`encoding/binary.Uvarint`): value and bytes used.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// A module line: path, version, checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    /// Module path.
    pub path: String,
    /// Version (`v1.2.3`, `(devel)`).
    pub version: String,
    /// `h1:` checksum, when recorded.
    pub sum: String,
    /// The `=>` replacement, when there is one.
    pub replace: Option<Box<Module>>,
}

/// The build information of one binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The Go release (`go1.22.1`).
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    /// The main module, when built in module mode.
    pub main: Option<Module>,
    /// Every other module of the build.
    pub deps: Vec<Module>,
}

/// Parses the Go version and the module information (`runtime/debug.BuildInfo`'s text
/// form, wrapped in the linker's 16-byte binary sentinels).
pub fn parse_modinfo(version: &str, modinfo: &[u8]) -> Result<BuildInfo, String> {
    let go_version = version.split_whitespace().next().unwrap_or_default();
    if !go_version.starts_with("go") && !version.starts_with("devel") {
        return Err(format!("unexpected Go version {version:?}"));
    }
    // The linker wraps the text in 16-byte sentinels; Go strips them when the text is long
    // enough and ends with a newline before the trailing sentinel (else there is none).
    let text = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        String::from_utf8_lossy(&modinfo[16..modinfo.len() - 16])
    } else {
        Default::default()
    };
    let mut info = BuildInfo {
        go_version: if version.starts_with("devel") {
            version.to_string()
        } else {
            go_version.to_string()
        },
        ..BuildInfo::default()
    };
    let module = |fields: &[&str]| Module {
        path: fields.first().copied().unwrap_or_default().to_string(),
        version: fields.get(1).copied().unwrap_or_default().to_string(),
        sum: fields.get(2).copied().unwrap_or_default().to_string(),
        replace: None,
    };
    // Which module the next `=>` line replaces: the main module, or a dependency.
    let mut last_dep: Option<bool> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first().copied() {
            Some("path") => info.path = fields.get(1).copied().unwrap_or_default().to_string(),
            Some("mod") => {
                info.main = Some(module(&fields[1..]));
                last_dep = Some(false);
            }
            Some("dep") => {
                info.deps.push(module(&fields[1..]));
                last_dep = Some(true);
            }
            Some("=>") => {
                let replacement = Some(Box::new(module(&fields[1..])));
                match last_dep {
                    Some(true) => {
                        if let Some(d) = info.deps.last_mut() {
                            d.replace = replacement;
                        }
                    }
                    Some(false) => {
                        if let Some(m) = info.main.as_mut() {
                            m.replace = replacement;
                        }
                    }
                    None => return Err("`=>` line before any module".into()),
                }
                last_dep = None;
            }
            Some("build") | Some("go") | Some("") | None => {}
            Some(other) => return Err(format!("unknown build-info line {other:?}")),
        }
    }
    Ok(info)
}

impl BuildInfo {
    /// The packages of this build: main module, dependencies, `stdlib`.
    pub fn packages(&self, path: &str) -> Vec<Package> {
        let location = Location {
            path: Some(path.to_string()),
            ..Location::default()
        };
        let package = |name: &str, version: &str| Package {
            ecosystem: Ecosystem::Golang,
            name: name.to_string(),
            version: version.to_string(),
            arch: None,
            source: None,
            source_version: None,
            location: location.clone(),
            files: Vec::new(),
            namespace: name
                .rsplit_once('/')
                .map(|(ns, _)| ns.to_string())
                .filter(|ns| !ns.is_empty()),
            licenses: Vec::new(),
            dependencies: Vec::new(),
            cataloger: ID.to_string(),
            purl: String::new(),
        };
        let mut out = Vec::new();
        let mut dep_names = Vec::new();
        for d in &self.deps {
            // A replacement by a local directory has no module version: keep the module
            // as required.
            let used = match &d.replace {
                Some(r) if !r.path.starts_with(['.', '/']) => r.as_ref(),
                _ => d,
            };
            if used.path.is_empty() {
                continue;
            }
            dep_names.push(used.path.clone());
            out.push(package(&used.path, &used.version));
        }
        if !self.go_version.is_empty() {
            out.push(package("stdlib", &self.go_version));
            dep_names.push("stdlib".to_string());
        }
        if let Some(main) = self.main.as_ref().filter(|m| !m.path.is_empty()) {
            let mut p = package(&main.path, &main.version);
            p.dependencies = dep_names;
            out.insert(0, p);
        }
        out
    }
}

impl LayerAnalysis for GoLayer {
    fn file(&mut self, _entry: &FileEntry, _content: &[u8], _complete: bool) {}

    fn stream_start(&mut self, _entry: &FileEntry) {
        self.scan.end();
        self.symbols.take();
    }

    fn stream(&mut self, _entry: &FileEntry, offset: u64, piece: &[u8]) -> bool {
        // Both searches run to the end of what they need: the function names usually come
        // before the build info (.gopclntab precedes .go.buildinfo), but not always.
        let build_info = self.scan.feed(offset, piece, false);
        let symbols = self.symbols.feed(piece);
        build_info || symbols
    }

    fn stream_end(&mut self, entry: &FileEntry) {
        let symbols = self.symbols.take();
        match self.scan.end() {
            Some(Ok(info)) => {
                if !info.path.is_empty() {
                    self.mains.push((entry.path.clone(), info.path.clone()));
                }
                // The build info is at most MAX_CAPTURE bytes, so its packages are few
                // enough to be built before they are charged.
                self.budget.keep_all(
                    Kept::Packages,
                    &mut self.packages,
                    info.packages(&entry.path),
                );
                // One entry per Go binary, naming only the few GO_SYMBOLS it links.
                self.linked.push((entry.path.clone(), symbols));
            }
            Some(Err(reason)) => {
                let unknown = Unknown {
                    analyzer: ID.to_string(),
                    path: entry.path.clone(),
                    reason,
                };
                self.budget
                    .keep(Kept::Findings, &mut self.unknowns, unknown);
            }
            None => {}
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
        report.go_mains.extend(self.mains);
        report.go_symbols.extend(self.linked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build-info blob (header + inline strings) as Go 1.18+ writes it.
    fn blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(2);
        b.resize(HEADER, 0);
        for s in [version.as_bytes(), modinfo.as_bytes()] {
            let mut n = s.len() as u64;
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(s);
        }
        b
    }

    fn wrap(text: &str) -> String {
        format!("{}{text}{}", "0".repeat(16), "1".repeat(16))
    }

    /// Scans `file` in pieces of `piece` bytes.
    fn scan(file: &[u8], piece: usize) -> Option<Result<BuildInfo, String>> {
        let mut s = Scan::default();
        let mut off = 0u64;
        for p in file.chunks(piece) {
            if !s.feed(off, p, false) {
                break;
            }
            off += p.len() as u64;
        }
        s.end()
    }

    #[test]
    fn function_names_are_found_across_piece_boundaries() {
        let mut file = vec![0x55u8; 700];
        // Adjacent names share their NUL, as in .gopclntab.
        file.extend_from_slice(b"\0time.LoadLocation\0crypto/x509.loadSystemRoots\0");
        file.extend_from_slice(b"time.LoadLocationFromTZData\0crypto/x509.loadSystemRootsX\0");
        file.resize(2000, 0x33);
        for piece in [1, 2, 5, 17, 64, 701, 720, 4096] {
            let mut s = SymbolScan::default();
            for p in file.chunks(piece) {
                if !s.feed(p) {
                    break;
                }
            }
            assert_eq!(
                s.take(),
                vec!["crypto/x509.loadSystemRoots", "time.LoadLocation"],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn finds_aligned_build_info_across_piece_boundaries() {
        let info = wrap(
            "path\tex.com/cmd\nmod\tex.com\tv1.0.0\th1:x\ndep\tgolang.org/x/net\tv0.1.0\th1:y\n",
        );
        let mut file = vec![0x7fu8; 1000];
        // A decoy: the magic as program data, unaligned, then aligned but with a bad header.
        file.extend_from_slice(MAGIC);
        file.resize(1024, 0);
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&[0, 0]);
        file.resize(2048, 0);
        file.extend(blob("go1.22.1", &info));
        file.resize(file.len() + 500, 0);
        for piece in [1, 7, 16, 31, 100, 211, 212, 213, 300, 1000, 2049, 4096] {
            let got = scan(&file, piece).unwrap().unwrap();
            assert_eq!(got.go_version, "go1.22.1");
            assert_eq!(got.main.as_ref().unwrap().path, "ex.com");
            assert_eq!(got.deps[0].path, "golang.org/x/net");
        }
    }

    #[test]
    fn old_format_truncated_and_oversized_are_reported() {
        let mut old = MAGIC.to_vec();
        old.extend([8, 0]);
        old.resize(64, 0);
        assert!(scan(&old, 10).unwrap().unwrap_err().contains("1.17"));
        let full = blob("go1.21.0", &wrap("path\tx\n"));
        let cut = &full[..full.len() - 3];
        assert!(scan(cut, 5).unwrap().unwrap_err().contains("ends inside"));
        let mut huge = MAGIC.to_vec();
        huge.extend([8, 2]);
        huge.resize(HEADER, 0);
        huge.push(8);
        huge.extend(b"go1.22.0");
        huge.extend([0xff, 0xff, 0xff, 0x7f]);
        huge.resize(200, 0);
        assert!(scan(&huge, 50).unwrap().unwrap_err().contains("limit"));
        assert!(scan(&[0u8; 5000], 64).is_none());
    }

    #[test]
    fn too_many_fake_magics_stop_the_scan() {
        let mut file = Vec::new();
        for _ in 0..200 {
            file.extend_from_slice(MAGIC);
            file.extend([9, 9]);
        }
        assert!(scan(&file, 333).unwrap().unwrap_err().contains("abandoned"));
    }

    #[test]
    fn modinfo_replacements_and_packages() {
        let text = wrap(
            "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\n\
             dep\texample.com/dep\tv1.2.3\n=>\t./dep\t(devel)\t\n\
             dep\tgithub.com/old/x\tv1.0.0\th1:a\n=>\tgithub.com/new/x\tv1.1.0\th1:b\n\
             build\t-compiler=gc\nbuild\tGOARCH=amd64\n",
        );
        let info = parse_modinfo("go1.19.8", text.as_bytes()).unwrap();
        let pkgs = info.packages("app/hello");
        let got: Vec<_> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.namespace.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("example.com/hello", "(devel)", Some("example.com")),
                ("example.com/dep", "v1.2.3", Some("example.com")),
                ("github.com/new/x", "v1.1.0", Some("github.com/new")),
                ("stdlib", "go1.19.8", None),
            ]
        );
        assert_eq!(
            pkgs[0].dependencies,
            vec!["example.com/dep", "github.com/new/x", "stdlib"]
        );
        assert!(parse_modinfo("go1.20", wrap("=>\tx\tv1\n").as_bytes()).is_err());
        assert!(parse_modinfo("go1.20", wrap("weird\tline\n").as_bytes()).is_err());
        assert!(parse_modinfo("1.20", b"").is_err());
        // Text without the sentinels is treated as empty, as Go does.
        assert_eq!(parse_modinfo("go1.20", b"path\tx\n").unwrap().path, "");
        // Binary sentinels around the text (not UTF-8).
        let mut real = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        real.extend_from_slice(b"path\tx/y\n");
        real.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        assert_eq!(parse_modinfo("go1.20", &real).unwrap().path, "x/y");
    }
}
