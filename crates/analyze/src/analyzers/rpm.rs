//! rpm: installed packages of Red Hat, Fedora, SUSE and derivatives, from the SQLite
//! package database (`var/lib/rpm/rpmdb.sqlite`, `usr/lib/sysimage/rpm/rpmdb.sqlite`).
//!
//! The database's `Packages` table holds one RPM header per package (`blob`): a count of
//! index entries and the length of a data store, the entries (tag, type, offset, count;
//! big-endian), then the store. The header format is parsed here by hand, with every offset
//! and count checked against the store: the crates that read RPM headers either read whole
//! `.rpm` files (lead, signature, payload) or need a system librpm, and none is maintained
//! for hostile input; the subset needed — strings, string arrays and 32-bit integers of a
//! dozen tags — is small.
//!
//! Older images keep the database in BerkeleyDB (`Packages`, RHEL ≤ 8, CentOS 7) or NDB
//! (`Packages.db`, SUSE): those become an unknown saying they are not supported yet, so a
//! policy can tell "no rpm packages" from "rpm packages not read".
//!
//! SQLite reads the database from memory (`sqlite3_deserialize` through `rusqlite`): nothing
//! is written to disk. rpm keeps the database in WAL mode, which an in-memory database
//! cannot use, so the copy handed to SQLite says "rollback journal" in its header (the file
//! format is otherwise the same; a non-empty `-wal` file is reported separately). A query on
//! a hostile database is bounded by a SQLite progress handler and a maximum value length;
//! `trusted_schema` is off and the `Packages` table must be a table, not a view.

use std::io::Read;

use gantry_model::Location;
use gantry_model::fs::FileEntry;
use rusqlite::Connection;

use super::{Analyzer, Interest, LayerAnalysis};
use crate::package::{Ecosystem, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "rpm";

/// A UBI 9 base image's `rpmdb.sqlite` is 5–10 MiB, a full Fedora workstation's about 100
/// MiB; server images with a few thousand packages stay well under 64 MiB. The database is
/// held in memory twice while it is read (the content buffer and SQLite's copy); a larger
/// one becomes an unknown.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Largest header blob read: a kernel or TeX Live package's header, with tens of thousands
/// of files, is a few MiB.
const MAX_HEADER_BYTES: usize = 32 * 1024 * 1024;

/// Index entries per header (`HEADER_TAGS_MAX` in rpm is 0xffff).
const MAX_TAGS: usize = 0xffff;

/// SQLite virtual-machine instructions one database may cost, in thousands (the progress
/// handler's granularity): reading every row of a 64 MiB table takes a few hundred
/// thousand instructions; 100 million is far above that and still well under a second.
const MAX_SQLITE_STEPS_K: u64 = 100_000;

const SQLITE_PATHS: &[&str] = &[
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];

const OTHER_PATHS: &[&str] = &[
    "var/lib/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages.db",
    "var/lib/rpm/rpmdb.sqlite-wal",
    "usr/lib/sysimage/rpm/rpmdb.sqlite-wal",
];

// Header tags and types (rpm's `rpmtag.h`).
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_OLDFILENAMES: u32 = 1027;
const TAG_SOURCERPM: u32 = 1044;
const TAG_PROVIDENAME: u32 = 1047;
const TAG_REQUIRENAME: u32 = 1049;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Reads rpm's package database.
#[derive(Debug)]
pub struct RpmAnalyzer;

impl Analyzer for RpmAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        Interest {
            // SQLite holds its own copy of the database while it is read.
            working_bytes: |len| len,
            ..Interest::paths(SQLITE_PATHS, MAX_BYTES)
        }
    }

    fn extra_interests(&self) -> Vec<Interest> {
        // Unsupported formats and the WAL are recognised by name and size: no content.
        vec![Interest::paths(OTHER_PATHS, 0)]
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(RpmLayer {
            budget: budget.clone(),
            ..RpmLayer::default()
        })
    }
}

