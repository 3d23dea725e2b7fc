//! dpkg: installed Debian packages, the files each one installed, and their licenses.
//!
//! Reads the status database (`var/lib/dpkg/status`; distroless images write one paragraph
//! per package under `var/lib/dpkg/status.d/`), the per-package file lists
//! (`var/lib/dpkg/info/NAME[:ARCH].list`) and the copyright files
//! (`usr/share/doc/NAME/copyright`). A layer that runs `apt-get install` rewrites the whole
//! status file, so the facts use the version visible in the final filesystem; the file lists
//! and copyright files are kept per layer and merged there.
//!
//! Dependencies are `Pre-Depends` and `Depends` without version constraints; of a group of
//! alternatives (`a | b`) the first that is installed (by name, or through another
//! package's `Provides`) counts, else the first. Licenses come from the copyright file: the
//! `License:` short names of a machine-readable (DEP-5) file, else the
//! `/usr/share/common-licenses/NAME` files it refers to. This is cheap (one small file per
//! package) and is what Syft and Trivy read too; a copyright file that names no license
//! leaves the package without one.

use gantry_model::Location;
use gantry_model::fs::FileEntry;

use super::passwd::Malformed;
use super::{Analyzer, Interest, LayerAnalysis};
use crate::package::{CopyrightFile, Ecosystem, FileList, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "dpkg";

/// A full Debian desktop (about 4,000 packages) has a status file of roughly 10 MiB, and the
/// largest `.list` files (TeX Live documentation, kernel headers) are a few MiB. 64 MiB is
/// several times the largest real database while still bounding the one content buffer a
/// layer walk holds; a bigger file is not parsed and becomes an unknown.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Copyright files are plain text; the largest in Debian (kernel, ICU, TeX Live) are a few
/// hundred KiB. Beyond 1 MiB only the licenses named in the first MiB are kept.
pub const MAX_COPYRIGHT_BYTES: usize = 1024 * 1024;

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d/";
const INFO: &str = "var/lib/dpkg/info/";
const DOC: &str = "usr/share/doc/";

/// Reads dpkg's database.
#[derive(Debug)]
pub struct DpkgAnalyzer;

impl Analyzer for DpkgAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        // 2: dependencies, licenses from copyright files, cataloger.
        2
    }

    fn interest(&self) -> Interest {
        Interest::paths(
            &[
                "var/lib/dpkg/status",
                "var/lib/dpkg/status.d/*",
                "var/lib/dpkg/info/*.list",
            ],
            MAX_BYTES,
        )
    }

    fn extra_interests(&self) -> Vec<Interest> {
        vec![Interest::paths(
            &["usr/share/doc/*/copyright"],
            MAX_COPYRIGHT_BYTES,
        )]
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(DpkgLayer {
            budget: budget.clone(),
            ..DpkgLayer::default()
        })
    }
}

