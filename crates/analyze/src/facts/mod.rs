//! Image facts for the policy input (`docs/policies/input.md`): the parts of `facts` that come
//! from the layers' files — `user`, `toolchain`, `secrets`, `setuid`, `shell`,
//! `package_managers` — and the top-level `packages` and `unknowns`.
//!
//! [`derive_facts`] combines the per-layer [`LayerReport`]s with the squashed
//! [`Filesystem`]: what an image *runs with* (its user database, its compilers, its shells)
//! is read from the final filesystem only, while what it *ships* (secrets) is read from
//! every layer, deleted files included.
//!
//! ```
//! use gantry_analyze::facts::{derive_facts, LayerFacts};
//! use gantry_analyze::{squash, LayerReport};
//! use gantry_model::Digest;
//! use gantry_model::oci::ContainerConfig;
//!
//! let report = LayerReport::default();
//! let digest: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000".parse().unwrap();
//! let fs = squash([&report]);
//! let layers = [LayerFacts { index: 0, digest: &digest, report: &report }];
//! let facts = derive_facts(&layers, &fs, &ContainerConfig::default(), &[]);
//! assert_eq!(facts.user.uid, Some(0)); // no USER: root
//! ```

use std::collections::BTreeMap;

use gantry_model::oci::{ContainerConfig, History};
use gantry_model::{Digest, Location};
use serde::{Deserialize, Serialize};

use crate::package::{Ecosystem, Package};
use crate::{Filesystem, LayerReport, SquashedFile};

mod secrets;
mod system;
mod toolchain;
mod user;

pub use secrets::{SecretFact, SecretSource};
pub use system::{PackageManagerFact, SetuidFact, ShellFacts};
pub use toolchain::{Category, Evidence, ToolchainFact};
pub use user::UserFacts;

/// One walked layer, as [`derive_facts`] needs it.
///
/// `index` is the layer's position in the manifest (0 = base) — the same index
/// [`SquashedFile::layer`] carries, so the squash must have been given every manifest layer in
/// order (an empty report for a layer that was not walked, as `gantry-scan` does). Layers
/// that were not walked may be left out of the slice.
#[derive(Debug, Clone, Copy)]
pub struct LayerFacts<'a> {
    /// Manifest position (0 = base); reported as `layer_index`.
    pub index: usize,
    /// Layer blob digest; reported as `layer`.
    pub digest: &'a Digest,
    /// What the walk of that layer found.
    pub report: &'a LayerReport,
}

/// The file-derived parts of the policy input. Each field serialises to exactly the JSON of
/// the part of `docs/policies/input.md` it is named after: `user`, `toolchain`, `secrets`,
/// `setuid`, `shell` and `package_managers` go under `input.facts`; `packages` and
/// `unknowns` are top-level members of `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    /// `facts.user`.
    pub user: UserFacts,
    /// `facts.toolchain`, sorted by path, name, evidence.
    pub toolchain: Vec<ToolchainFact>,
    /// `facts.secrets`, sorted by source (file, env, history), layer, path, rule.
    pub secrets: Vec<SecretFact>,
    /// `facts.setuid`, sorted by path.
    pub setuid: Vec<SetuidFact>,
    /// `facts.shell`.
    pub shell: ShellFacts,
    /// `facts.package_managers`, sorted by path.
    pub package_managers: Vec<PackageManagerFact>,
    /// `packages`: installed packages of the final filesystem's databases, sorted by
    /// ecosystem, name, arch, version.
    pub packages: Vec<PackageFact>,
    /// `unknowns`: every file an analyzer could not (fully) read, in every layer, sorted by
    /// layer, path, analyzer.
    pub unknowns: Vec<UnknownFact>,
}

/// `packages[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageFact {
    /// `deb` or `apk`.
    pub ecosystem: Ecosystem,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture, or null.
    pub arch: Option<String>,
    /// Source package (dpkg `Source`, apk origin), or null.
    pub source: Option<String>,
    /// The database file that lists it.
    pub location: Location,
}

/// `unknowns[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnknownFact {
    /// Analyzer id.
    pub analyzer: String,
    /// Path in the layer (empty when about the whole layer).
    pub path: String,
    /// What went wrong.
    pub reason: String,
    /// Layer digest.
    pub layer: String,
    /// Layer index.
    pub layer_index: u64,
    /// The file is not visible in the final filesystem (a later layer deleted or replaced
    /// it), so the unknown does not affect facts about the final image.
    pub deleted: bool,
}

/// Derives the file facts of one image.
///
/// - `layers`: the walked layers (see [`LayerFacts`] for how `index` must match `fs`);
/// - `fs`: the squash of all layers;
/// - `config`, `history`: the image config's `config` and `history`, for `User` and for
///   credentials in `Env` and `created_by`.
pub fn derive_facts(
    layers: &[LayerFacts<'_>],
    fs: &Filesystem,
    config: &ContainerConfig,
    history: &[History],
) -> FileFacts {
    let layers = Layers::new(layers);
    let packages = final_packages_of(&layers, fs);
    let mut package_facts: Vec<PackageFact> = packages
        .iter()
        .map(|p| PackageFact {
            ecosystem: p.ecosystem,
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            source: p.source.clone(),
            location: p.location.clone(),
        })
        .collect();
    package_facts.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.arch, &a.version, &a.location).cmp(&(
            b.ecosystem,
            &b.name,
            &b.arch,
            &b.version,
            &b.location,
        ))
    });
    package_facts.dedup();
    FileFacts {
        user: user::derive(&layers, fs, &config.user),
        toolchain: toolchain::derive(&layers, fs, &packages),
        secrets: secrets::derive(&layers, fs, config, history),
        setuid: system::setuid(&layers, fs),
        shell: system::shell(fs),
        package_managers: system::package_managers(&layers, fs),
        packages: package_facts,
        unknowns: unknowns(&layers, fs),
    }
}

