//! apk: installed Alpine packages and their files, from `lib/apk/db/installed`.
//!
//! The database is paragraphs of `K:value` lines separated by blank lines: `P` name, `V`
//! version, `A` arch, `o` origin (source package), `L` license (an SPDX expression in current
//! Alpine), `D` dependencies, `p` provides, and the file list as `F:dir` followed by that
//! directory's `R:file` lines.
//!
//! Dependencies (`D:`) name packages, or virtual names another package provides (`so:libc.musl-x86_64.so.1`,
//! `cmd:sh`, `pc:zlib`, a path like `/bin/sh`): those are resolved to the installed package
//! that provides them (`p:`) or ships the path, and dropped when none does; conflicts
//! (`!name`) are not dependencies.

use gantry_model::Location;
use gantry_model::fs::FileEntry;

use super::passwd::Malformed;
use super::{Analyzer, Interest, LayerAnalysis};
use crate::package::{Ecosystem, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "apk";

/// The installed database carries every file of every package; a large Alpine image (about
/// 1,000 packages, 100,000 files) writes about 8 MiB. 32 MiB is four times that and still
/// bounds the content buffer; a bigger file is not parsed and becomes an unknown.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

const INSTALLED: &str = "lib/apk/db/installed";

/// Reads apk's database.
#[derive(Debug)]
pub struct ApkAnalyzer;

impl Analyzer for ApkAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        // 2: licenses, dependencies, cataloger.
        2
    }

    fn interest(&self) -> Interest {
        Interest::paths(&[INSTALLED], MAX_BYTES)
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(ApkLayer {
            budget: budget.clone(),
            ..ApkLayer::default()
        })
    }
}

#[derive(Default)]
struct ApkLayer {
    budget: Budget,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for ApkLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let unknown = |reason: String| Unknown {
            analyzer: ID.to_string(),
            path: entry.path.clone(),
            reason,
        };
        let budget = &self.budget;
        if !complete {
            let reason = format!(
                "{} bytes, larger than the {} MiB limit for the apk database; not parsed",
                entry.size,
                MAX_BYTES / (1024 * 1024)
            );
            budget.keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        if content.contains(&0) {
            let reason = "not a text file (NUL bytes); not parsed".into();
            budget.keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        let limits = (
            budget.parse_limit(Kept::Packages),
            budget.parse_limit(Kept::Files),
        );
        let parsed = parse_installed(&String::from_utf8_lossy(content), &entry.path, limits);
        if let Some(reason) = parsed.malformed.describe(parsed.packages.len()) {
            budget.keep(Kept::Findings, &mut self.unknowns, unknown(reason));
        }
        let more = usize::from(parsed.more);
        let files: usize = parsed.packages.iter().map(|p| p.files.len()).sum();
        if budget.charge(Kept::Packages, parsed.packages.len() + more)
            && budget.charge(Kept::Files, files + more)
        {
            self.packages.extend(parsed.packages);
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
    }
}

/// What [`parse_installed`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledParse {
    /// Installed packages, with their files.
    pub packages: Vec<Package>,
    /// Malformed lines, and paragraphs without `P` or `V` (counted at their first line).
    pub malformed: Malformed,
    /// Parsing stopped at a limit of [`parse_installed`]: more packages or files follow.
    pub more: bool,
    /// (provided name, package) from `p:` lines, while parsing.
    provides: Vec<(String, String)>,
    /// Package and file limits, and the files collected so far.
    limits: (usize, usize),
    files: usize,
}

#[derive(Default)]
struct Draft {
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    license: Option<String>,
    depends: Vec<String>,
    provides: Vec<String>,
    dir: String,
    files: Vec<String>,
    first_line: usize,
    lines: usize,
}

/// Parses `lib/apk/db/installed`. Never fails: what cannot be understood is counted. At
/// most `limits.0` packages and `limits.1` listed files are collected; parsing stops there
/// (`more`).
pub fn parse_installed(text: &str, path: &str, limits: (usize, usize)) -> InstalledParse {
    let mut out = InstalledParse {
        limits,
        ..InstalledParse::default()
    };
    let mut d = Draft::default();
    for (i, line) in text.lines().enumerate() {
        if out.more {
            break;
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            finish(std::mem::take(&mut d), path, &mut out);
            continue;
        }
        if d.lines == 0 {
            d.first_line = i + 1;
        }
        d.lines += 1;
        let Some((key, value)) = line.split_once(':').filter(|(k, _)| k.len() == 1) else {
            out.malformed.add(i + 1);
            continue;
        };
        let value = value.trim();
        match key {
            "P" => d.name = Some(value.to_string()),
            "V" => d.version = Some(value.to_string()),
            "A" => d.arch = Some(value.to_string()),
            "o" => d.origin = Some(value.to_string()),
            "L" => d.license = Some(value.to_string()),
            "D" => d
                .depends
                .extend(value.split_whitespace().map(str::to_string)),
            "p" => d
                .provides
                .extend(value.split_whitespace().map(str::to_string)),
            "F" => d.dir = value.trim_matches('/').to_string(),
            "R" => {
                let file = value.trim_start_matches('/');
                if out.files + d.files.len() >= out.limits.1 {
                    out.more = true;
                } else if !file.is_empty() {
                    d.files.push(if d.dir.is_empty() {
                        file.to_string()
                    } else {
                        format!("{}/{}", d.dir, file)
                    });
                }
            }
            _ => {}
        }
    }
    if !out.more {
        finish(d, path, &mut out);
    }
    let provider = provides_of(&out.packages, &out.provides);
    resolve_dependencies(&mut out.packages, &provider);
    out.provides.clear();
    out
}

/// Every name a dependency may use for an installed package: its own name, what it
/// provides, and the paths it ships (as `/path`).
fn provides_of(
    packages: &[Package],
    provides: &[(String, String)],
) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    for (virt, pkg) in provides {
        map.entry(virt.clone()).or_insert_with(|| pkg.clone());
    }
    for p in packages {
        for f in &p.files {
            map.entry(format!("/{f}")).or_insert_with(|| p.name.clone());
        }
    }
    for p in packages {
        map.insert(p.name.clone(), p.name.clone());
    }
    map
}