#[derive(Default)]
struct RpmLayer {
    budget: Budget,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for RpmLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let path = entry.path.as_str();
        let budget = self.budget.clone();
        let mut unknown = |reason: String| {
            let unknown = Unknown {
                analyzer: ID.to_string(),
                path: path.to_string(),
                reason,
            };
            budget.keep(Kept::Findings, &mut self.unknowns, unknown);
        };
        if path.ends_with("-wal") {
            if entry.size > 0 {
                unknown(format!(
                    "SQLite write-ahead log of {} bytes: packages changed since the last checkpoint are not read",
                    entry.size
                ));
            }
            return;
        }
        if path.ends_with("/Packages") || path.ends_with("/Packages.db") {
            let kind = if path.ends_with(".db") {
                "NDB"
            } else {
                "BerkeleyDB"
            };
            unknown(format!(
                "rpm {kind} database not supported yet (only rpmdb.sqlite is read)"
            ));
            return;
        }
        if !complete {
            unknown(format!(
                "{} bytes, larger than the {} MiB limit for rpm databases; not parsed",
                entry.size,
                MAX_BYTES / (1024 * 1024)
            ));
            return;
        }
        let limits = (
            budget.parse_limit(Kept::Packages),
            budget.parse_limit(Kept::Files),
        );
        match read_database(content, path, limits) {
            Ok(parsed) => {
                if parsed.malformed > 0 {
                    unknown(format!(
                        "{} of {} package headers malformed (first: {})",
                        parsed.malformed,
                        parsed.malformed + parsed.packages.len(),
                        parsed.first_error.unwrap_or_default()
                    ));
                }
                let more = usize::from(parsed.more);
                let files: usize = parsed.packages.iter().map(|p| p.files.len()).sum();
                if budget.charge(Kept::Packages, parsed.packages.len() + more)
                    && budget.charge(Kept::Files, files + more)
                {
                    self.packages.extend(parsed.packages);
                }
            }
            Err(reason) => unknown(reason),
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
    }
}

/// What [`read_database`] found.
#[derive(Debug, Default)]
pub struct DatabaseParse {
    /// Installed packages (without the `gpg-pubkey` pseudo-packages rpm uses for keys).
    pub packages: Vec<Package>,
    /// Headers that could not be parsed.
    pub malformed: usize,
    /// Why the first of them failed.
    pub first_error: Option<String>,
    /// Reading stopped at a limit of [`read_database`]: more packages or files follow.
    pub more: bool,
}

/// Reads every package header of an `rpmdb.sqlite` held in `bytes`. `path` is the
/// database's path, recorded in each package's location. At most `limits.0` packages and
/// `limits.1` listed files are kept; reading stops there (`more`).
pub fn read_database(
    bytes: &[u8],
    path: &str,
    limits: (usize, usize),
) -> Result<DatabaseParse, String> {
    const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
    /// The database header; bytes 18 and 19 are the write and read format versions
    /// (1 = rollback journal, 2 = WAL).
    const SQLITE_HEADER: usize = 100;
    if !bytes.starts_with(SQLITE_MAGIC) {
        return Err("not a SQLite database (no SQLite header)".into());
    }
    if bytes.len() < SQLITE_HEADER {
        return Err(format!("{} bytes: truncated SQLite header", bytes.len()));
    }
    let sql = |e: rusqlite::Error| format!("SQLite: {e}");
    let mut conn = Connection::open_in_memory().map_err(sql)?;
    let legacy = (&bytes[..18]).chain(&[1u8, 1][..]).chain(&bytes[20..]);
    conn.deserialize_read_exact("main", legacy, bytes.len(), true)
        .map_err(|e| format!("SQLite cannot load the database: {e}"))?;
    conn.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
        i32::try_from(MAX_HEADER_BYTES).unwrap_or(i32::MAX),
    )
    .map_err(sql)?;
    let mut steps = 0u64;
    conn.progress_handler(
        1000,
        Some(move || {
            steps += 1;
            steps > MAX_SQLITE_STEPS_K
        }),
    )
    .map_err(sql)?;
    conn.pragma_update(None, "trusted_schema", false)
        .map_err(sql)?;
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = 'Packages'",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(sql(e)),
        })?;
    match kind.as_deref() {
        Some("table") => {}
        Some(other) => return Err(format!("`Packages` is a {other}, not a table")),
        None => return Err("no `Packages` table".into()),
    }
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    let mut out = DatabaseParse::default();
    // Stored headers cannot add up to more than the file holds; a schema that computes
    // values (a generated column) could, so the total is bounded too.
    let mut total = 0usize;
    let mut files = 0usize;
    while let Some(row) = rows.next().map_err(sql)? {
        let hnum: i64 = row.get(0).unwrap_or(-1);
        let parsed = match row.get_ref(1) {
            Ok(rusqlite::types::ValueRef::Blob(blob)) => {
                total += blob.len();
                if total > bytes.len() {
                    return Err(
                        "the headers add up to more than the database file: not a stored table"
                            .into(),
                    );
                }
                parse_header(blob).and_then(|h| package(&h, path))
            }
            Ok(_) => Err("blob is not a BLOB".to_string()),
            Err(e) => Err(sql(e)),
        };
        match parsed {
            Ok(Some(p)) => {
                files += p.files.len();
                if out.packages.len() >= limits.0 || files > limits.1 {
                    out.more = true;
                    break;
                }
                out.packages.push(p);
            }
            Ok(None) => {}
            Err(e) => {
                out.malformed += 1;
                out.first_error
                    .get_or_insert_with(|| format!("header {hnum}: {e}"));
            }
        }
    }
    drop(rows);
    drop(stmt);
    resolve_dependencies(&mut out.packages);
    Ok(out)
}

