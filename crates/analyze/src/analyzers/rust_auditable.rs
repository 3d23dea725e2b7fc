//! rust-auditable: the crates compiled into a Rust binary built with `cargo auditable`, from
//! its `.dep-v0` ELF section (zlib-compressed JSON:
//! `{"packages":[{"name","version","source","kind","dependencies":[index…],"root"}]}`).
//!
//! cargo-auditable marks the section non-allocated (`sh_flags` 0), and its location is only
//! known from the section header table. The binary arrives as a stream
//! ([`super::StreamInterest`]), so the analyzer decides from the first bytes which ranges to
//! keep as they pass:
//! - when the section header table is among the first bytes (Go's linker puts it there), it
//!   is read at once, and the ranges kept are the section names (`.shstrtab`) and the small
//!   sections that could be `.dep-v0` (non-allocated, no flags, at most
//!   [`MAX_DEP_SECTION`] bytes, [`BEFORE_HEADERS`] in all);
//! - otherwise (GNU ld, lld: the table is at the end) the ranges kept are the first
//!   [`AFTER_LOADED`] bytes after the loaded segments (where `.comment` and `.dep-v0` land)
//!   and the [`BEFORE_HEADERS`] bytes before the section header table, with the table (the
//!   section names are there; so is `.dep-v0` when debug info precedes it).
//!
//! For a stripped distribution binary this is the few KiB after its code; nothing else of
//! any executable is held. A `.dep-v0` or `.shstrtab` outside what was kept (a huge
//! unstripped binary) becomes an unknown.
//!
//! Build dependencies (`"kind": "build"`) run at build time and are not part of the binary:
//! they are not reported (as Syft does).

use std::io::Read;

use gantry_model::Location;
use gantry_model::fs::FileEntry;
use serde::Deserialize;

use super::elf::{self, MAGIC as ELF_MAGIC, Window};
use super::go_buildinfo::executable;
use super::{Analyzer, Interest, LayerAnalysis, StreamInterest};
use crate::package::{Ecosystem, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "rust-auditable";

/// Bytes kept after the loaded segments. `.dep-v0` follows `.comment` (a few hundred bytes)
/// there; 4 MiB also covers a linker that puts other small sections first.
pub const AFTER_LOADED: u64 = 4 * 1024 * 1024;

/// Bytes kept before the section header table: `.symtab`, `.strtab` and `.shstrtab` of an
/// unstripped binary are a few MiB; 16 MiB covers large ones.
pub const BEFORE_HEADERS: u64 = 16 * 1024 * 1024;

/// The file header and program headers are read from at most this many leading bytes.
const HEAD: usize = 64 * 1024;

/// A section read as a `.dep-v0` candidate is at most this large: the compressed JSON of a
/// thousand crates is about 30 KiB.
pub const MAX_DEP_SECTION: u64 = 1024 * 1024;

/// Inflated JSON kept from a `.dep-v0` section: about 150 bytes per crate, so 8 MiB is
/// tens of thousands of crates. Bounds a zlib bomb.
pub const MAX_JSON_BYTES: u64 = 8 * 1024 * 1024;

/// Reads cargo-auditable dependency data from executables.
#[derive(Debug)]
pub struct RustAuditableAnalyzer;

impl Analyzer for RustAuditableAnalyzer {
    fn id(&self) -> &'static str {
        ID
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
            magic: ELF_MAGIC,
        })
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(RustLayer {
            budget: budget.clone(),
            ..RustLayer::default()
        })
    }
}

#[derive(Default)]
struct RustLayer {
    budget: Budget,
    file: FileState,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
}

#[derive(Default)]
enum FileState {
    #[default]
    Idle,
    /// Collecting the file and program headers.
    Head(Vec<u8>),
    /// Keeping the windows; `sections` once the section header table has been read.
    Tail {
        header: elf::Header,
        sections: Option<Vec<elf::Section>>,
        windows: Vec<Window>,
    },
    /// Nothing more to learn from this file; the reason when it is an unknown.
    Done(Option<String>),
}

impl RustLayer {
    fn feed(&mut self, entry: &FileEntry, offset: u64, piece: &[u8]) -> bool {
        if let FileState::Head(head) = &mut self.file {
            let have = head.len() as u64;
            if offset <= have && offset + piece.len() as u64 > have {
                let from = (have - offset) as usize;
                let take = (HEAD - head.len()).min(piece.len() - from);
                head.extend_from_slice(&piece[from..from + take]);
            }
            let head = std::mem::take(head);
            self.file = start_tail(entry, &head);
            if let FileState::Tail { windows, .. } = &mut self.file {
                for w in windows.iter_mut() {
                    w.feed(0, &head);
                }
            } else if matches!(self.file, FileState::Head(_)) {
                self.file = FileState::Head(head);
                return true;
            }
        }
        match &mut self.file {
            FileState::Tail { windows, .. } => {
                for w in windows.iter_mut() {
                    w.feed(offset, piece);
                }
                !windows.iter().all(Window::is_full)
            }
            _ => false,
        }
    }

