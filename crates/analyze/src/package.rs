//! Installed OS packages as the package databases record them.
//!
//! The types are shaped for the SBOM catalogers that will grow out of them (purls, licenses,
//! CPEs): one [`Package`] per installed package, with the database it came from and, when the
//! database says, the files it installed — so any file in the image can be attributed to its
//! package.

use gantry_model::Location;
use serde::{Deserialize, Serialize};

/// The packaging system a package belongs to (the purl type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// Debian and derivatives (`var/lib/dpkg/status`).
    Deb,
    /// Alpine (`lib/apk/db/installed`).
    Apk,
}

impl Ecosystem {
    /// `deb` or `apk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// Packaging system.
    pub ecosystem: Ecosystem,
    /// Binary package name (`gcc-12`, `musl-dev`).
    pub name: String,
    /// Version as the database writes it (`12.2.0-14`, `1.2.4-r2`).
    pub version: String,
    /// Architecture (`amd64`, `all`, `x86_64`), when recorded.
    pub arch: Option<String>,
    /// Source package (dpkg `Source:`, apk origin `o:`), when the database records one.
    pub source: Option<String>,
    /// Version of the source package when the database records one that differs
    /// (dpkg `Source: glibc (2.36-9)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The database file. In a layer report only `path` is set (the layer is the report's);
    /// [`crate::facts::final_packages`] fills in the layer.
    pub location: Location,
    /// Files the package installed (normalised paths, no leading `/`), when the database
    /// lists them: apk's `F:`/`R:` lines; for dpkg, `var/lib/dpkg/info/NAME.list` merged in by
    /// [`crate::facts::final_packages`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
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