/// One index entry of a header.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A parsed RPM header: its index and data store.
#[derive(Debug)]
pub struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Parses a header blob as rpm stores it in its database (no leading magic): index length,
/// data length, the index, the data store.
pub fn parse_header(blob: &[u8]) -> Result<Header<'_>, String> {
    let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
        return Err(format!("{} bytes: too short for a header", blob.len()));
    };
    let (il, dl) = (il as usize, dl as usize);
    if il == 0 || il > MAX_TAGS {
        return Err(format!("{il} index entries"));
    }
    let index_end = 8 + il * 16;
    let data_end = index_end
        .checked_add(dl)
        .filter(|&end| end <= blob.len())
        .ok_or_else(|| {
            format!(
                "{il} entries and {dl} data bytes do not fit in {} bytes",
                blob.len()
            )
        })?;
    let data = &blob[index_end..data_end];
    let mut entries = Vec::with_capacity(il);
    for i in 0..il {
        let at = 8 + i * 16;
        let (Some(tag), Some(kind), Some(offset), Some(count)) = (
            be32(blob, at),
            be32(blob, at + 4),
            be32(blob, at + 8),
            be32(blob, at + 12),
        ) else {
            return Err("truncated index".into());
        };
        entries.push(Entry {
            tag,
            kind,
            offset,
            count,
        });
    }
    Ok(Header { entries, data })
}

impl Header<'_> {
    fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// A string tag (or the first of a string array / i18n string).
    fn string(&self, tag: u32) -> Result<Option<&str>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if !matches!(e.kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(format!("tag {tag}: type {} is not a string", e.kind));
        }
        self.strings_at(e, 1).map(|v| v.into_iter().next())
    }

    /// A string array tag.
    fn strings(&self, tag: u32) -> Result<Vec<&str>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(Vec::new());
        };
        if !matches!(e.kind, TYPE_STRING_ARRAY | TYPE_I18NSTRING | TYPE_STRING) {
            return Err(format!("tag {tag}: type {} is not a string array", e.kind));
        }
        let n = if e.kind == TYPE_STRING { 1 } else { e.count };
        self.strings_at(e, n)
    }

    fn strings_at(&self, e: Entry, n: u32) -> Result<Vec<&str>, String> {
        // Every string takes at least its NUL: a count beyond the store is a lie.
        if n as usize > self.data.len() {
            return Err(format!(
                "tag {}: {n} strings in {} bytes",
                e.tag,
                self.data.len()
            ));
        }
        let mut at = e.offset as usize;
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let rest = self
                .data
                .get(at..)
                .ok_or_else(|| format!("tag {}: offset {at} outside the data", e.tag))?;
            let len = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| format!("tag {}: unterminated string", e.tag))?;
            let s = std::str::from_utf8(&rest[..len])
                .map_err(|_| format!("tag {}: string is not UTF-8", e.tag))?;
            out.push(s);
            at += len + 1;
        }
        Ok(out)
    }

    /// An INT32 array tag.
    fn int32s(&self, tag: u32) -> Result<Vec<u32>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(Vec::new());
        };
        if e.kind != TYPE_INT32 {
            return Err(format!("tag {tag}: type {} is not INT32", e.kind));
        }
        let start = e.offset as usize;
        let end = (e.count as usize)
            .checked_mul(4)
            .and_then(|n| n.checked_add(start))
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| format!("tag {tag}: {} integers outside the data", e.count))?;
        Ok(self.data[start..end]
            .chunks_exact(4)
            .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
            .collect())
    }
}

