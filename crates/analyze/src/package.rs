//! Installed packages as their package databases and manifests record them.
//!
//! One [`Package`] per installed package, whatever the ecosystem: the OS package databases
//! (dpkg, apk, rpm) and the language manifests (Python metadata, npm `package.json`, Go and
//! Rust build info embedded in binaries, Java archive metadata). Each carries the file it
//! was read from, the files it installed when the metadata lists them, its declared licenses
//! and dependencies, the analyzer that found it, and — once [`crate::facts::final_packages`]
//! knows the image's distribution — its package URL.

use gantry_model::Location;
use serde::{Deserialize, Serialize};

/// The packaging system a package belongs to; [`Ecosystem::as_str`] is its purl type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// Debian and derivatives (`var/lib/dpkg/status`).
    Deb,
    /// Alpine (`lib/apk/db/installed`).
    Apk,
    /// Red Hat, Fedora, SUSE and derivatives (`rpmdb.sqlite`).
    Rpm,
    /// Python distributions (`*.dist-info/METADATA`, `*.egg-info`).
    Pypi,
    /// npm packages (`node_modules/**/package.json`).
    Npm,
    /// Go modules compiled into a binary (its embedded build info).
    Golang,
    /// Rust crates compiled into a binary (cargo-auditable's `.dep-v0` section).
    Cargo,
    /// Java archives (`pom.properties`, `MANIFEST.MF`).
    Maven,
}

impl Ecosystem {
    /// The purl type: `deb`, `apk`, `rpm`, `pypi`, `npm`, `golang`, `cargo`, `maven`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Golang => "golang",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Maven => "maven",
        }
    }

    /// Whether this is an operating-system package manager (dpkg, apk, rpm): the packages
    /// that own system files and that toolchain rules classify.
    pub fn is_os(self) -> bool {
        matches!(self, Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm)
    }
}

/// One installed package.
///
/// `name` is the name the ecosystem's own tools print (`dpkg-query -W`, `pip list`,
/// `npm ls`, `go version -m`): `libc6`, `Django`, `@babel/core`, `github.com/gorilla/mux`;
/// for Maven it is the artifactId, with the groupId in `namespace`. The purl is derived from
/// it by [`crate::purl()`] (normalised, lowercased and split as each purl type requires).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// Packaging system.
    pub ecosystem: Ecosystem,
    /// Package name (see the type's documentation).
    pub name: String,
    /// Version as the metadata writes it (`12.2.0-14`, `1.2.4-r2`, `v1.8.0`). dpkg and rpm
    /// versions carry a non-zero epoch as `EPOCH:` (`1:2.39.2-1.1`, `1:3.0.7-27.el9`); rpm
    /// versions are `VERSION-RELEASE`.
    pub version: String,
    /// Architecture (`amd64`, `all`, `x86_64`, `noarch`), when recorded.
    pub arch: Option<String>,
    /// Source package (dpkg `Source:`, apk origin `o:`, rpm source RPM name), when the
    /// metadata records one.
    pub source: Option<String>,
    /// Version of the source package when the database records one that differs
    /// (dpkg `Source: glibc (2.36-9)`, rpm `SOURCERPM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The metadata file (database, manifest, binary or archive). In a layer report only
    /// `path` is set (the layer is the report's); [`crate::facts::final_packages`] fills in
    /// the layer.
    pub location: Location,
    /// Files the package installed (normalised paths, no leading `/`), when the metadata
    /// lists them: apk's `F:`/`R:` lines, rpm's file list, for dpkg
    /// `var/lib/dpkg/info/NAME.list` merged in by [`crate::facts::final_packages`]. For a
    /// Java archive nested in another, the nested archive as `OUTER!/INNER` (the `jar:` URL
    /// convention), since it is not a path of the filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The purl namespace where the ecosystem has one of its own: the Maven groupId, the npm
    /// scope (`@babel`), the Go module path without its last element (`github.com/gorilla`).
    /// OS packages leave it empty: their purl namespace is the distribution's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Licenses as the metadata declares them (SPDX ids or expressions where the metadata
    /// uses them, free text otherwise), in the order declared, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// Names of the packages this one depends on according to its metadata, without
    /// versions, in the order declared, without duplicates. Virtual names (dpkg `Provides`,
    /// apk `so:`/`cmd:`, rpm capabilities) are resolved to the providing package of the
    /// same database when there is one; Python names are normalised (PEP 503).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Id of the analyzer that found it (`dpkg`, `python`, `go-buildinfo`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cataloger: String,
    /// The package URL, computed by [`crate::facts::final_packages`] with the final
    /// os-release (empty in layer reports).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purl: String,
}

/// A dpkg file list, `var/lib/dpkg/info/NAME[:ARCH].list`: every path the package installed
/// (directories included, as dpkg records them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    /// Path of the list file.
    pub path: String,
    /// Package name from the file name.
    pub package: String,
    /// Architecture qualifier from the file name (`libc6:amd64.list`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Normalised paths (no leading `/`; dpkg's `/.` root line dropped).
    pub files: Vec<String>,
}

/// The licenses a Debian package's `usr/share/doc/NAME/copyright` file names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyrightFile {
    /// Path of the copyright file.
    pub path: String,
    /// Package name from the directory name.
    pub package: String,
    /// License short names, in order of appearance, without duplicates.
    pub licenses: Vec<String>,
}
