//! What the SBOM reads from a [`Package`]: one place, so the rest of the crate does not care
//! which cataloger filled which field.

use gantry_analyze::{OsRelease, Package};

/// The ecosystem as a purl type (`deb`, `apk`, `rpm`, `pypi`, `npm`, `golang`, `cargo`,
/// `maven`).
pub fn ecosystem(p: &Package) -> &'static str {
    p.ecosystem.as_str()
}

/// Whether the package belongs to the operating system (its package manager's database)
/// rather than to an application.
pub fn is_os_package(p: &Package) -> bool {
    p.ecosystem.is_os()
}

/// The package's purl: as `final_packages` computed it, or computed here the same way
/// (`gantry_analyze::purl`) for a package that does not carry one (built by hand).
pub fn purl(p: &Package, os: Option<&OsRelease>) -> String {
    if p.purl.is_empty() {
        gantry_analyze::purl(p, os)
    } else {
        p.purl.clone()
    }
}

/// Declared licenses, as the metadata writes them.
pub fn licenses(p: &Package) -> &[String] {
    &p.licenses
}

/// Names of the packages this one depends on, as the metadata writes them.
pub fn dependencies(p: &Package) -> &[String] {
    &p.dependencies
}

/// The cataloger (analyzer id) that found it.
pub fn cataloger(p: &Package) -> &str {
    if p.cataloger.is_empty() {
        ecosystem(p)
    } else {
        &p.cataloger
    }
}

/// Maven groupId, npm scope (`@babel`), Go module path but its last element.
pub fn namespace(p: &Package) -> Option<&str> {
    p.namespace.as_deref()
}
