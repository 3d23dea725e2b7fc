//! npm: installed Node.js packages, from each package's own `package.json` under a
//! `node_modules` directory.
//!
//! A file counts when it is `…/node_modules/NAME/package.json` or
//! `…/node_modules/@SCOPE/NAME/package.json` and every `node_modules` above it is directly
//! inside an installed package (`node_modules/a/node_modules/b/package.json`, npm's nested
//! installs). That is the tree `npm ls --all` walks; it leaves out test fixtures a package
//! ships (`node_modules/resolve/test/resolver/node_modules/x/package.json`) and the
//! application's own `package.json` (not installed from a registry; lockfiles are not read
//! either). Global installs (`usr/local/lib/node_modules/npm`) are the same shape.
//!
//! Read: `name`, `version`, `license` (a string, `{"type": …}`, or the legacy `licenses`
//! array) and the names in `dependencies` and `optionalDependencies`.

use gantry_model::Location;
use gantry_model::fs::FileEntry;
use serde_json::Value;

use super::{Analyzer, Interest, LayerAnalysis};
use crate::package::{Ecosystem, Package};
use crate::{Budget, Kept, LayerReport, Unknown};

const ID: &str = "npm";

/// Installed `package.json` files are a few KiB (npm no longer writes the README into
/// them). 1 MiB is hundreds of times that; a larger one is not parsed and becomes an
/// unknown.
pub const MAX_BYTES: usize = 1024 * 1024;

/// Reads installed npm packages.
#[derive(Debug)]
pub struct NpmAnalyzer;

impl Analyzer for NpmAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        Interest::paths(
            &[
                "**/node_modules/*/package.json",
                "**/node_modules/@*/*/package.json",
            ],
            MAX_BYTES,
        )
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(NpmLayer {
            budget: budget.clone(),
            ..NpmLayer::default()
        })
    }
}

#[derive(Default)]
struct NpmLayer {
    budget: Budget,
    packages: Vec<Package>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for NpmLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let Some(dir_name) = installed_package_dir(&entry.path) else {
            return;
        };
        let unknown = |reason: String| Unknown {
            analyzer: ID.to_string(),
            path: entry.path.clone(),
            reason,
        };
        if !complete {
            let reason = format!(
                "{} bytes, larger than the {} KiB limit for package.json; not parsed",
                entry.size,
                MAX_BYTES / 1024
            );
            self.budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
            return;
        }
        match parse_package_json(content, dir_name) {
            Ok(mut p) => {
                p.location.path = Some(entry.path.clone());
                self.budget.keep(Kept::Packages, &mut self.packages, p);
            }
            Err(reason) => self
                .budget
                .keep(Kept::Findings, &mut self.unknowns, unknown(reason)),
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.packages.extend(self.packages);
        report.unknowns.extend(self.unknowns);
    }
}

/// For an installed package's `package.json`, the package's directory name under its
/// `node_modules` (`lodash`, `@babel/core`); `None` for any other file.
pub fn installed_package_dir(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.last() != Some(&"package.json") {
        return None;
    }
    let first = parts.iter().position(|p| *p == "node_modules")?;
    // From the first node_modules on: (node_modules, NAME | @SCOPE NAME)+ package.json.
    let mut i = first;
    let mut name_start = 0;
    while i < parts.len() - 1 {
        if parts[i] != "node_modules" {
            return None;
        }
        let n = parts.get(i + 1)?;
        let len = if n.starts_with('@') { 2 } else { 1 };
        let name = &parts[i + 1..(i + 1 + len).min(parts.len() - 1)];
        if name.len() != len || name.iter().any(|s| s.is_empty() || s.starts_with('.')) {
            return None;
        }
        name_start = i + 1;
        i += 1 + len;
    }
    if i != parts.len() - 1 {
        return None;
    }
    // The byte range of the last name in `path`.
    let start: usize = parts[..name_start].iter().map(|p| p.len() + 1).sum();
    let end = path.len() - "/package.json".len();
    path.get(start..end)
}

