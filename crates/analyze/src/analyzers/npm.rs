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
//!
//! For the development-dependency check the analyzer also reads, without reporting packages
//! from them: each project's own `package.json` (one not under `node_modules`: the names in
//! `dependencies`, `optionalDependencies`, `peerDependencies` and `devDependencies`), and the
//! lockfiles npm writes — `package-lock.json` (v2/v3) and the hidden
//! `node_modules/.package-lock.json` — keeping the `packages` keys npm marked `"dev": true`
//! (needed only for development; `npm ci --omit=dev` leaves them out).

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

/// Lockfiles of large applications are a few MiB (about 500 bytes per package); 32 MiB is
/// tens of thousands of packages. A larger one becomes an unknown.
pub const MAX_LOCK_BYTES: usize = 32 * 1024 * 1024;

/// A project's own `package.json`: the names it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NpmProject {
    /// Path of the `package.json`.
    pub path: String,
    /// `dependencies`, `optionalDependencies` and `peerDependencies`.
    pub dependencies: Vec<String>,
    /// `devDependencies`.
    pub dev_dependencies: Vec<String>,
}

/// An npm lockfile (v2/v3 `packages`): the installed paths npm marked `dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NpmLockfile {
    /// Path of the lockfile.
    pub path: String,
    /// The project directory its keys are relative to (`app`; empty for the root).
    pub project: String,
    /// `packages` keys with `"dev": true`, e.g. `node_modules/typescript`.
    pub dev: Vec<String>,
}

/// Reads installed npm packages.
#[derive(Debug)]
pub struct NpmAnalyzer;

impl Analyzer for NpmAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        // 2: project manifests and lockfiles (development dependencies).
        2
    }

    fn interest(&self) -> Interest {
        Interest::paths(
            &[
                "**/node_modules/*/package.json",
                "**/node_modules/@*/*/package.json",
                "**/package.json",
            ],
            MAX_BYTES,
        )
    }

    fn extra_interests(&self) -> Vec<Interest> {
        vec![Interest::paths(
            &["**/package-lock.json", "**/node_modules/.package-lock.json"],
            MAX_LOCK_BYTES,
        )]
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
    projects: Vec<NpmProject>,
    lockfiles: Vec<NpmLockfile>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for NpmLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let unknown = |reason: String| Unknown {
            analyzer: ID.to_string(),
            path: entry.path.clone(),
            reason,
        };
        if let Some(project) = lockfile_project(&entry.path) {
            if !complete {
                let reason = format!(
                    "{} bytes, larger than the {} MiB limit for lockfiles; not parsed",
                    entry.size,
                    MAX_LOCK_BYTES / (1024 * 1024)
                );
                self.budget
                    .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
                return;
            }
            // Each lockfile's dev list is bounded by MAX_LOCK_BYTES; how many lockfiles a
            // layer may carry is bounded by the findings budget.
            match parse_lockfile(content) {
                Ok(dev) => {
                    let lockfile = NpmLockfile {
                        path: entry.path.clone(),
                        project: project.to_string(),
                        dev,
                    };
                    self.budget
                        .keep(Kept::Findings, &mut self.lockfiles, lockfile);
                }
                Err(reason) => {
                    self.budget
                        .keep(Kept::Findings, &mut self.unknowns, unknown(reason))
                }
            }
            return;
        }
        let Some(dir_name) = installed_package_dir(&entry.path) else {
            // A project's own manifest: not installed from a registry, not a package.
            if entry.path.rsplit('/').next() == Some("package.json")
                && !entry.path.split('/').any(|c| c == "node_modules")
                && complete
                && let Some(project) = parse_project(&entry.path, content)
            {
                self.budget
                    .keep(Kept::Findings, &mut self.projects, project);
            }
            return;
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
        report.npm_projects.extend(self.projects);
        report.npm_lockfiles.extend(self.lockfiles);
        report.unknowns.extend(self.unknowns);
    }
}

/// The project directory of a lockfile: `app` for `app/package-lock.json` and for
/// `app/node_modules/.package-lock.json`; `None` for other files (and for a lockfile a
/// package ships inside `node_modules`, which npm ignores).
pub fn lockfile_project(path: &str) -> Option<&str> {
    if let Some(dir) = path
        .strip_suffix(".package-lock.json")
        .and_then(|p| p.strip_suffix("node_modules/"))
    {
        let dir = dir.strip_suffix('/').unwrap_or(dir);
        return (!dir.split('/').any(|c| c == "node_modules")).then_some(dir);
    }
    let name = path.rsplit('/').next()?;
    (name == "package-lock.json" && !path.split('/').any(|c| c == "node_modules"))
        .then(|| path.rsplit_once('/').map_or("", |(d, _)| d))
}

/// The `packages` keys a v2/v3 lockfile marks `"dev": true` (a v1 lockfile has no
/// `packages` and gives none).
pub fn parse_lockfile(content: &[u8]) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_slice(content).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    let mut dev: Vec<String> = match obj.get("packages") {
        Some(Value::Object(packages)) => packages
            .iter()
            .filter(|(k, p)| !k.is_empty() && p.get("dev") == Some(&Value::Bool(true)))
            .map(|(k, _)| k.clone())
            .collect(),
        Some(_) => return Err("`packages` is not an object".into()),
        None => Vec::new(),
    };
    dev.sort();
    Ok(dev)
}

/// A project's `package.json`; `None` when it does not parse (the application's own file
/// is not a package database: no unknown).
pub fn parse_project(path: &str, content: &[u8]) -> Option<NpmProject> {
    let v: Value = serde_json::from_slice(content).ok()?;
    let obj = v.as_object()?;
    let names = |keys: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = keys
            .iter()
            .filter_map(|k| obj.get(*k).and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    };
    Some(NpmProject {
        path: path.to_string(),
        dependencies: names(&["dependencies", "optionalDependencies", "peerDependencies"]),
        dev_dependencies: names(&["devDependencies"]),
    })
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
    fn lockfile_projects_and_dev_keys() {
        assert_eq!(lockfile_project("app/package-lock.json"), Some("app"));
        assert_eq!(lockfile_project("package-lock.json"), Some(""));
        assert_eq!(
            lockfile_project("app/node_modules/.package-lock.json"),
            Some("app")
        );
        assert_eq!(
            lockfile_project("node_modules/.package-lock.json"),
            Some("")
        );
        assert_eq!(
            lockfile_project("app/node_modules/x/package-lock.json"),
            None
        );
        assert_eq!(lockfile_project("app/package.json"), None);
        let dev = parse_lockfile(
            br#"{"lockfileVersion":3,"packages":{"":{"name":"web"},"node_modules/typescript":{"version":"5.6.3","dev":true},"node_modules/express":{"version":"4.21.0"},"node_modules/fsevents":{"devOptional":true}}}"#,
        )
        .unwrap();
        assert_eq!(dev, vec!["node_modules/typescript"]);
        assert_eq!(
            parse_lockfile(br#"{"lockfileVersion":1,"dependencies":{}}"#).unwrap(),
            Vec::<String>::new()
        );
        assert!(parse_lockfile(b"[1]").is_err());
        assert!(parse_lockfile(br#"{"packages":[]}"#).is_err());
        let p = parse_project(
            "app/package.json",
            br#"{"dependencies":{"express":"^4"},"peerDependencies":{"react":"*"},"devDependencies":{"typescript":"^5","jest":"^29"}}"#,
        )
        .unwrap();
        assert_eq!(p.dependencies, vec!["express", "react"]);
        assert_eq!(p.dev_dependencies, vec!["jest", "typescript"]);
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
