//! Package URLs (`package-url/purl-spec`): the image's `pkg:oci/…` and percent-encoding.
//!
//! Package purls are computed by the catalogers (`gantry_analyze::Package::purl`); this module
//! builds the image's own purl and holds the one encoder both use, so every purl in a document
//! is encoded the same way: everything but the RFC 3986 unreserved characters
//! (`A-Z a-z 0-9 - . _ ~`) is percent-encoded in namespace segments, name, version and
//! qualifier values (`1:2.36-9` → `1%3A2.36-9`, `docker.io/library/debian` →
//! `docker.io%2Flibrary%2Fdebian`), as Trivy and Syft write them.

use std::fmt::Write as _;

/// Percent-encodes one purl component (a namespace segment, the name, the version or a
/// qualifier value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Builds `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`: namespace split on `/` and each segment
/// encoded; qualifiers with empty values dropped, sorted by key (the canonical form).
pub fn build(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            out.push_str(&encode(seg));
            out.push('/');
        }
    }
    out.push_str(&encode(name));
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        out.push('@');
        out.push_str(&encode(v));
    }
    let mut qs: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qs.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in qs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// The image's purl, `pkg:oci/NAME@sha256%3A…?arch=…&repository_url=…&tag=…` (purl-spec `oci`
/// type: no namespace, name = last repository segment, version = manifest digest).
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
        &name.to_ascii_lowercase(),
        Some(digest),
        &[
            ("arch", arch.unwrap_or("")),
            ("repository_url", &repository_url),
            ("tag", tag.unwrap_or("")),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_trivy_and_syft() {
        assert_eq!(encode("10.3+deb10u2"), "10.3%2Bdeb10u2");
        assert_eq!(encode("1:2.36-9"), "1%3A2.36-9");
        assert_eq!(encode("libstdc++6"), "libstdc%2B%2B6");
        assert_eq!(encode("@types"), "%40types");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn builds_canonical_purls() {
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "libc6",
                Some("2.36-9+deb12u9"),
                &[("distro", "debian-12"), ("arch", "amd64")]
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            build("npm", Some("@babel"), "core", Some("7.0.0"), &[("x", "")]),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            build("golang", Some("github.com/x"), "y", None, &[]),
            "pkg:golang/github.com/x/y"
        );
    }

    #[test]
    fn oci_purl_matches_the_spec_example() {
        // purl-spec types/oci: pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=docker.io%2Flibrary%2Fdebian&arch=amd64&tag=latest
        // (canonical form sorts the qualifiers).
        assert_eq!(
            oci(
                "docker.io",
                "library/debian",
                "sha256:244fd47e07d10",
                Some("amd64"),
                Some("latest")
            ),
            "pkg:oci/debian@sha256%3A244fd47e07d10?arch=amd64&repository_url=docker.io%2Flibrary%2Fdebian&tag=latest"
        );
    }
}