    fn end(&mut self, entry: &FileEntry) {
        let mut state = std::mem::take(&mut self.file);
        if let FileState::Head(head) = state {
            // The file ended while the headers were being collected: use what there is.
            state = start_tail(entry, &head);
            match &mut state {
                FileState::Tail { windows, .. } => {
                    for w in windows.iter_mut() {
                        w.feed(0, &head);
                    }
                }
                FileState::Head(_) => {
                    state = FileState::Done(Some("file ends inside its ELF headers".into()));
                }
                _ => {}
            }
        }
        let outcome = match state {
            FileState::Idle | FileState::Head(_) => None,
            FileState::Done(reason) => reason,
            FileState::Tail {
                header,
                sections,
                windows,
            } => match read_dep_section(&header, sections, &windows) {
                Ok(None) => None,
                Ok(Some(json)) => {
                    match packages(&json, &entry.path, self.budget.parse_limit(Kept::Packages)) {
                        Ok(p) => {
                            self.budget.keep_all(Kept::Packages, &mut self.packages, p);
                            None
                        }
                        Err(e) => Some(e),
                    }
                }
                Err(e) => Some(e),
            },
        };
        if let Some(reason) = outcome {
            let unknown = Unknown {
                analyzer: ID.to_string(),
                path: entry.path.clone(),
                reason,
            };
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown);
        }
    }
}

/// From the head of an ELF file: the windows to keep, or why the file is done (`Head` when
/// the head is not complete yet).
fn start_tail(entry: &FileEntry, head: &[u8]) -> FileState {
    let header = match elf::header(head) {
        Ok(h) => h,
        Err(e) if head.len() >= 64 || head.len() as u64 >= entry.size => {
            return FileState::Done(Some(format!("not a valid ELF file: {e}")));
        }
        Err(_) => return FileState::Head(head.to_vec()),
    };
    let (sht_start, sht_end) = header.section_headers();
    if header.shnum == 0 || sht_start == 0 {
        // No section headers (e.g. `sstrip`ped): no `.dep-v0` to find.
        return FileState::Done(None);
    }
    if sht_end > entry.size {
        return FileState::Done(Some(format!(
            "section headers at {sht_start}..{sht_end} beyond the end of the file ({} bytes)",
            entry.size
        )));
    }
    let (_, ph_end) = header.program_headers();
    if ph_end > HEAD as u64 {
        return FileState::Done(Some(format!(
            "program headers end at {ph_end}, beyond the first {} KiB",
            HEAD / 1024
        )));
    }
    let have = head.len() as u64;
    if have < entry.size && (have < ph_end || (sht_end <= HEAD as u64 && have < sht_end)) {
        return FileState::Head(head.to_vec());
    }
    let Some(segments) = elf::segments(&header, head) else {
        return FileState::Done(Some("truncated program headers".into()));
    };
    if sht_end <= have {
        // The table is here already (Go's linker): keep the names and the candidates.
        let Some(sections) = elf::sections(&header, &head[sht_start as usize..sht_end as usize])
        else {
            return FileState::Done(Some("truncated section headers".into()));
        };
        // The names first, so candidates cannot crowd them out of the budget.
        let names = sections.get(usize::from(header.shstrndx)).copied();
        let candidates = sections
            .iter()
            .copied()
            .filter(|s| s.kind == elf::SHT_PROGBITS && s.flags == 0 && s.size <= MAX_DEP_SECTION);
        let mut windows = Vec::new();
        let mut kept = 0u64;
        for s in names.into_iter().chain(candidates) {
            if s.size > 0 && kept.saturating_add(s.size) <= BEFORE_HEADERS {
                kept += s.size;
                windows.push(Window::new(s.offset, s.offset.saturating_add(s.size)));
            }
        }
        return FileState::Tail {
            header,
            sections: Some(sections),
            windows,
        };
    }
    let loaded = elf::loaded_end(&segments).min(sht_start);
    let tail_start = sht_start.saturating_sub(BEFORE_HEADERS).max(loaded);
    let after_end = loaded.saturating_add(AFTER_LOADED).min(sht_start);
    let windows = if after_end >= tail_start {
        vec![Window::new(loaded, sht_end)]
    } else {
        vec![
            Window::new(loaded, after_end),
            Window::new(tail_start, sht_end),
        ]
    };
    FileState::Tail {
        header,
        sections: None,
        windows,
    }
}