#[derive(Default)]
struct DpkgLayer {
    budget: Budget,
    packages: Vec<Package>,
    lists: Vec<FileList>,
    copyrights: Vec<CopyrightFile>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for DpkgLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let path = entry.path.as_str();
        // distroless ships `status.d/NAME.md5sums` next to `status.d/NAME`: not a database.
        if path.starts_with(STATUS_D) && path.ends_with(".md5sums") {
            return;
        }
        let unknown = |reason: String| Unknown {
            analyzer: ID.to_string(),
            path: path.to_string(),
            reason,
        };
        if let Some(package) = path
            .strip_prefix(DOC)
            .and_then(|p| p.strip_suffix("/copyright"))
        {
            // A truncated copyright file still names the licenses of its first MiB.
            self.copyrights.push(CopyrightFile {
                path: path.to_string(),
                package: package.to_string(),
                licenses: parse_copyright(&String::from_utf8_lossy(content)),
            });
            return;
        }
        if !complete {
            let reason = format!(
                "{} bytes, larger than the {} MiB limit for dpkg databases; not parsed",
                entry.size,
                MAX_BYTES / (1024 * 1024)
            );
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        let text = String::from_utf8_lossy(content);
        if let Some(name) = path
            .strip_prefix(INFO)
            .and_then(|n| n.strip_suffix(".list"))
        {
            let (package, arch) = match name.split_once(':') {
                Some((p, a)) => (p.to_string(), Some(a.to_string())),
                None => (name.to_string(), None),
            };
            let (files, more) = parse_list(&text, self.budget.parse_limit(Kept::Files));
            if self
                .budget
                .charge(Kept::Files, files.len() + usize::from(more))
            {
                self.lists.push(FileList {
                    path: path.to_string(),
                    package,
                    arch,
                    files,
                });
            }
            return;
        }
        if path != STATUS && !path.starts_with(STATUS_D) {
            return;
        }
        if content.contains(&0) {
            let reason = "not a text file (NUL bytes); not parsed".into();
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        let parsed = parse_status(&text, path, self.budget.parse_limit(Kept::Packages));
        if let Some(reason) = parsed.malformed.describe(parsed.paragraphs) {
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
        }
        if self.budget.charge(
            Kept::Packages,
            parsed.packages.len() + usize::from(parsed.more),
        ) {
            self.packages.extend(parsed.packages);
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.file_lists.extend(self.lists);
        report.copyrights.extend(self.copyrights);
        report.unknowns.extend(self.unknowns);
    }
}

/// What [`parse_status`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusParse {
    /// Installed packages.
    pub packages: Vec<Package>,
    /// Well-formed paragraphs, installed or not.
    pub paragraphs: usize,
    /// Malformed lines and paragraphs (a paragraph without `Package`, or an installed one
    /// without `Version`, counts once, at its first line).
    pub malformed: Malformed,
    /// Parsing stopped at the `limit` of [`parse_status`]: more installed packages follow.
    pub more: bool,
    /// (virtual name, providing package) of installed packages, while parsing.
    provides: Vec<(String, String)>,
    limit: usize,
}

/// Parses a dpkg status file (RFC 822-like paragraphs separated by blank lines). Only
/// packages whose `Status` says they are installed count: the third word is `installed`
/// (`install ok installed`, and also `hold ok installed` — a held package is installed).
/// In distroless `status.d/` files, which are bare control files, every package counts.
/// Never fails: what cannot be understood is counted in `malformed`. At most `limit`
/// packages are collected: parsing stops at the next installed one (`more`), so a hostile
/// database costs what the caller can keep, not what it claims.
pub fn parse_status(text: &str, path: &str, limit: usize) -> StatusParse {
    let mut out = StatusParse {
        limit,
        ..StatusParse::default()
    };
    let mut para: Vec<(&str, &str)> = Vec::new();
    let mut para_line = 0;
    let mut lines = text.lines().enumerate().peekable();
    loop {
        let next = lines.next();
        if out.more {
            break;
        }
        let blank = next.is_none_or(|(_, l)| l.trim().is_empty());
        if blank {
            if !para.is_empty() {
                end_paragraph(&para, para_line, path, &mut out);
                para.clear();
            }
            if next.is_none() {
                break;
            }
            continue;
        }
        let Some((i, line)) = next else { break };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if para.is_empty() {
            para_line = i + 1;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation line of a multi-line field: nothing we read spans lines.
            if para.is_empty() {
                out.malformed.add(i + 1);
            }
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                para.push((k, v.trim()));
            }
            _ => out.malformed.add(i + 1),
        }
    }
    resolve_dependencies(&mut out.packages, &out.provides);
    out.provides.clear();
    out
}

/// Picks one name per dependency group: the first alternative installed in this database
/// (by name, or the package that provides it), else the first alternative.
fn resolve_dependencies(packages: &mut [Package], provides: &[(String, String)]) {
    let installed: std::collections::HashSet<String> =
        packages.iter().map(|p| p.name.clone()).collect();
    let provider: std::collections::HashMap<&str, &str> = provides
        .iter()
        .map(|(virt, pkg)| (virt.as_str(), pkg.as_str()))
        .collect();
    for p in packages.iter_mut() {
        let groups = std::mem::take(&mut p.dependencies);
        let mut deps: Vec<String> = Vec::new();
        for group in &groups {
            let alternatives: Vec<&str> = group.split('|').filter(|a| !a.is_empty()).collect();
            let chosen = alternatives
                .iter()
                .find(|a| installed.contains(**a))
                .map(|a| a.to_string())
                .or_else(|| {
                    alternatives
                        .iter()
                        .find_map(|a| provider.get(a).map(|p| p.to_string()))
                })
                .or_else(|| alternatives.first().map(|a| a.to_string()));
            if let Some(name) = chosen
                && name != p.name
                && !deps.contains(&name)
            {
                deps.push(name);
            }
        }
        p.dependencies = deps;
    }
}