/// Parses an installed `package.json`; `dir_name` names the package when the file does not.
pub fn parse_package_json(content: &[u8], dir_name: &str) -> Result<Package, String> {
    let v: Value = serde_json::from_slice(content).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = &v else {
        return Err("not a JSON object".into());
    };
    let name = match obj.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        None => dir_name.to_string(),
        Some(_) => return Err("`name` is not a non-empty string".into()),
    };
    let version = match obj.get("version") {
        Some(Value::String(v)) if !v.is_empty() => v.clone(),
        _ => return Err("no `version` string".into()),
    };
    let mut licenses: Vec<String> = Vec::new();
    let mut push = |l: &Value| {
        let s = match l {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("type").and_then(Value::as_str),
            _ => None,
        };
        if let Some(s) = s.map(str::trim).filter(|s| !s.is_empty())
            && !licenses.iter().any(|x| x == s)
        {
            licenses.push(s.to_string());
        }
    };
    if let Some(l) = obj.get("license") {
        push(l);
    }
    if let Some(Value::Array(ls)) = obj.get("licenses") {
        ls.iter().for_each(&mut push);
    }
    let mut dependencies: Vec<String> = Vec::new();
    for key in ["dependencies", "optionalDependencies"] {
        if let Some(Value::Object(deps)) = obj.get(key) {
            for d in deps.keys() {
                if !dependencies.contains(d) {
                    dependencies.push(d.clone());
                }
            }
        }
    }
    let namespace = name
        .strip_prefix('@')
        .and_then(|n| n.split_once('/'))
        .map(|(scope, _)| format!("@{scope}"));
    Ok(Package {
        ecosystem: Ecosystem::Npm,
        name,
        version,
        arch: None,
        source: None,
        source_version: None,
        location: Location::default(),
        files: Vec::new(),
        namespace,
        licenses,
        dependencies,
        cataloger: ID.to_string(),
        purl: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_paths() {
        for (path, want) in [
            ("app/node_modules/lodash/package.json", Some("lodash")),
            ("node_modules/lodash/package.json", Some("lodash")),
            (
                "app/node_modules/@babel/core/package.json",
                Some("@babel/core"),
            ),
            (
                "app/node_modules/a/node_modules/@s/b/package.json",
                Some("@s/b"),
            ),
            (
                "usr/local/lib/node_modules/npm/node_modules/abbrev/package.json",
                Some("abbrev"),
            ),
            ("app/package.json", None),
            ("app/node_modules/package.json", None),
            ("app/node_modules/@babel/package.json", None),
            ("app/node_modules/a/lib/package.json", None),
            (
                "app/node_modules/resolve/test/resolver/node_modules/x/package.json",
                None,
            ),
            ("app/node_modules/.bin/package.json", None),
            ("app/node_modules/a/node_modules/package.json", None),
            ("app/node_modules//package.json", None),
        ] {
            assert_eq!(installed_package_dir(path), want, "{path}");
        }
    }

    #[test]
    fn licenses_in_every_shape() {
        let p = parse_package_json(
            br#"{"name":"x","version":"1.0.0","license":{"type":"MIT","url":"u"},"licenses":[{"type":"Apache-2.0"},"MIT"],"dependencies":{"a":"^1"},"optionalDependencies":{"b":"2","a":"1"}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(p.licenses, vec!["MIT", "Apache-2.0"]);
        assert_eq!(p.dependencies, vec!["a", "b"]);
        assert_eq!(p.namespace, None);
    }

    #[test]
    fn malformed_package_json() {
        for bad in [
            &br#"{"name":"x"}"#[..],
            br#"{"name":1,"version":"1"}"#,
            br#"[1,2]"#,
            br#"{"name":"x","version":"#,
            b"\xff\xfe",
            b"",
        ] {
            assert!(parse_package_json(bad, "x").is_err(), "{bad:?}");
        }
        let p = parse_package_json(
            br#"{"version":"1.0.0","license":7,"dependencies":[]}"#,
            "dir",
        )
        .unwrap();
        assert_eq!((p.name.as_str(), p.licenses.len()), ("dir", 0));
    }
}
