//! `facts.setuid`, `facts.shell`, `facts.package_managers`: read off the final filesystem.

use gantry_model::Location;
use gantry_model::fs::EntryKind;
use serde::{Deserialize, Serialize};

use super::{Layers, base_name, parent};
use crate::Filesystem;

/// `facts.setuid[]`: a regular file (or hard link) with the setuid or setgid bit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SetuidFact {
    /// Path.
    pub path: String,
    /// Permission bits as a number (`0o4755` is 2541).
    pub mode: u32,
    /// Setuid bit.
    pub setuid: bool,
    /// Setgid bit.
    pub setgid: bool,
    /// Where the entry comes from.
    pub location: Location,
}

/// `facts.shell`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellFacts {
    /// At least one shell resolves to a file.
    pub present: bool,
    /// Shell paths that resolve to a file, sorted.
    pub paths: Vec<String>,
}

/// `facts.package_managers[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageManagerFact {
    /// Tool name (`apt`, `pip3`…).
    pub name: String,
    /// Path as found (`usr/bin/apt`, `bin/apk`).
    pub path: String,
    /// The file it resolves to, in its layer.
    pub location: Location,
}

/// Regular files and hard links with mode & 0o6000, sorted by path.
pub(crate) fn setuid(layers: &Layers<'_>, fs: &Filesystem) -> Vec<SetuidFact> {
    fs.files
        .iter()
        .filter(|(_, f)| matches!(f.entry.kind, EntryKind::File | EntryKind::Hardlink))
        .filter(|(_, f)| f.entry.mode & 0o6000 != 0)
        .map(|(path, f)| SetuidFact {
            path: path.clone(),
            mode: f.entry.mode,
            setuid: f.entry.mode & 0o4000 != 0,
            setgid: f.entry.mode & 0o2000 != 0,
            location: layers.location(f.layer, path),
        })
        .collect()
}

/// Directories on a default `PATH`.
const BIN_DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
];

const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"];

/// Whether `path` resolves (through symlinks) to something that is not a directory.
fn resolves_to_file(fs: &Filesystem, path: &str) -> Option<(String, usize)> {
    let (real, f) = fs.resolve(path)?;
    (f.entry.kind != EntryKind::Dir).then_some((real, f.layer))
}

/// Shells on the default `PATH` directories that resolve to a file (a dangling link runs
/// nothing). With a merged `/usr`, `bin/sh` resolves through the `bin` link and is listed
/// next to `usr/bin/sh`.
pub(crate) fn shell(fs: &Filesystem) -> ShellFacts {
    let mut paths: Vec<String> = BIN_DIRS
        .iter()
        .flat_map(|d| SHELLS.iter().map(move |s| format!("{d}/{s}")))
        .filter(|p| resolves_to_file(fs, p).is_some())
        .collect();
    paths.sort();
    ShellFacts {
        present: !paths.is_empty(),
        paths,
    }
}

const PACKAGE_MANAGERS: &[&str] = &[
    "apt", "apt-get", "dpkg", "apk", "rpm", "dnf", "yum", "microdnf", "pip", "pip3", "npm", "yarn",
    "gem",
];

fn package_manager_name(name: &str) -> bool {
    PACKAGE_MANAGERS.contains(&name)
        || name
            .strip_prefix("pip3.")
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Package managers in the default `PATH` directories and in any other `bin` directory
/// (a virtualenv's `bin/pip`), that resolve to a file; one per tool and file. Sorted by path.
pub(crate) fn package_managers(layers: &Layers<'_>, fs: &Filesystem) -> Vec<PackageManagerFact> {
    let mut candidates: Vec<String> = BIN_DIRS
        .iter()
        .flat_map(|d| PACKAGE_MANAGERS.iter().map(move |n| format!("{d}/{n}")))
        .collect();
    candidates.extend(
        fs.files
            .iter()
            .filter(|(p, f)| {
                f.entry.kind != EntryKind::Dir
                    && matches!(base_name(parent(p)), "bin" | "sbin")
                    && package_manager_name(base_name(p))
            })
            .map(|(p, _)| p.clone()),
    );
    candidates.sort();
    candidates.dedup();
    let mut seen = std::collections::BTreeSet::new();
    candidates
        .into_iter()
        .filter_map(|path| {
            let (real, layer) = resolves_to_file(fs, &path)?;
            let name = base_name(&path).to_string();
            // With a merged /usr, `bin/apt` and `usr/bin/apt` are one file: listed once,
            // under the first (shortest) path.
            seen.insert((name.clone(), real.clone()))
                .then(|| PackageManagerFact {
                    name,
                    location: layers.location(layer, &real),
                    path,
                })
        })
        .collect()
}