/// Dependency groups of a `Depends`-style field, each as its alternatives' bare names
/// joined by `|` (versions, architecture qualifiers and restrictions dropped).
fn dependency_groups(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|group| {
            group
                .split('|')
                .map(bare_name)
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("|")
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// `libgcc-s1 (>= 3.0)` → `libgcc-s1`; `awk:any` → `awk`.
fn bare_name(s: &str) -> &str {
    let s = s.trim();
    let end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<' | ':'))
        .unwrap_or(s.len());
    &s[..end]
}

/// License names in a Debian copyright file: the first line of every `License:` field of a
/// machine-readable file; otherwise the `/usr/share/common-licenses/NAME` files named.
pub fn parse_copyright(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |l: &str| {
        let l = l.trim();
        if !l.is_empty() && !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    };
    let mut fields = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:") {
            fields += 1;
            push(v);
        }
    }
    if fields == 0 {
        const COMMON: &str = "/usr/share/common-licenses/";
        for (i, _) in text.match_indices(COMMON) {
            let rest = &text[i + COMMON.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | '_')))
                .unwrap_or(rest.len());
            push(rest[..end].trim_end_matches('.'));
        }
    }
    out
}

fn end_paragraph(para: &[(&str, &str)], line: usize, path: &str, out: &mut StatusParse) {
    let field = |name: &str| {
        para.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };
    let Some(name) = field("Package") else {
        out.malformed.add(line);
        return;
    };
    let installed = match field("Status") {
        Some(s) => s.split_whitespace().nth(2) == Some("installed"),
        // distroless writes each package's control file to `status.d/`, without the
        // `Status` field dpkg adds: being listed there is being installed.
        None if path.starts_with(STATUS_D) => true,
        None => {
            out.malformed.add(line);
            return;
        }
    };
    out.paragraphs += 1;
    if !installed {
        return;
    }
    if out.packages.len() >= out.limit {
        out.more = true;
        return;
    }
    let Some(version) = field("Version") else {
        out.malformed.add(line);
        return;
    };
    let (source, source_version) = match field("Source") {
        Some(s) => match s.split_once('(') {
            Some((src, ver)) => (
                Some(src.trim().to_string()).filter(|s| !s.is_empty()),
                Some(ver.trim_end_matches(')').trim().to_string()).filter(|v| !v.is_empty()),
            ),
            None => (Some(s.to_string()), None),
        },
        None => (None, None),
    };
    if let Some(provides) = field("Provides") {
        for virt in provides.split(',').map(bare_name).filter(|v| !v.is_empty()) {
            out.provides.push((virt.to_string(), name.to_string()));
        }
    }
    let mut dependencies = Vec::new();
    for f in ["Pre-Depends", "Depends"] {
        if let Some(v) = field(f) {
            dependencies.extend(dependency_groups(v));
        }
    }
    out.packages.push(Package {
        ecosystem: Ecosystem::Deb,
        name: name.to_string(),
        version: version.to_string(),
        arch: field("Architecture").map(str::to_string),
        source,
        source_version,
        location: Location {
            path: Some(path.to_string()),
            ..Location::default()
        },
        files: Vec::new(),
        namespace: None,
        licenses: Vec::new(),
        // Groups of alternatives until `resolve_dependencies` picks one name of each.
        dependencies,
        cataloger: ID.to_string(),
        purl: String::new(),
    });
}

