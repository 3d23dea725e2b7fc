//! java: Java archives (`*.jar`, `*.war`, `*.ear`) and the archives nested in them.
//!
//! An archive is a zip file whose central directory is at its end, so it is read whole, in
//! memory, when it fits [`MAX_BYTES`] (larger ones become an unknown). In it:
//! - every `META-INF/maven/GROUP/ARTIFACT/pom.properties` is a package (`groupId`,
//!   `artifactId`, `version`): the archive's own, and those of dependencies shaded into it;
//! - without any, `META-INF/MANIFEST.MF` and the file name name the package
//!   (`Implementation-Version` / `Bundle-Version`, or the version in `name-1.2.3.jar`);
//! - `Bundle-License` of the manifest is the license of the archive's own package;
//! - nested archives (`BOOT-INF/lib/*.jar` of Spring Boot, `WEB-INF/lib/*.jar` of a war,
//!   the modules of an ear, any `*.jar|war|ear` entry) are read the same way, at most
//!   [`MAX_DEPTH`] levels down, each at most [`MAX_NESTED_BYTES`] inflated, all of them
//!   together at most [`MAX_INFLATED_BYTES`] per top-level archive (zip bombs). A package
//!   found in a nested archive keeps the top-level archive as its location and records the
//!   nested one as `OUTER!/INNER` in `files`.
//!
//! Dependencies are not read (they are in `pom.xml`, which names versions through
//! properties and parents that the archive does not contain).

use std::io::{Cursor, Read};

use gantry_model::Location;
use gantry_model::fs::FileEntry;

use super::{Analyzer, Interest, LayerAnalysis};
use crate::package::{Ecosystem, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "java";

/// Application archives are mostly under 50 MiB (a Spring Boot fat jar with its libraries,
/// Jenkins' war ~90 MiB is the large end). The whole archive is in memory once while it is
/// read; 64 MiB keeps that bounded and covers most; a larger one becomes an unknown.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A deflated nested archive is inflated into memory to be read in turn; libraries are
/// rarely above 10 MiB. Larger ones become an unknown. (A stored nested archive — Spring
/// Boot's `BOOT-INF/lib/*.jar` must be stored — is read in place, without a copy.)
pub const MAX_NESTED_BYTES: u64 = 32 * 1024 * 1024;

/// Inflated nested archives held at once, along one nesting path (a jar in a war in an
/// ear): the bound on this analyzer's memory beyond the archive itself. A nested archive
/// that would take the total past it becomes an unknown.
pub const MAX_NESTED_LIVE_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes read from one top-level archive, nested ones included (inflated or stored): several
/// times a real fat jar's content, and the bound on a zip bomb's cost — also one whose
/// nested entries all point at the same bytes.
pub const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;

/// Entries of one archive's central directory. The zip reader keeps a record of about
/// 900 bytes per entry (measured: a directory of 100,000 short names costs ~90 MB); the
/// largest real archives (shaded "uber" jars of big frameworks) have a few tens of
/// thousands. An archive declaring more becomes an unknown before its directory is read.
pub const MAX_ARCHIVE_ENTRIES: u64 = 100_000;

/// What one directory may cost the zip reader: [`MAX_ARCHIVE_ENTRIES`] at ~900 bytes. Only
/// one directory is held at a time (an archive's is dropped before its nested archives are
/// read).
const MAX_DIRECTORY_BYTES: usize = 96 * 1024 * 1024;

/// A central-directory entry takes at least 46 bytes for ~900 in memory: a directory costs
/// at most this many times the archive bytes it is read from.
const DIRECTORY_AMPLIFICATION: usize = 20;

/// Deflate's largest expansion (a 258-byte match per 2 bits, about 1032:1): a nested
/// archive inflates to at most this many times the archive holding it.
const DEFLATE_MAX_RATIO: usize = 1032;

/// The memory beyond its own bytes that reading an archive of `len` bytes may take:
/// inflated nested archives (at most [`MAX_NESTED_LIVE_BYTES`]) and one directory.
fn working_bytes(len: usize) -> usize {
    let nested = (MAX_NESTED_LIVE_BYTES as usize).min(len.saturating_mul(DEFLATE_MAX_RATIO));
    let directory = MAX_DIRECTORY_BYTES.min(
        len.saturating_add(nested)
            .saturating_mul(DIRECTORY_AMPLIFICATION),
    );
    nested + directory
}

/// Archive nesting followed: war in ear in … (real ones go two deep).
pub const MAX_DEPTH: usize = 3;

/// `MANIFEST.MF` and `pom.properties` are a few KiB.
const MAX_METADATA_BYTES: u64 = 1024 * 1024;

/// Reads Java archives.
#[derive(Debug)]
pub struct JavaAnalyzer;

impl Analyzer for JavaAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        // 2: stored nested archives read in place, entry and memory caps (new unknowns).
        2
    }

    fn interest(&self) -> Interest {
        Interest {
            working_bytes,
            ..Interest::paths(&["**/*.jar", "**/*.war", "**/*.ear"], MAX_BYTES)
        }
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(JavaLayer {
            budget: budget.clone(),
            ..JavaLayer::default()
        })
    }
}