/// The inflated `.dep-v0` JSON, `None` when the binary has no such section.
fn read_dep_section(
    header: &elf::Header,
    sections: Option<Vec<elf::Section>>,
    windows: &[Window],
) -> Result<Option<Vec<u8>>, String> {
    let get = |offset: u64, len: u64| windows.iter().find_map(|w| w.get(offset, len));
    let sections = match sections {
        Some(s) => s,
        None => {
            let (sht_start, sht_end) = header.section_headers();
            let table = get(sht_start, sht_end - sht_start)
                .ok_or("file ends inside its section headers")?;
            elf::sections(header, table).ok_or("truncated section headers")?
        }
    };
    let names = sections
        .get(usize::from(header.shstrndx))
        .ok_or_else(|| format!("section name table index {} out of range", header.shstrndx))?;
    let Some(names) = get(names.offset, names.size) else {
        return Err(format!(
            "section names at offset {} are outside the bytes kept ({} MiB after the loaded segments, {} MiB before the section headers); cannot look for .dep-v0",
            names.offset,
            AFTER_LOADED >> 20,
            BEFORE_HEADERS >> 20
        ));
    };
    let Some(dep) = sections
        .iter()
        .find(|s| elf::name_at(names, s.name) == Some(b".dep-v0".as_slice()))
    else {
        return Ok(None);
    };
    if dep.kind == elf::SHT_NOBITS {
        return Err(".dep-v0 section has no data".into());
    }
    let Some(compressed) = get(dep.offset, dep.size) else {
        return Err(format!(
            ".dep-v0 at offset {} ({} bytes) is outside the bytes kept ({} MiB after the loaded segments, {} MiB before the section headers)",
            dep.offset,
            dep.size,
            AFTER_LOADED >> 20,
            BEFORE_HEADERS >> 20
        ));
    };
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!(".dep-v0 is not valid zlib data: {e}"))?;
    if json.len() as u64 > MAX_JSON_BYTES {
        return Err(format!(
            ".dep-v0 inflates to more than {} MiB",
            MAX_JSON_BYTES >> 20
        ));
    }
    Ok(Some(json))
}

#[derive(Deserialize)]
struct VersionInfo {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    dependencies: Vec<usize>,
}

/// The crates of a `.dep-v0` document (runtime ones), with their dependencies by name.
/// At most `limit` packages are returned (the caller's remaining budget plus one).
pub fn packages(json: &[u8], path: &str, limit: usize) -> Result<Vec<Package>, String> {
    let info: VersionInfo = serde_json::from_slice(json)
        .map_err(|e| format!(".dep-v0 is not cargo-auditable JSON: {e}"))?;
    let runtime = |p: &AuditPackage| p.kind.as_deref().unwrap_or("runtime") != "build";
    let mut out = Vec::new();
    for p in info.packages.iter().filter(|p| runtime(p)).take(limit) {
        if p.name.is_empty() || p.version.is_empty() {
            return Err(".dep-v0 lists a package without name or version".into());
        }
        let mut dependencies: Vec<String> = Vec::new();
        // A set, not `contains` on the list: a hostile section can give one package
        // hundreds of thousands of dependency indexes.
        let mut seen = std::collections::HashSet::new();
        for &i in &p.dependencies {
            let d = info
                .packages
                .get(i)
                .ok_or_else(|| format!(".dep-v0 dependency index {i} out of range"))?;
            if runtime(d) && seen.insert(d.name.as_str()) {
                dependencies.push(d.name.clone());
            }
        }
        out.push(Package {
            ecosystem: Ecosystem::Cargo,
            name: p.name.clone(),
            version: p.version.clone(),
            arch: None,
            source: None,
            source_version: None,
            location: Location {
                path: Some(path.to_string()),
                ..Location::default()
            },
            files: Vec::new(),
            namespace: None,
            licenses: Vec::new(),
            dependencies,
            cataloger: ID.to_string(),
            purl: String::new(),
        });
    }
    Ok(out)
}

impl LayerAnalysis for RustLayer {
    fn file(&mut self, _entry: &FileEntry, _content: &[u8], _complete: bool) {}

    fn stream_start(&mut self, _entry: &FileEntry) {
        self.file = FileState::Head(Vec::new());
    }

    fn stream(&mut self, entry: &FileEntry, offset: u64, piece: &[u8]) -> bool {
        self.feed(entry, offset, piece)
    }

    fn stream_end(&mut self, entry: &FileEntry) {
        self.end(entry);
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_json_with_build_dependencies_and_bad_indexes() {
        let json = br#"{"packages":[
            {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},
            {"name":"serde","version":"1.0.195","source":"crates.io","dependencies":[2]},
            {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"}
        ],"format":1}"#;
        let p = packages(json, "usr/bin/app", usize::MAX).unwrap();
        let got: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.dependencies.clone()))
            .collect();
        assert_eq!(
            got,
            vec![("app", vec!["serde".to_string()]), ("serde", vec![])]
        );
        assert!(
            packages(
                br#"{"packages":[{"name":"a","version":"1","dependencies":[9]}]}"#,
                "x",
                usize::MAX
            )
            .is_err()
        );
        assert!(packages(b"{}", "x", usize::MAX).is_err());
        assert!(packages(b"\xff", "x", usize::MAX).is_err());
    }
}
