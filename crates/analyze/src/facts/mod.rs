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
use crate::{Filesystem, LayerReport, OsRelease, SquashedFile};

mod dev;
mod runtime;
mod secrets;
mod system;
mod toolchain;
mod user;

pub use dev::DevDependencyFact;
pub use runtime::{BinaryNeed, TimezoneFacts, TlsFacts};
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
///
/// Not the same type as `gantry_gate::Facts` (`input.facts`), on purpose: this is what the
/// layers' *files* say, all that this crate can know. `input.facts` adds what needs the
/// manifest, the registry or build provenance — `base`, `size`, `os` — and leaves out
/// `packages` and `unknowns`, which sit at the top of the input. The shared fields are the same
/// types, moved (not copied) into `Facts` by `gantry_gate::build_input`.
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
    /// `facts.dev_dependencies`: npm packages only development needs, installed in the final
    /// image; sorted.
    #[serde(default)]
    pub dev_dependencies: Vec<DevDependencyFact>,
    /// `facts.tls`: the CA bundle, and the binaries that verify against the system store.
    #[serde(default)]
    pub tls: TlsFacts,
    /// `facts.timezone`: the zone database, and the binaries that read it.
    #[serde(default)]
    pub timezone: TimezoneFacts,
    /// `packages`: installed packages of the final filesystem (OS databases, language
    /// manifests, binaries), sorted by ecosystem, name, arch, version, location.
    pub packages: Vec<PackageFact>,
    /// `unknowns`: every file an analyzer could not (fully) read, in every layer, sorted by
    /// layer, path, analyzer.
    pub unknowns: Vec<UnknownFact>,
}

/// `packages[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageFact {
    /// The purl type: `deb`, `apk`, `rpm`, `pypi`, `npm`, `golang`, `cargo`, `maven`.
    pub ecosystem: Ecosystem,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture, or null.
    pub arch: Option<String>,
    /// Source package (dpkg `Source`, apk origin), or null.
    pub source: Option<String>,
    /// The file it was read from (database, manifest, binary, archive).
    pub location: Location,
    /// Package URL (with the image's distribution for OS packages).
    #[serde(default)]
    pub purl: String,
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
            purl: p.purl.clone(),
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
    // Toolchain rules classify OS packages (`gcc-12`, `build-base`); a pypi or npm package
    // that shares a name is not a compiler.
    let os_packages: Vec<Package> = packages
        .iter()
        .filter(|p| p.ecosystem.is_os())
        .cloned()
        .collect();
    let (tls, timezone) = runtime::derive(&layers, fs, config, &packages);
    FileFacts {
        dev_dependencies: dev::derive(&layers, fs, &packages),
        tls,
        timezone,
        user: user::derive(&layers, fs, &config.user),
        toolchain: toolchain::derive(&layers, fs, &os_packages),
        secrets: secrets::derive(&layers, fs, config, history),
        setuid: system::setuid(&layers, fs),
        shell: system::shell(fs),
        package_managers: system::package_managers(&layers, fs),
        packages: package_facts,
        unknowns: unknowns(&layers, fs),
    }
}

