//! `facts.dev_dependencies`: npm packages installed in the final image that only development
//! needs (what `npm ci --omit=dev` leaves out).
//!
//! Two kinds of evidence, per project (a directory with `node_modules`):
//! - `lockfile`: the project's `package-lock.json` or npm's hidden
//!   `node_modules/.package-lock.json` (v2/v3) marks the package's path `"dev": true`;
//! - `dependency-graph` (no lockfile in the final image): the package is reachable from the
//!   project's `devDependencies` and not from its `dependencies`, `optionalDependencies` or
//!   `peerDependencies`, following each installed package's own dependencies the way Node
//!   resolves them (the nearest `node_modules/NAME` up the tree).
//!
//! Only packages whose `package.json` is visible in the final filesystem count. Python
//! development tools need no facts of their own: the policy matches `packages[]` (pypi)
//! against a list.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::Location;
use serde::{Deserialize, Serialize};

use super::Layers;
use crate::Filesystem;
use crate::package::{Ecosystem, Package};

/// `facts.dev_dependencies[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DevDependencyFact {
    /// `npm`.
    pub ecosystem: String,
    /// Package name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// The project directory (`app`; `""` for the image root).
    pub project: String,
    /// `lockfile` or `dependency-graph`.
    pub evidence: String,
    /// The lockfile that marks it, or the project's `package.json`.
    pub source: String,
    /// The installed package's `package.json`.
    pub location: Location,
}

fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_string()
    } else {
        format!("{dir}/{rest}")
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

pub(crate) fn derive(
    layers: &Layers<'_>,
    fs: &Filesystem,
    packages: &[Package],
) -> Vec<DevDependencyFact> {
    // Installed npm packages of the final filesystem, by the directory of their package.json.
    let installed: BTreeMap<&str, &Package> = packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Npm)
        .filter_map(|p| Some((parent(p.location.path.as_deref()?), p)))
        .collect();
    let visible = |layer: usize, path: &str| fs.get(path).is_some_and(|f| f.layer == layer);
    let mut out = Vec::new();
    let mut with_lockfile: BTreeSet<String> = BTreeSet::new();
    for l in layers.all() {
        for lock in &l.report.npm_lockfiles {
            if !visible(l.index, &lock.path) {
                continue;
            }
            with_lockfile.insert(lock.project.clone());
            for key in &lock.dev {
                let dir = join(&lock.project, key);
                if let Some(p) = installed.get(dir.as_str()) {
                    out.push(fact(p, &lock.project, "lockfile", &lock.path));
                }
            }
        }
    }
    for l in layers.all() {
        for project in &l.report.npm_projects {
            let dir = parent(&project.path).to_string();
            if !visible(l.index, &project.path) || with_lockfile.contains(&dir) {
                continue;
            }
            let prod = reachable(&installed, &dir, &project.dependencies);
            let dev = reachable(&installed, &dir, &project.dev_dependencies);
            for pkg_dir in dev.difference(&prod) {
                if let Some(p) = installed.get(pkg_dir.as_str()) {
                    out.push(fact(p, &dir, "dependency-graph", &project.path));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn fact(p: &Package, project: &str, evidence: &str, source: &str) -> DevDependencyFact {
    DevDependencyFact {
        ecosystem: "npm".into(),
        name: p.name.clone(),
        version: p.version.clone(),
        project: project.to_string(),
        evidence: evidence.into(),
        source: source.to_string(),
        location: p.location.clone(),
    }
}

/// Node's resolution of `name` required from the package (or project) at `from`: for `from`
/// and each directory above it (not above `project`) that is not itself a `node_modules`,
/// the first `DIR/node_modules/name` installed.
fn resolve<'a>(
    installed: &BTreeMap<&'a str, &Package>,
    project: &str,
    from: &str,
    name: &str,
) -> Option<&'a str> {
    let mut dir = from;
    loop {
        if dir.rsplit('/').next() != Some("node_modules") {
            let candidate = join(dir, &format!("node_modules/{name}"));
            if let Some((k, _)) = installed.get_key_value(candidate.as_str()) {
                return Some(k);
            }
        }
        if dir.len() <= project.len() {
            return None;
        }
        dir = parent(dir);
    }
}

/// Package directories reachable from `roots` (names required by the project at `project`).
fn reachable(
    installed: &BTreeMap<&str, &Package>,
    project: &str,
    roots: &[String],
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: Vec<(String, String)> = roots
        .iter()
        .map(|n| (project.to_string(), n.clone()))
        .collect();
    // Bounded by the number of installed packages: each is expanded once.
    while let Some((from, name)) = queue.pop() {
        let Some(dir) = resolve(installed, project, &from, &name) else {
            continue;
        };
        if !seen.insert(dir.to_string()) {
            continue;
        }
        if let Some(p) = installed.get(dir) {
            for d in &p.dependencies {
                queue.push((dir.to_string(), d.clone()));
            }
        }
    }
    seen
}