/// The installed packages of the final filesystem: the dpkg status file, `status.d/*`
/// entries and apk database that are visible after the squash, each package with its
/// location filled in (layer digest, index, database path) and its files (dpkg: from the
/// visible `var/lib/dpkg/info/*.list` files). Sorted by ecosystem, name, arch, version.
pub fn final_packages(layers: &[LayerFacts<'_>], fs: &Filesystem) -> Vec<Package> {
    final_packages_of(&Layers::new(layers), fs)
}

const DPKG_STATUS: &str = "var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d/";
const DPKG_INFO: &str = "var/lib/dpkg/info/";
const APK_INSTALLED: &str = "lib/apk/db/installed";

fn final_packages_of(layers: &Layers<'_>, fs: &Filesystem) -> Vec<Package> {
    let mut dbs: Vec<(&str, &SquashedFile)> = Vec::new();
    for path in [DPKG_STATUS, APK_INSTALLED] {
        if let Some(f) = fs.get(path) {
            dbs.push((path, f));
        }
    }
    dbs.extend(
        under(fs, DPKG_STATUS_D)
            .filter(|(p, _)| !p.ends_with(".md5sums"))
            .map(|(p, f)| (p.as_str(), f)),
    );
    let mut out = Vec::new();
    for (path, f) in dbs {
        let Some(layer) = layers.get(f.layer) else {
            continue;
        };
        for p in layer
            .report
            .packages
            .iter()
            .filter(|p| p.location.path.as_deref() == Some(path))
        {
            let mut p = p.clone();
            p.location = layers.location(f.layer, path);
            out.push(p);
        }
    }
    // dpkg file lists: `NAME.list` or `NAME:ARCH.list`, as visible in the final filesystem.
    let mut lists: BTreeMap<(&str, Option<&str>), &[String]> = BTreeMap::new();
    for (path, f) in under(fs, DPKG_INFO).filter(|(p, _)| p.ends_with(".list")) {
        if let Some(list) = layers
            .get(f.layer)
            .and_then(|l| l.report.file_lists.iter().rev().find(|fl| fl.path == *path))
        {
            lists.insert((list.package.as_str(), list.arch.as_deref()), &list.files);
        }
    }
    for p in out.iter_mut().filter(|p| p.ecosystem == Ecosystem::Deb) {
        let files = lists
            .get(&(p.name.as_str(), p.arch.as_deref()))
            .or_else(|| lists.get(&(p.name.as_str(), None)));
        if let Some(files) = files {
            p.files = files.to_vec();
        }
    }
    out.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.arch, &a.version, &a.location).cmp(&(
            b.ecosystem,
            &b.name,
            &b.arch,
            &b.version,
            &b.location,
        ))
    });
    out.dedup();
    out
}

fn unknowns(layers: &Layers<'_>, fs: &Filesystem) -> Vec<UnknownFact> {
    let mut out = Vec::new();
    for l in layers.all() {
        for u in &l.report.unknowns {
            let visible = u.path.is_empty() || fs.get(&u.path).is_some_and(|f| f.layer == l.index);
            out.push(UnknownFact {
                analyzer: u.analyzer.clone(),
                path: u.path.clone(),
                reason: u.reason.clone(),
                layer: l.digest.to_string(),
                layer_index: l.index as u64,
                deleted: !visible,
            });
        }
    }
    out.sort_by(|a, b| {
        (a.layer_index, &a.path, &a.analyzer, &a.reason).cmp(&(
            b.layer_index,
            &b.path,
            &b.analyzer,
            &b.reason,
        ))
    });
    out
}

/// The layers by manifest index.
pub(crate) struct Layers<'a> {
    by_index: BTreeMap<usize, LayerFacts<'a>>,
}

impl<'a> Layers<'a> {
    fn new(layers: &[LayerFacts<'a>]) -> Layers<'a> {
        Layers {
            by_index: layers.iter().map(|l| (l.index, *l)).collect(),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&LayerFacts<'a>> {
        self.by_index.get(&index)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &LayerFacts<'a>> {
        self.by_index.values()
    }

    /// A file location: digest (when the layer is known), index and path.
    pub(crate) fn location(&self, index: usize, path: &str) -> Location {
        Location {
            layer: self.get(index).map(|l| l.digest.to_string()),
            layer_index: Some(index as u64),
            path: Some(path.to_string()),
            field: None,
        }
    }
}

/// Entries strictly below `dir` (given with its trailing `/`).
pub(crate) fn under<'f>(
    fs: &'f Filesystem,
    dir: &'f str,
) -> impl Iterator<Item = (&'f String, &'f SquashedFile)> {
    fs.files
        .range::<str, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
        .take_while(move |(p, _)| p.starts_with(dir))
}

/// The last component of a path.
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The directory of a path (`""` for a top-level name).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}