#[derive(Default)]
struct JavaLayer {
    budget: Budget,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for JavaLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let unknown = |reason| Unknown {
            analyzer: ID.to_string(),
            path: entry.path.clone(),
            reason,
        };
        if !complete {
            let reason = format!(
                "archive of {} bytes, larger than the {} MiB limit; not read",
                entry.size,
                MAX_BYTES >> 20
            );
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        let limits = (
            self.budget.parse_limit(Kept::Packages),
            self.budget.parse_limit(Kept::Findings),
        );
        let found = read_archive_within(content, &entry.path, limits);
        self.budget
            .keep_all(Kept::Packages, &mut self.packages, found.packages);
        let unknowns = found.problems.into_iter().map(unknown).collect();
        self.budget
            .keep_all(Kept::Findings, &mut self.unknowns, unknowns);
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
    }
}

/// What [`read_archive`] found.
#[derive(Debug, Default)]
pub struct ArchiveParse {
    /// Packages of the archive and its nested archives.
    pub packages: Vec<Package>,
    /// What could not be read (each names the nested archive it is about).
    pub problems: Vec<String>,
}

/// Reads a top-level archive held in `bytes`, found at `path`.
#[cfg(test)]
pub fn read_archive(bytes: &[u8], path: &str) -> ArchiveParse {
    read_archive_within(bytes, path, (usize::MAX, usize::MAX))
}

/// [`read_archive`], collecting at most `limits.0` packages and `limits.1` problems (the
/// caller's remaining budget plus one): reading stops there.
pub fn read_archive_within(bytes: &[u8], path: &str, limits: (usize, usize)) -> ArchiveParse {
    let mut walk = Walk {
        path,
        inflated: 0,
        live: 0,
        limits,
        out: ArchiveParse::default(),
    };
    walk.archive(bytes, None, 0);
    walk.out
}

struct Walk<'a> {
    /// The top-level archive's path in the image.
    path: &'a str,
    /// Bytes read so far from nested archives (against [`MAX_INFLATED_BYTES`]).
    inflated: u64,
    /// Inflated nested archives held now (against [`MAX_NESTED_LIVE_BYTES`]).
    live: u64,
    limits: (usize, usize),
    out: ArchiveParse,
}

/// A nested archive as its parent's directory describes it, so the parent's directory can
/// be dropped before the nested one is read.
struct Nested {
    name: String,
    /// Its bytes in the parent, as stored (compressed or not).
    data: Option<std::ops::Range<usize>>,
    method: zip::CompressionMethod,
    size: u64,
}