/// The installed packages of the final filesystem, every ecosystem: a package counts when
/// the file it was read from (`location.path`: a package database, a manifest, a binary, an
/// archive) is visible in the final filesystem *from the layer that found it* — a later
/// layer that rewrites `var/lib/dpkg/status` or deletes a `node_modules` directory takes the
/// lower layer's packages with it. Each package gets its location (layer digest, index,
/// path), for dpkg its files (the visible `var/lib/dpkg/info/*.list`) and licenses (the
/// visible `usr/share/doc/NAME/copyright`), and its purl computed with the final
/// os-release ([`final_os_release`]). Sorted by ecosystem, name, arch, version, location;
/// exact duplicates removed.
pub fn final_packages(layers: &[LayerFacts<'_>], fs: &Filesystem) -> Vec<Package> {
    final_packages_of(&Layers::new(layers), fs)
}

/// The os-release of the final filesystem: `etc/os-release` wins over `usr/lib/os-release`
/// (as systemd reads them); a symlink at `etc/os-release` (Debian, Alpine) falls through to
/// the file it names.
pub fn final_os_release(layers: &[LayerFacts<'_>], fs: &Filesystem) -> Option<OsRelease> {
    final_os_release_of(&Layers::new(layers), fs)
}

const DPKG_INFO: &str = "var/lib/dpkg/info/";
const DOC: &str = "usr/share/doc/";

fn final_os_release_of(layers: &Layers<'_>, fs: &Filesystem) -> Option<OsRelease> {
    for path in ["etc/os-release", "usr/lib/os-release"] {
        let Some(visible) = fs.get(path) else {
            continue;
        };
        if visible.entry.kind != gantry_model::fs::EntryKind::File {
            continue;
        }
        let found = layers.get(visible.layer).and_then(|l| {
            l.report
                .os_release
                .iter()
                .rev()
                .find(|(p, _)| p == path)
                .map(|(_, os)| os.clone())
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

fn final_packages_of(layers: &Layers<'_>, fs: &Filesystem) -> Vec<Package> {
    let mut out = Vec::new();
    for l in layers.all() {
        for p in &l.report.packages {
            let Some(path) = p.location.path.as_deref() else {
                continue;
            };
            if fs.get(path).is_none_or(|f| f.layer != l.index) {
                continue;
            }
            let mut p = p.clone();
            p.location = layers.location(l.index, path);
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
    let os = final_os_release_of(layers, fs);
    for p in out.iter_mut() {
        if p.ecosystem == Ecosystem::Deb {
            let files = lists
                .get(&(p.name.as_str(), p.arch.as_deref()))
                .or_else(|| lists.get(&(p.name.as_str(), None)));
            if let Some(files) = files {
                p.files = files.to_vec();
            }
            if p.licenses.is_empty() {
                p.licenses = deb_licenses(layers, fs, &p.name);
            }
        }
        p.purl = crate::purl(p, os.as_ref());
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
    dedup_python(&mut out);
    out
}

/// One Python distribution per name and site directory, as `importlib.metadata` and `pip
/// list` see them: Debian ships some distributions with both `NAME.egg-info/` and
/// `NAME-VERSION.dist-info/` in `dist-packages`; the `.dist-info` one is kept.
fn dedup_python(packages: &mut Vec<Package>) {
    fn site_dir(p: &Package) -> &str {
        let path = p.location.path.as_deref().unwrap_or_default();
        let meta_dir = if path.ends_with(".egg-info") {
            path
        } else {
            parent(path)
        };
        parent(meta_dir)
    }
    let mut seen: std::collections::HashMap<(String, String), (usize, bool)> =
        std::collections::HashMap::new();
    let mut drop = vec![false; packages.len()];
    for (i, p) in packages.iter().enumerate() {
        if p.ecosystem != Ecosystem::Pypi {
            continue;
        }
        let key = (site_dir(p).to_string(), crate::pypi_normalize(&p.name));
        let dist_info = p
            .location
            .path
            .as_deref()
            .is_some_and(|l| l.ends_with(".dist-info/METADATA"));
        match seen.get(&key) {
            Some(&(j, kept_dist_info)) => {
                if dist_info && !kept_dist_info {
                    drop[j] = true;
                    seen.insert(key, (i, true));
                } else {
                    drop[i] = true;
                }
            }
            None => {
                seen.insert(key, (i, dist_info));
            }
        }
    }
    let mut i = 0;
    packages.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
}

/// The licenses of the copyright file visible at `usr/share/doc/NAME/copyright`
/// (following links: `usr/share/doc/libgcc-s1` is often a link to `gcc-12-base`).
fn deb_licenses(layers: &Layers<'_>, fs: &Filesystem, name: &str) -> Vec<String> {
    let Some((path, f)) = fs.resolve(&format!("{DOC}{name}/copyright")) else {
        return Vec::new();
    };
    layers
        .get(f.layer)
        .and_then(|l| l.report.copyrights.iter().rev().find(|c| c.path == path))
        .map(|c| c.licenses.clone())
        .unwrap_or_default()
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
