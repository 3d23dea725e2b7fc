//! Package URLs (`pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`), built as the purl
//! specification's "how to build" section says: per-type normalisation of namespace and name,
//! each component percent-encoded, qualifiers with empty values dropped and the rest sorted.
//!
//! Per type (purl-spec `types/*-definition.json`):
//!
//! | Type | Namespace | Name | Qualifiers |
//! |---|---|---|---|
//! | `deb` | os-release `ID` (`debian` if unknown) | lowercase | `arch`, `distro=ID-VERSION_ID` |
//! | `apk` | os-release `ID` (`alpine` if unknown) | lowercase | `arch`, `distro` |
//! | `rpm` | os-release `ID` | as is | `arch`, `distro`, `epoch` (non-zero only) |
//! | `pypi` | — | lowercase, runs of `-_.` → `-` | — |
//! | `npm` | scope, lowercase (`%40babel`) | lowercase | — |
//! | `golang` | module path but its last element, lowercase | last element, lowercase | — |
//! | `cargo` | — | as is | — |
//! | `maven` | groupId | artifactId | — |
//! | `oci` (the image, [`oci`]) | — | last repository segment, lowercase | `arch`, `repository_url`, `tag` |
//!
//! This is Gantry's one purl encoder: the catalogers fill [`Package::purl`] with [`purl()`],
//! and gantry-sbom writes the image's own purl with [`oci`]. The vendored purl-spec test suite
//! (`tests/data/purl-spec/`) checks it.

use crate::OsRelease;
use crate::package::{Ecosystem, Package};