impl Walk<'_> {
    fn full(&self) -> bool {
        self.out.packages.len() >= self.limits.0 || self.out.problems.len() >= self.limits.1
    }

    fn problem(&mut self, reason: String) {
        if self.out.problems.len() < self.limits.1 {
            self.out.problems.push(reason);
        }
    }

    /// Reads one archive; `inner` is its path inside the top-level one (`None` for that).
    fn archive(&mut self, bytes: &[u8], inner: Option<&str>, depth: usize) {
        let here = match inner {
            Some(i) => format!("{}!/{i}", self.path),
            None => self.path.to_string(),
        };
        if let Some(n) = declared_entries(bytes).filter(|&n| n > MAX_ARCHIVE_ENTRIES) {
            self.problem(format!(
                "{here}: the directory declares {n} entries, more than {MAX_ARCHIVE_ENTRIES}; not read"
            ));
            return;
        }
        let Some((mut found, nested)) = self.directory(bytes, inner, &here) else {
            return;
        };
        found.truncate(self.limits.0.saturating_sub(self.out.packages.len()));
        self.out.packages.extend(found);
        for n in nested {
            if self.full() {
                return;
            }
            let inner_path = match inner {
                Some(i) => format!("{i}!/{}", n.name),
                None => n.name.clone(),
            };
            if depth + 1 > MAX_DEPTH {
                self.problem(format!(
                    "{}!/{inner_path}: nested more than {MAX_DEPTH} archives deep; not read",
                    self.path
                ));
                continue;
            }
            let Some(range) = n.data.filter(|r| r.end <= bytes.len()) else {
                self.problem(format!(
                    "{here}!/{}: entry data outside the archive",
                    n.name
                ));
                continue;
            };
            let stored = &bytes[range];
            if self.inflated + stored.len() as u64 > MAX_INFLATED_BYTES {
                self.problem(format!(
                    "{here}!/{}: over the {} MiB read per archive; not read",
                    n.name,
                    MAX_INFLATED_BYTES >> 20
                ));
                continue;
            }
            match n.method {
                zip::CompressionMethod::Stored => {
                    // Read in place: no copy, only the work is counted.
                    self.inflated += stored.len() as u64;
                    self.archive(stored, Some(&inner_path), depth + 1);
                }
                zip::CompressionMethod::Deflated => {
                    if let Some(b) = self.inflate(stored, n.size, &here, &n.name) {
                        self.live += b.len() as u64;
                        self.archive(&b, Some(&inner_path), depth + 1);
                        self.live -= b.len() as u64;
                    }
                }
                other => self.problem(format!(
                    "{here}!/{}: compression method {other} not supported; not read",
                    n.name
                )),
            }
        }
    }

    /// The packages an archive's own metadata names, and its nested archives. The zip
    /// reader (and its directory) lives only here.
    fn directory(
        &mut self,
        bytes: &[u8],
        inner: Option<&str>,
        here: &str,
    ) -> Option<(Vec<Package>, Vec<Nested>)> {
        let mut zip = match zip::ZipArchive::new(Cursor::new(bytes)) {
            Ok(z) => z,
            Err(e) => {
                self.problem(format!("{here}: not a readable zip archive: {e}"));
                return None;
            }
        };
        let mut poms: Vec<(String, Vec<u8>)> = Vec::new();
        let mut manifest: Option<Vec<u8>> = None;
        let mut nested: Vec<Nested> = Vec::new();
        for i in 0..zip.len() {
            if self.full() {
                break;
            }
            let Some(name) = zip.name_for_index(i).map(str::to_string) else {
                continue;
            };
            let lower = name.to_ascii_lowercase();
            if name == "META-INF/MANIFEST.MF" {
                manifest = self.metadata(&mut zip, i, &name, here);
            } else if is_pom_properties(&name) {
                if let Some(b) = self.metadata(&mut zip, i, &name, here) {
                    poms.push((name, b));
                }
            } else if [".jar", ".war", ".ear"].iter().any(|e| lower.ends_with(e)) {
                match zip.by_index_raw(i) {
                    Ok(f) => {
                        let data = f.data_start().and_then(|start| {
                            let start = usize::try_from(start).ok()?;
                            let len = usize::try_from(f.compressed_size()).ok()?;
                            Some(start..start.checked_add(len)?)
                        });
                        nested.push(Nested {
                            data,
                            method: f.compression(),
                            size: f.size(),
                            name,
                        });
                    }
                    Err(e) => self.problem(format!("{here}!/{name}: cannot read entry: {e}")),
                }
            }
        }
        drop(zip);
        let manifest = manifest
            .map(|m| parse_manifest(&String::from_utf8_lossy(&m)))
            .unwrap_or_default();
        let manifest_get = |k: &str| {
            manifest
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let file_name = inner
            .unwrap_or(self.path)
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let (file_artifact, file_version) = split_file_name(file_name);
        let license = manifest_get("Bundle-License").map(str::to_string);
        let files = inner.map(|_| vec![here.to_string()]).unwrap_or_default();
        let top = self.path;
        let package = |group: Option<String>, artifact: String, version: String| Package {
            ecosystem: Ecosystem::Maven,
            name: artifact,
            version,
            arch: None,
            source: None,
            source_version: None,
            location: Location {
                path: Some(top.to_string()),
                ..Location::default()
            },
            files: files.clone(),
            namespace: group,
            licenses: Vec::new(),
            dependencies: Vec::new(),
            cataloger: ID.to_string(),
            purl: String::new(),
        };
        let mut found: Vec<Package> = Vec::new();
        for (name, bytes) in &poms {
            let props = parse_properties(&String::from_utf8_lossy(bytes));
            let get = |k: &str| {
                props
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
            };
            match (get("artifactId"), get("version")) {
                (Some(a), Some(v)) => found.push(package(get("groupId"), a, v)),
                _ => self.problem(format!("{here}: {name} has no artifactId or version")),
            }
        }
        if found.is_empty() {
            let version = manifest_get("Implementation-Version")
                .or_else(|| manifest_get("Bundle-Version"))
                .map(str::to_string)
                .or(file_version);
            let artifact = file_artifact
                .or_else(|| {
                    manifest_get("Bundle-SymbolicName")
                        .map(|b| b.split(';').next().unwrap_or(b).trim().to_string())
                })
                .or_else(|| manifest_get("Implementation-Title").map(str::to_string));
            match (artifact, version) {
                (Some(a), Some(v)) => found.push(package(
                    manifest_get("Implementation-Vendor-Id").map(str::to_string),
                    a,
                    v,
                )),
                _ => self.problem(format!(
                    "{here}: no pom.properties, and no name and version in MANIFEST.MF or the file name"
                )),
            }
        }
        if let Some(l) = license {
            // The archive's own package: the only one, or the one named like the file.
            let own = if found.len() == 1 {
                Some(0)
            } else {
                let stem = split_file_name(file_name).0;
                found.iter().position(|p| Some(&p.name) == stem.as_ref())
            };
            if let Some(i) = own {
                found[i].licenses.push(l);
            }
        }
        Some((found, nested))
    }

    /// Inflates one small metadata entry.
    fn metadata(
        &mut self,
        zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
        index: usize,
        name: &str,
        here: &str,
    ) -> Option<Vec<u8>> {
        let mut file = match zip.by_index(index) {
            Ok(f) => f,
            Err(e) => {
                self.problem(format!("{here}!/{name}: cannot read entry: {e}"));
                return None;
            }
        };
        let limit = MAX_METADATA_BYTES.min(MAX_INFLATED_BYTES.saturating_sub(self.inflated));
        let mut out = Vec::new();
        // The declared size may lie: the read itself is capped.
        let read = (&mut file).take(limit + 1).read_to_end(&mut out);
        self.inflated += out.len() as u64;
        match read {
            Ok(_) if out.len() as u64 > limit => {
                self.problem(format!(
                    "{here}!/{name}: more than {limit} bytes inflated; not read"
                ));
                None
            }
            Ok(_) => Some(out),
            Err(e) => {
                self.problem(format!("{here}!/{name}: cannot inflate: {e}"));
                None
            }
        }
    }

    /// Inflates a deflated nested archive from its stored bytes, within the per-entry, live
    /// and per-archive caps. Raw deflate over the parent's bytes, so the parent's zip
    /// reader need not stay open (its CRC is not checked: a damaged nested archive only
    /// fails to parse).
    fn inflate(&mut self, stored: &[u8], declared: u64, here: &str, name: &str) -> Option<Vec<u8>> {
        let live_left = MAX_NESTED_LIVE_BYTES.saturating_sub(self.live);
        let total_left = MAX_INFLATED_BYTES.saturating_sub(self.inflated);
        let limit = MAX_NESTED_BYTES.min(live_left).min(total_left);
        let over = |what: String| format!("{here}!/{name}: {what}; not read");
        if declared > limit {
            let cap = if limit == MAX_NESTED_BYTES {
                format!("{} MiB per nested archive", MAX_NESTED_BYTES >> 20)
            } else if limit == live_left {
                format!(
                    "{} MiB of nested archives held at once",
                    MAX_NESTED_LIVE_BYTES >> 20
                )
            } else {
                format!("{} MiB read per archive", MAX_INFLATED_BYTES >> 20)
            };
            self.problem(over(format!(
                "{declared} bytes inflated, over the {cap} limit"
            )));
            return None;
        }
        let mut out = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        let read = flate2::read::DeflateDecoder::new(stored)
            .take(limit + 1)
            .read_to_end(&mut out);
        self.inflated += out.len() as u64;
        match read {
            Ok(_) if out.len() as u64 > limit => {
                self.problem(over(format!(
                    "inflates beyond its declared size and the {limit}-byte limit"
                )));
                None
            }
            Ok(_) => Some(out),
            Err(e) => {
                self.problem(format!("{here}!/{name}: cannot inflate: {e}"));
                None
            }
        }
    }
}