/// The package a header describes, or `None` for a `gpg-pubkey` pseudo-package.
fn package(h: &Header<'_>, path: &str) -> Result<Option<Package>, String> {
    let name = h
        .string(TAG_NAME)?
        .filter(|n| !n.is_empty())
        .ok_or("no NAME")?;
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let version = h.string(TAG_VERSION)?.ok_or("no VERSION")?;
    let release = h.string(TAG_RELEASE)?.ok_or("no RELEASE")?;
    let epoch = h.int32s(TAG_EPOCH)?.first().copied().unwrap_or(0);
    let version = if epoch > 0 {
        format!("{epoch}:{version}-{release}")
    } else {
        format!("{version}-{release}")
    };
    let (source, source_version) = match h.string(TAG_SOURCERPM)? {
        Some(srpm) => split_source_rpm(srpm),
        None => (None, None),
    };
    let mut files: Vec<String> = Vec::new();
    let basenames = h.strings(TAG_BASENAMES)?;
    if basenames.is_empty() {
        files.extend(
            h.strings(TAG_OLDFILENAMES)?
                .iter()
                .map(|f| f.trim_start_matches('/').to_string()),
        );
    } else {
        let dirnames = h.strings(TAG_DIRNAMES)?;
        let indexes = h.int32s(TAG_DIRINDEXES)?;
        if indexes.len() != basenames.len() {
            return Err(format!(
                "{} file names but {} directory indexes",
                basenames.len(),
                indexes.len()
            ));
        }
        for (base, &i) in basenames.iter().zip(&indexes) {
            let dir = dirnames
                .get(i as usize)
                .ok_or_else(|| format!("directory index {i} of {}", dirnames.len()))?;
            let full = format!("{dir}{base}");
            files.push(full.trim_start_matches('/').to_string());
        }
    }
    let mut provides: Vec<String> = h
        .strings(TAG_PROVIDENAME)?
        .into_iter()
        .map(str::to_string)
        .collect();
    provides.dedup();
    Ok(Some(Package {
        ecosystem: Ecosystem::Rpm,
        name: name.to_string(),
        version,
        arch: h
            .string(TAG_ARCH)?
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        source,
        source_version,
        location: Location {
            path: Some(path.to_string()),
            ..Location::default()
        },
        files,
        namespace: None,
        licenses: h
            .string(TAG_LICENSE)?
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect(),
        // Raw requirements, then provides after a `\0` marker, until
        // `resolve_dependencies` maps capabilities to packages.
        dependencies: h
            .strings(TAG_REQUIRENAME)?
            .into_iter()
            .map(str::to_string)
            .chain(std::iter::once(PROVIDES_MARK.to_string()))
            .chain(provides)
            .collect(),
        cataloger: ID.to_string(),
        purl: String::new(),
    }))
}

/// Separates a package's requirements from its provides while the database is read.
const PROVIDES_MARK: &str = "\0provides";