/// The package URL of `pkg`. `distro` is the image's os-release: it names the namespace and
/// `distro` qualifier of OS packages and is ignored for language packages.
///
/// ```
/// use gantry_analyze::{Ecosystem, OsRelease, Package, purl};
/// # use gantry_model::Location;
/// let pkg = Package {
///     ecosystem: Ecosystem::Deb,
///     name: "libc6".into(),
///     version: "2.36-9+deb12u4".into(),
///     arch: Some("amd64".into()),
///     source: Some("glibc".into()),
///     source_version: None,
///     location: Location::default(),
///     files: vec![],
///     namespace: None,
///     licenses: vec![],
///     dependencies: vec![],
///     cataloger: "dpkg".into(),
///     purl: String::new(),
/// };
/// let debian = OsRelease { id: "debian".into(), version_id: Some("12".into()), ..OsRelease::default() };
/// assert_eq!(
///     purl(&pkg, Some(&debian)),
///     "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
/// );
/// ```
pub fn purl(pkg: &Package, distro: Option<&OsRelease>) -> String {
    let distro_id = distro
        .map(|d| d.id.to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    let distro_qualifier = distro
        .and_then(|d| {
            let release = d
                .version_id
                .as_deref()
                .or(d.version_codename.as_deref())
                .filter(|v| !v.is_empty())?;
            Some(format!("{}-{release}", d.id.to_ascii_lowercase()))
        })
        .unwrap_or_default();
    let arch = pkg.arch.as_deref().unwrap_or_default();
    let mut version = pkg.version.as_str();
    let mut qualifiers: Vec<(&str, &str)> = Vec::new();
    let (namespace, name) = match pkg.ecosystem {
        Ecosystem::Deb | Ecosystem::Apk => {
            let fallback = if pkg.ecosystem == Ecosystem::Deb {
                "debian"
            } else {
                "alpine"
            };
            qualifiers.push(("arch", arch));
            qualifiers.push(("distro", &distro_qualifier));
            (
                Some(distro_id.unwrap_or_else(|| fallback.to_string())),
                pkg.name.clone(),
            )
        }
        Ecosystem::Rpm => {
            if let Some((epoch, rest)) = split_epoch(&pkg.version) {
                if !epoch.trim_start_matches('0').is_empty() {
                    qualifiers.push(("epoch", epoch));
                }
                version = rest;
            }
            qualifiers.push(("arch", arch));
            qualifiers.push(("distro", &distro_qualifier));
            (distro_id, pkg.name.clone())
        }
        Ecosystem::Npm | Ecosystem::Golang => split_namespace(pkg),
        Ecosystem::Pypi | Ecosystem::Cargo => (None, pkg.name.clone()),
        Ecosystem::Maven => (pkg.namespace.clone(), pkg.name.clone()),
    };
    typed(
        pkg.ecosystem,
        namespace.as_deref(),
        &name,
        Some(version),
        &qualifiers,
    )
}

/// The purl of a package of one of Gantry's types from its components: the type's
/// normalisation of namespace and name (the table above) applied, then [`build`].
pub fn typed(
    ecosystem: Ecosystem,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> String {
    let (namespace, name) = match ecosystem {
        Ecosystem::Deb | Ecosystem::Apk => (namespace.map(str::to_lowercase), name.to_lowercase()),
        Ecosystem::Rpm => (namespace.map(str::to_lowercase), name.to_string()),
        Ecosystem::Pypi => (namespace.map(str::to_string), pypi_normalize(name)),
        Ecosystem::Npm | Ecosystem::Golang => {
            (namespace.map(str::to_lowercase), name.to_lowercase())
        }
        Ecosystem::Cargo | Ecosystem::Maven => (namespace.map(str::to_string), name.to_string()),
    };
    build(
        ecosystem.as_str(),
        namespace.as_deref(),
        &name,
        version,
        qualifiers,
    )
}

/// The image's purl, `pkg:oci/NAME@sha256:…?arch=…&repository_url=…&tag=…` (purl-spec `oci`
/// type: no namespace, name = last repository segment, lowercased; version = manifest
/// digest).
pub fn oci(
    registry: &str,
    repository: &str,
    digest: &str,
    arch: Option<&str>,
    tag: Option<&str>,
) -> String {
    let name = repository.rsplit('/').next().unwrap_or(repository);
    let repository_url = format!("{registry}/{repository}");
    build(
        "oci",
        None,
        &name.to_lowercase(),
        Some(digest),
        &[
            ("arch", arch.unwrap_or_default()),
            ("repository_url", &repository_url),
            ("tag", tag.unwrap_or_default()),
        ],
    )
}

/// A purl from its components, in canonical form (the specification's "how to build"):
/// namespace segments, name, version and qualifier values percent-encoded
/// ([`percent_encode`]); empty namespace segments, an empty version and qualifiers with
/// empty values dropped; the rest sorted by key. No per-type normalisation: see [`typed`].
pub fn build(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    for segment in namespace
        .unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
    {
        out.push_str(&percent_encode(segment));
        out.push('/');
    }
    out.push_str(&percent_encode(name.trim_matches('/')));
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        out.push('@');
        out.push_str(&percent_encode(version));
    }
    let mut qualifiers: Vec<&(&str, &str)> =
        qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qualifiers.sort_by_key(|(key, _)| *key);
    let mut sep = '?';
    for (key, value) in qualifiers {
        out.push(sep);
        out.push_str(key);
        out.push('=');
        out.push_str(&percent_encode(value));
        sep = '&';
    }
    out
}

/// Percent-encodes one purl component: ASCII letters and digits, `.-_~` and `:` stay as
/// they are (the specification's "characters and encoding": the colon is never encoded);
/// every other byte of the UTF-8 encoding becomes `%XX` with upper-case hex digits — `/`
/// included, also in qualifier values, as the current specification's own test cases write
/// `repository_url=docker.io%2Flibrary%2Fdebian`.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// A Python distribution name normalised as PEP 503 says (and the pypi purl type requires):
/// lowercase, every run of `-`, `_` and `.` replaced by one `-`.
pub fn pypi_normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// `EPOCH:REST` when the version starts with digits and a colon.
fn split_epoch(version: &str) -> Option<(&str, &str)> {
    let (epoch, rest) = version.split_once(':')?;
    (!epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit())).then_some((epoch, rest))
}