/// The largest entry count a ZIP64 end-of-central-directory record anywhere in `bytes`
/// declares. A classic record holds at most 65,535 (under [`MAX_ARCHIVE_ENTRIES`]), so only
/// ZIP64 ones can ask the zip reader for more. Every candidate is looked at, not only the
/// one a reader would pick, so the bound holds whichever the reader trusts.
fn declared_entries(bytes: &[u8]) -> Option<u64> {
    const ZIP64_EOCD: &[u8] = b"PK\x06\x06";
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    };
    memchr::memmem::find_iter(bytes, ZIP64_EOCD)
        .filter_map(|at| {
            // Entries on this disk (offset 24) and in total (offset 32).
            Some(u64_at(at + 24)?.max(u64_at(at + 32)?))
        })
        .max()
}

/// `META-INF/maven/GROUP/ARTIFACT/pom.properties`.
fn is_pom_properties(name: &str) -> bool {
    name.strip_prefix("META-INF/maven/")
        .and_then(|r| r.strip_suffix("/pom.properties"))
        .is_some_and(|r| r.split('/').count() == 2)
}

/// `guava-32.1.3-jre.jar` → (`guava`, `32.1.3-jre`): the version starts at the first `-`
/// followed by a digit.
pub fn split_file_name(file: &str) -> (Option<String>, Option<String>) {
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    let cut = stem
        .char_indices()
        .find(|&(i, c)| {
            c == '-'
                && stem[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|d| d.is_ascii_digit())
        })
        .map(|(i, _)| i);
    match cut {
        Some(i) if i > 0 => (Some(stem[..i].to_string()), Some(stem[i + 1..].to_string())),
        _ => (Some(stem.to_string()).filter(|s| !s.is_empty()), None),
    }
}