/// `bash-5.1.8-6.el9.src.rpm` → (`bash`, `5.1.8-6.el9`).
fn split_source_rpm(srpm: &str) -> (Option<String>, Option<String>) {
    let stem = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))
        .unwrap_or(srpm);
    let Some((rest, release)) = stem.rsplit_once('-') else {
        return (Some(stem.to_string()).filter(|s| !s.is_empty()), None);
    };
    let Some((name, version)) = rest.rsplit_once('-') else {
        return (Some(stem.to_string()), None);
    };
    (Some(name.to_string()), Some(format!("{version}-{release}")))
}

/// Maps each package's required capabilities (`libc.so.6()(64bit)`, `/bin/sh`,
/// `config(bash)`, plain names) to the installed packages providing them, through the
/// database's provides and file lists. `rpmlib(…)` features and capabilities no installed
/// package provides are dropped.
fn resolve_dependencies(packages: &mut [Package]) {
    let mut provider: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut requires: Vec<Vec<String>> = Vec::with_capacity(packages.len());
    for p in packages.iter_mut() {
        let raw = std::mem::take(&mut p.dependencies);
        let mark = raw
            .iter()
            .position(|d| d == PROVIDES_MARK)
            .unwrap_or(raw.len());
        for cap in raw.iter().skip(mark + 1) {
            provider
                .entry(cap.clone())
                .or_insert_with(|| p.name.clone());
        }
        requires.push(raw.into_iter().take(mark).collect());
    }
    for p in packages.iter() {
        provider
            .entry(p.name.clone())
            .or_insert_with(|| p.name.clone());
        for f in &p.files {
            provider
                .entry(format!("/{f}"))
                .or_insert_with(|| p.name.clone());
        }
    }
    for (p, reqs) in packages.iter_mut().zip(requires) {
        let mut deps: Vec<String> = Vec::new();
        for r in reqs.iter().filter(|r| !r.starts_with("rpmlib(")) {
            if let Some(name) = provider.get(r)
                && *name != p.name
                && !deps.contains(name)
            {
                deps.push(name.clone());
            }
        }
        p.dependencies = deps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            split_source_rpm("bash-5.1.8-6.el9.src.rpm"),
            (Some("bash".into()), Some("5.1.8-6.el9".into()))
        );
        assert_eq!(
            split_source_rpm("python-pip-21.3.1-1.el9.noarch.src.rpm")
                .0
                .as_deref(),
            Some("python-pip")
        );
        assert_eq!(split_source_rpm("odd"), (Some("odd".into()), None));
        assert_eq!(split_source_rpm(""), (None, None));
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        let mut blob = Vec::new();
        blob.extend(1u32.to_be_bytes());
        blob.extend(8u32.to_be_bytes());
        // NAME, STRING, offset far away.
        blob.extend(TAG_NAME.to_be_bytes());
        blob.extend(TYPE_STRING.to_be_bytes());
        blob.extend(0xffff_fff0u32.to_be_bytes());
        blob.extend(1u32.to_be_bytes());
        blob.extend(b"abcdefgh");
        let h = parse_header(&blob).unwrap();
        assert!(package(&h, "x").is_err());
        for cut in 0..blob.len() {
            let _ = parse_header(&blob[..cut]).and_then(|h| package(&h, "x"));
        }
        // Huge counts.
        let mut lie = blob.clone();
        lie[8 + 4..8 + 8].copy_from_slice(&TYPE_STRING_ARRAY.to_be_bytes());
        lie[8 + 8..8 + 12].copy_from_slice(&0u32.to_be_bytes());
        lie[8 + 12..8 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
        let h = parse_header(&lie).unwrap();
        assert!(h.strings(TAG_NAME).is_err());
        assert!(parse_header(&[0xff; 16]).is_err());
        assert!(parse_header(&[]).is_err());
    }

    #[test]
    fn not_sqlite_is_an_error() {
        assert!(read_database(b"\0\x06\x15\x61 berkeley", "var/lib/rpm/Packages", (9, 9)).is_err());
        let mut garbage = b"SQLite format 3\0".to_vec();
        garbage.extend([0xAB; 4096]);
        assert!(read_database(&garbage, "x", (9, 9)).is_err());
    }
}