/// Parses a `.list` file: one absolute path per line; `/.` (the root) is dropped. At most
/// `limit` paths are collected; the flag says more followed.
pub fn parse_list(text: &str, limit: usize) -> (Vec<String>, bool) {
    let mut paths = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .map(|l| l.trim_start_matches('/'))
        .filter(|l| !l.is_empty() && *l != ".");
    let files: Vec<String> = paths.by_ref().take(limit).map(str::to_string).collect();
    let more = paths.next().is_some();
    (files, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_TEXT: &str = "\
Package: gcc-12
Status: install ok installed
Priority: optional
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Description: GNU C compiler
 This is the GNU C compiler.
 .
 More text: with a colon.

Package: make
Status: deinstall ok config-files
Version: 4.3-4.1

Package: libc6
Status: hold ok installed
Multi-Arch: same
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
";

    #[test]
    fn parses_installed_packages_only() {
        let p = parse_status(STATUS_TEXT, STATUS, usize::MAX);
        let got: Vec<_> = p
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.arch.as_deref(),
                    p.source.as_deref(),
                    p.source_version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "gcc-12",
                    "12.2.0-14",
                    Some("amd64"),
                    Some("gcc-12"),
                    Some("12.2.0-14")
                ),
                (
                    "libc6",
                    "2.36-9+deb12u4",
                    Some("amd64"),
                    Some("glibc"),
                    None
                ),
            ]
        );
        assert_eq!(p.paragraphs, 3);
        assert_eq!(p.malformed, Malformed::default());
        assert_eq!(p.packages[0].location.path.as_deref(), Some(STATUS));
    }

    #[test]
    fn corrupt_status_counts_malformed_and_keeps_the_rest() {
        let text = "Package: ok\nStatus: install ok installed\nVersion: 1\n\n\
                    garbage line without colon\n\n\
                    Status: install ok installed\nVersion: 2\n\n\
                    Package: nover\nStatus: install ok installed\n";
        let p = parse_status(text, STATUS, usize::MAX);
        assert_eq!(p.packages.len(), 1);
        assert_eq!(p.malformed.count, 3);
        assert_eq!(p.malformed.first_line, Some(5));
    }

    #[test]
    fn truncated_and_hostile_input_does_not_panic() {
        for cut in 0..STATUS_TEXT.len() {
            if STATUS_TEXT.is_char_boundary(cut) {
                let _ = parse_status(&STATUS_TEXT[..cut], STATUS, usize::MAX);
            }
        }
        for input in [
            "",
            "\n\n\n",
            " leading continuation",
            ":",
            "Package:",
            "Package: x\nStatus:\n",
            "Package: x\nStatus: install ok installed\nVersion: 1\nSource: (",
            "\u{0}\u{0}\u{0}",
        ] {
            let _ = parse_status(input, STATUS, usize::MAX);
        }
        let p = parse_status(
            "Package: x\nStatus: install ok installed\nVersion: 1\nSource: (",
            STATUS,
            usize::MAX,
        );
        assert_eq!(p.packages[0].source, None);
    }

    #[test]
    fn distroless_control_files_have_no_status() {
        let text = "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n";
        let p = parse_status(text, "var/lib/dpkg/status.d/tzdata", usize::MAX);
        assert_eq!(p.packages.len(), 1);
        let p = parse_status(text, STATUS, usize::MAX);
        assert_eq!((p.packages.len(), p.malformed.count), (0, 1));
    }

    #[test]
    fn parses_list() {
        let list = "/.\n/usr\n/usr/bin\n/usr/bin/gcc-12\r\n\n";
        assert_eq!(
            parse_list(list, usize::MAX),
            (
                vec!["usr".into(), "usr/bin".into(), "usr/bin/gcc-12".into()],
                false
            )
        );
        assert_eq!(
            parse_list(list, 2),
            (vec!["usr".into(), "usr/bin".into()], true)
        );
        assert!(!parse_list(list, 3).1);
    }

    #[test]
    fn parsing_stops_one_package_past_the_limit() {
        let text: String = (0..100)
            .map(|i| format!("Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"))
            .collect();
        let p = parse_status(&text, STATUS, 7);
        assert_eq!((p.packages.len(), p.more), (7, true));
        let p = parse_status(&text, STATUS, 100);
        assert_eq!((p.packages.len(), p.more), (100, false));
    }
}