/// The main section of a manifest: `Name: value` lines (a line starting with one space
/// continues the previous value), up to the first empty line.
pub fn parse_manifest(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    for (_, v) in &mut out {
        *v = v.trim().to_string();
    }
    out
}

/// A `.properties` file: `key=value` or `key: value`, `#`/`!` comments.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '!']))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for (file, name, version) in [
            ("guava-32.1.3-jre.jar", Some("guava"), Some("32.1.3-jre")),
            ("spring-boot-3.2.1.jar", Some("spring-boot"), Some("3.2.1")),
            ("app.jar", Some("app"), None),
            ("-1.0.jar", Some("-1.0"), None),
            ("", None, None),
            (
                "jakarta.servlet-api-6.0.0.jar",
                Some("jakarta.servlet-api"),
                Some("6.0.0"),
            ),
        ] {
            let (n, v) = split_file_name(file);
            assert_eq!((n.as_deref(), v.as_deref()), (name, version), "{file}");
        }
    }

    #[test]
    fn manifest_continuation_lines() {
        let m = parse_manifest(
            "Manifest-Version: 1.0\r\nBundle-License: https://www.apache.org/licenses/LICENSE-2\r\n .0.txt\r\nImplementation-Version: 1.2\r\n\r\nName: x\r\nImplementation-Version: 9\r\n",
        );
        assert_eq!(
            m,
            vec![
                ("Manifest-Version".into(), "1.0".into()),
                (
                    "Bundle-License".into(),
                    "https://www.apache.org/licenses/LICENSE-2.0.txt".into()
                ),
                ("Implementation-Version".into(), "1.2".into()),
            ]
        );
    }

    #[test]
    fn properties() {
        let p = parse_properties(
            "#Generated by Maven\n#Tue\nartifactId=guava\ngroupId = com.google.guava\nversion:32.1.3-jre\n! c\n",
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], ("groupId".into(), "com.google.guava".into()));
        assert!(is_pom_properties(
            "META-INF/maven/com.google.guava/guava/pom.properties"
        ));
        assert!(!is_pom_properties("META-INF/maven/x/pom.properties"));
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        let r = read_archive(b"PK\x03\x04garbage", "app.jar");
        assert!(r.packages.is_empty());
        assert_eq!(r.problems.len(), 1);
        for cut in [0, 1, 10, 100] {
            let _ = read_archive(&vec![0x50; cut], "x.jar");
        }
    }
}