/// Namespace and name of an npm or Go package: the recorded namespace with the name's
/// `NAMESPACE/` prefix removed, or else the name split at its last `/`.
fn split_namespace(pkg: &Package) -> (Option<String>, String) {
    if let Some(ns) = pkg.namespace.as_deref().filter(|n| !n.is_empty()) {
        let name = pkg
            .name
            .strip_prefix(ns)
            .and_then(|n| n.strip_prefix('/'))
            .unwrap_or(&pkg.name);
        return (Some(ns.to_string()), name.to_string());
    }
    match pkg.name.rsplit_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
            (Some(ns.to_string()), name.to_string())
        }
        _ => (None, pkg.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::Location;

    use super::*;

    #[test]
    fn percent_encoding_table() {
        for (input, want) in [
            ("plain-1.0_x~y", "plain-1.0_x~y"),
            ("1:2.39.2-1.1", "1:2.39.2-1.1"),
            ("2.36-9+deb12u4", "2.36-9%2Bdeb12u4"),
            ("@babel", "%40babel"),
            ("a b", "a%20b"),
            ("a/b", "a%2Fb"),
            ("q?x#y&z=w", "q%3Fx%23y%26z%3Dw"),
            ("100%", "100%25"),
            ("é", "%C3%A9"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("", ""),
            ("\u{0}", "%00"),
        ] {
            assert_eq!(percent_encode(input), want, "{input:?}");
        }
    }

    #[test]
    fn pypi_names_are_normalised() {
        for (input, want) in [
            ("Django", "django"),
            ("typing_extensions", "typing-extensions"),
            ("zope.interface", "zope-interface"),
            ("Foo__-.Bar", "foo-bar"),
            ("ruamel.yaml.clib", "ruamel-yaml-clib"),
        ] {
            assert_eq!(pypi_normalize(input), want);
        }
    }

    fn pkg(ecosystem: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem,
            name: name.into(),
            version: version.into(),
            arch: None,
            source: None,
            source_version: None,
            location: Location::default(),
            files: vec![],
            namespace: None,
            licenses: vec![],
            dependencies: vec![],
            cataloger: String::new(),
            purl: String::new(),
        }
    }

    fn os(id: &str, version: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: version.map(str::to_string),
            ..OsRelease::default()
        }
    }

    #[test]
    fn purls_by_type() {
        let debian = os("debian", Some("12"));
        let ubuntu = os("ubuntu", Some("22.04"));
        let alpine = os("alpine", Some("3.20.3"));
        let rhel = os("rhel", Some("9.4"));
        let with = |mut p: Package, f: &dyn Fn(&mut Package)| {
            f(&mut p);
            p
        };
        let arch = |a: &str| {
            let a = a.to_string();
            move |p: &mut Package| p.arch = Some(a.clone())
        };
        let ns = |n: &str| {
            let n = n.to_string();
            move |p: &mut Package| p.namespace = Some(n.clone())
        };
        let cases: Vec<(Package, Option<&OsRelease>, &str)> = vec![
            (
                with(
                    pkg(Ecosystem::Deb, "libc6", "2.36-9+deb12u4"),
                    &arch("amd64"),
                ),
                Some(&debian),
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
            ),
            (
                with(
                    pkg(Ecosystem::Deb, "git", "1:2.34.1-1ubuntu1"),
                    &arch("amd64"),
                ),
                Some(&ubuntu),
                "pkg:deb/ubuntu/git@1:2.34.1-1ubuntu1?arch=amd64&distro=ubuntu-22.04",
            ),
            (
                pkg(Ecosystem::Deb, "tzdata", "2024a-0+deb12u1"),
                None,
                "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1",
            ),
            (
                with(pkg(Ecosystem::Apk, "musl", "1.2.5-r0"), &arch("x86_64")),
                Some(&alpine),
                "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3",
            ),
            (
                with(
                    pkg(Ecosystem::Rpm, "openssl-libs", "1:3.0.7-27.el9"),
                    &arch("x86_64"),
                ),
                Some(&rhel),
                "pkg:rpm/rhel/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1",
            ),
            (
                with(
                    pkg(Ecosystem::Rpm, "NetworkManager", "0:1.46.0-1.el9"),
                    &arch("x86_64"),
                ),
                Some(&rhel),
                "pkg:rpm/rhel/NetworkManager@1.46.0-1.el9?arch=x86_64&distro=rhel-9.4",
            ),
            (
                pkg(Ecosystem::Pypi, "Typing_Extensions", "4.9.0"),
                Some(&debian),
                "pkg:pypi/typing-extensions@4.9.0",
            ),
            (
                with(pkg(Ecosystem::Npm, "@babel/core", "7.24.0"), &ns("@babel")),
                None,
                "pkg:npm/%40babel/core@7.24.0",
            ),
            (
                pkg(Ecosystem::Npm, "lodash", "4.17.21"),
                None,
                "pkg:npm/lodash@4.17.21",
            ),
            (
                pkg(Ecosystem::Npm, "JSONStream", "1.3.5"),
                None,
                "pkg:npm/jsonstream@1.3.5",
            ),
            (
                with(
                    pkg(Ecosystem::Golang, "github.com/BurntSushi/toml", "v1.3.2"),
                    &ns("github.com/BurntSushi"),
                ),
                None,
                "pkg:golang/github.com/burntsushi/toml@v1.3.2",
            ),
            (
                pkg(
                    Ecosystem::Golang,
                    "golang.org/x/net",
                    "v0.0.0-20240101000000-abcdef123456",
                ),
                None,
                "pkg:golang/golang.org/x/net@v0.0.0-20240101000000-abcdef123456",
            ),
            (
                pkg(Ecosystem::Golang, "stdlib", "go1.22.1"),
                None,
                "pkg:golang/stdlib@go1.22.1",
            ),
            (
                pkg(Ecosystem::Golang, "example.com/hello", "(devel)"),
                None,
                "pkg:golang/example.com/hello@%28devel%29",
            ),
            (
                pkg(Ecosystem::Cargo, "serde_json", "1.0.111"),
                None,
                "pkg:cargo/serde_json@1.0.111",
            ),
            (
                with(
                    pkg(Ecosystem::Maven, "guava", "32.1.3-jre"),
                    &ns("com.google.guava"),
                ),
                None,
                "pkg:maven/com.google.guava/guava@32.1.3-jre",
            ),
            (
                pkg(Ecosystem::Maven, "unnamed", ""),
                None,
                "pkg:maven/unnamed",
            ),
        ];
        for (p, distro, want) in cases {
            assert_eq!(purl(&p, distro), want, "{p:?}");
        }
    }

    #[test]
    fn oci_purl_matches_the_spec_example() {
        // purl-spec tests/types/oci-test.json, "build": the colon of the digest is not
        // encoded, the `/` of repository_url is, qualifiers sorted.
        assert_eq!(
            oci(
                "docker.io",
                "library/debian",
                "sha256:244fd47e07d10",
                Some("amd64"),
                Some("latest")
            ),
            "pkg:oci/debian@sha256:244fd47e07d10?arch=amd64&repository_url=docker.io%2Flibrary%2Fdebian&tag=latest"
        );
        assert_eq!(
            oci(
                "ghcr.io",
                "Org/Hello-Wasm",
                "sha256:244fd47e07d10",
                None,
                Some("v1")
            ),
            "pkg:oci/hello-wasm@sha256:244fd47e07d10?repository_url=ghcr.io%2FOrg%2FHello-Wasm&tag=v1"
        );
    }

    #[test]
    fn build_drops_empty_parts() {
        assert_eq!(
            build("golang", Some("/github.com//x/"), "y", None, &[("a", "")]),
            "pkg:golang/github.com/x/y"
        );
        assert_eq!(build("cargo", None, "z", Some(""), &[]), "pkg:cargo/z");
    }

    #[test]
    fn distro_without_version_uses_codename_or_nothing() {
        let sid = OsRelease {
            id: "debian".into(),
            version_codename: Some("trixie".into()),
            ..OsRelease::default()
        };
        let p = pkg(Ecosystem::Deb, "bash", "5.2.21-2");
        assert_eq!(
            purl(&p, Some(&sid)),
            "pkg:deb/debian/bash@5.2.21-2?distro=debian-trixie"
        );
        assert_eq!(
            purl(&p, Some(&os("wolfi", None))),
            "pkg:deb/wolfi/bash@5.2.21-2"
        );
    }
}
