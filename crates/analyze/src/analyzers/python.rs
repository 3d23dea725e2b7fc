//! python: installed Python distributions, from their core metadata.
//!
//! - `*.dist-info/METADATA` (wheels, pip installs);
//! - `*.egg-info/PKG-INFO` (setuptools eggs and `setup.py develop` / legacy installs);
//! - `*.egg-info` as a file (distutils-era installs, e.g. Debian's `python3-*` packages).
//!
//! All three use the email-header format (core metadata specification): `Name`, `Version`,
//! the license (`License-Expression` since metadata 2.4, else a short `License`, else the
//! `Classifier: License :: …` trove classifiers) and `Requires-Dist`. Only the header block is
//! read — it ends at the first empty line, before the long description — so the byte budget
//! only has to cover the headers. `RECORD` (the installed files) is not read yet.

use gantry_model::Location;
use gantry_model::fs::FileEntry;

use super::{Analyzer, Interest, LayerAnalysis};
use crate::package::{Ecosystem, Package};
use crate::purl::pypi_normalize;
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "python";

/// The headers of a METADATA file are a few KiB (a hundred classifiers and requirements
/// at most); the long description after them may be hundreds of KiB and is not needed.
/// 256 KiB of headers is far beyond any real distribution; a file whose header block does
/// not end within it becomes an unknown.
pub const MAX_BYTES: usize = 256 * 1024;

/// A `License:` value longer than this is the license text, not its name (old setuptools
/// wrote the whole text there).
const MAX_LICENSE_NAME: usize = 200;

/// Reads Python distribution metadata.
#[derive(Debug)]
pub struct PythonAnalyzer;

impl Analyzer for PythonAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        Interest::paths(
            &[
                "**/*.dist-info/METADATA",
                "**/*.egg-info/PKG-INFO",
                "**/*.egg-info",
            ],
            MAX_BYTES,
        )
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(PythonLayer {
            budget: budget.clone(),
            ..PythonLayer::default()
        })
    }
}

#[derive(Default)]
struct PythonLayer {
    budget: Budget,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for PythonLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        match parse_metadata(content, complete) {
            Ok(meta) => self.budget.keep(
                Kept::Packages,
                &mut self.packages,
                meta.into_package(&entry.path),
            ),
            Err(reason) => {
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

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
    }
}

/// The fields of a core-metadata file this analyzer reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// Licenses, by precedence: `License-Expression`; else a short `License`; else the
    /// license classifiers' last components.
    pub licenses: Vec<String>,
    /// `Requires-Dist` names, normalised (extras and markers ignored).
    pub requires: Vec<String>,
}

impl Metadata {
    fn into_package(self, path: &str) -> Package {
        Package {
            ecosystem: Ecosystem::Pypi,
            name: self.name,
            version: self.version,
            arch: None,
            source: None,
            source_version: None,
            location: Location {
                path: Some(path.to_string()),
                ..Location::default()
            },
            files: Vec::new(),
            namespace: None,
            licenses: self.licenses,
            dependencies: self.requires,
            cataloger: ID.to_string(),
            purl: String::new(),
        }
    }
}

/// Parses the header block of a METADATA / PKG-INFO file. `complete` says whether `content`
/// is the whole file; a truncated one is fine as long as its header block ended.
pub fn parse_metadata(content: &[u8], complete: bool) -> Result<Metadata, String> {
    if content.contains(&0) {
        return Err("not a text file (NUL bytes); not parsed".into());
    }
    let text = String::from_utf8_lossy(content);
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut ended = false;
    let mut malformed = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            ended = true;
            break;
        }
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous header.
            if let Some((_, v)) = headers.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
            }
            _ => {
                malformed.get_or_insert(i + 1);
            }
        }
    }
    if !ended && !complete {
        return Err(format!(
            "header block does not end within the first {} KiB; not parsed",
            MAX_BYTES / 1024
        ));
    }
    let get = |k: &str| {
        headers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (Some(name), Some(version)) = (get("name"), get("version")) else {
        return Err(match malformed {
            Some(line) => format!("no Name or Version header (malformed line {line})"),
            None => "no Name or Version header".to_string(),
        });
    };
    fn all<'h>(headers: &'h [(String, String)], k: &'h str) -> impl Iterator<Item = &'h str> {
        headers
            .iter()
            .filter(move |(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    let mut licenses: Vec<String> = Vec::new();
    let mut push = |l: &str| {
        let l = l.trim();
        if !l.is_empty() && !licenses.iter().any(|x| x == l) {
            licenses.push(l.to_string());
        }
    };
    if let Some(expr) = get("license-expression") {
        push(expr);
    } else if let Some(l) = get("license").filter(|l| {
        !l.contains('\n') && l.len() <= MAX_LICENSE_NAME && !l.eq_ignore_ascii_case("UNKNOWN")
    }) {
        push(l);
    } else {
        for c in all(&headers, "classifier") {
            let parts: Vec<&str> = c.split("::").map(str::trim).collect();
            if parts.first() == Some(&"License")
                && let Some(last) = parts.last()
                && parts.len() > 1
                && *last != "OSI Approved"
            {
                push(last);
            }
        }
    }
    let mut requires: Vec<String> = Vec::new();
    for r in all(&headers, "requires-dist") {
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            .unwrap_or(r.len());
        let dep = pypi_normalize(&r[..end]);
        if !dep.is_empty() && !requires.contains(&dep) {
            requires.push(dep);
        }
    }
    Ok(Metadata {
        name: name.to_string(),
        version: version.to_string(),
        licenses,
        requires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_precedence_and_requirements() {
        let m = parse_metadata(
            b"Metadata-Version: 2.4\nName: x\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: ignored\nClassifier: License :: OSI Approved :: MIT License\nRequires-Dist: A_B[extra] (>=1); python_version<'3.8'\nRequires-Dist: a-b\n\nbody\n",
            true,
        )
        .unwrap();
        assert_eq!(m.licenses, vec!["MIT OR Apache-2.0"]);
        assert_eq!(m.requires, vec!["a-b"]);
        let m = parse_metadata(
            b"Name: x\nVersion: 1\nLicense: Copyright (c) 2000\n  all the text\nClassifier: License :: OSI Approved\nClassifier: License :: OSI Approved :: BSD License\n",
            true,
        )
        .unwrap();
        assert_eq!(m.licenses, vec!["BSD License"]);
        let m = parse_metadata(b"Name: x\nVersion: 1\nLicense: UNKNOWN\n", true).unwrap();
        assert!(m.licenses.is_empty());
    }

    #[test]
    fn truncated_corrupt_and_hostile() {
        assert!(parse_metadata(b"Name: x\nVersion: 1\nSummary: s", false).is_err());
        assert!(parse_metadata(b"Name: x\nVersion: 1\n\nlong description", false).is_ok());
        assert!(parse_metadata(b"Version: 1\n", true).is_err());
        assert!(parse_metadata(b"\0\0", true).is_err());
        let text = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nRequires-Dist: idna (<4,>=2.5)\n";
        for cut in 0..text.len() {
            let _ = parse_metadata(&text[..cut], true);
            let _ = parse_metadata(&text[..cut], false);
        }
        for junk in [&b":"[..], b"\xff\xfe", b"::::\n\n", b"Name:\nVersion:\n"] {
            let _ = parse_metadata(junk, true);
        }
    }
}