fn resolve_dependencies(
    packages: &mut [Package],
    provider: &std::collections::HashMap<String, String>,
) {
    for p in packages.iter_mut() {
        let raw = std::mem::take(&mut p.dependencies);
        let mut deps: Vec<String> = Vec::new();
        for d in raw.iter().filter(|d| !d.starts_with('!')) {
            let bare = strip_constraint(d);
            let name = match provider.get(bare) {
                Some(n) => n.clone(),
                // An unresolved virtual name does not name a package.
                None if bare.contains(':') || bare.starts_with('/') => continue,
                None => bare.to_string(),
            };
            if name != p.name && !deps.contains(&name) {
                deps.push(name);
            }
        }
        p.dependencies = deps;
    }
}

/// `so:libc.musl-x86_64.so.1=1` → `so:libc.musl-x86_64.so.1`; `busybox>=1.36` → `busybox`.
fn strip_constraint(token: &str) -> &str {
    let end = token.find(['=', '<', '>', '~']).unwrap_or(token.len());
    &token[..end]
}

fn finish(d: Draft, path: &str, out: &mut InstalledParse) {
    if d.lines == 0 {
        return;
    }
    let (Some(name), Some(version)) = (
        d.name.filter(|n| !n.is_empty()),
        d.version.filter(|v| !v.is_empty()),
    ) else {
        out.malformed.add(d.first_line);
        return;
    };
    if out.packages.len() >= out.limits.0 {
        out.more = true;
        return;
    }
    out.files += d.files.len();
    for p in &d.provides {
        out.provides
            .push((strip_constraint(p).to_string(), name.clone()));
    }
    out.packages.push(Package {
        ecosystem: Ecosystem::Apk,
        name,
        version,
        arch: d.arch.filter(|a| !a.is_empty()),
        source: d.origin.filter(|o| !o.is_empty()),
        source_version: None,
        location: Location {
            path: Some(path.to_string()),
            ..Location::default()
        },
        files: d.files,
        namespace: None,
        licenses: d.license.into_iter().filter(|l| !l.is_empty()).collect(),
        // Raw `D:` tokens until `resolve_dependencies` names the packages.
        dependencies: d.depends,
        cataloger: ID.to_string(),
        purl: String::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: &str = "\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
o:musl
L:MIT
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

P:gcc
V:13.2.1_git20231014-r0
A:x86_64
o:gcc
F:usr/bin
R:gcc
R:x86_64-alpine-linux-musl-gcc
F:usr/libexec/gcc/x86_64-alpine-linux-musl/13.2.1
R:cc1
";

    #[test]
    fn parses_packages_with_files() {
        let p = parse_installed(DB, INSTALLED, (usize::MAX, usize::MAX));
        assert_eq!(p.malformed, Malformed::default());
        assert_eq!(p.packages.len(), 2);
        let gcc = &p.packages[1];
        assert_eq!(gcc.name, "gcc");
        assert_eq!(gcc.version, "13.2.1_git20231014-r0");
        assert_eq!(gcc.arch.as_deref(), Some("x86_64"));
        assert_eq!(
            gcc.files,
            vec![
                "usr/bin/gcc",
                "usr/bin/x86_64-alpine-linux-musl-gcc",
                "usr/libexec/gcc/x86_64-alpine-linux-musl/13.2.1/cc1"
            ]
        );
        assert_eq!(p.packages[0].files[0], "lib/ld-musl-x86_64.so.1");
    }

    #[test]
    fn corrupt_and_truncated_input() {
        let p = parse_installed(
            "P:nover\nA:x\n\nnot a line\nP:ok\nV:1\n",
            INSTALLED,
            (usize::MAX, usize::MAX),
        );
        assert_eq!(p.packages.len(), 1);
        assert_eq!(p.malformed.count, 2);
        for cut in 0..DB.len() {
            let _ = parse_installed(&DB[..cut], INSTALLED, (usize::MAX, usize::MAX));
        }
        for input in ["", ":", "::::", "R:orphan", "\u{0}:\u{0}", "PP:x\nV:1"] {
            let _ = parse_installed(input, INSTALLED, (usize::MAX, usize::MAX));
        }
    }
}
