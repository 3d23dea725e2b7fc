use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Digest;

/// Docker Hub's canonical domain in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Legacy spelling of Docker Hub that Docker rewrites to [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Repository path limit from distribution/reference (`RepositoryNameTotalLengthMax`).
const MAX_NAME_LEN: usize = 255;
/// Tag limit from the grammar `[\w][\w.-]{0,127}`.
const MAX_TAG_LEN: usize = 128;

/// An image reference normalised as Docker normalises it (`ParseNormalizedNamed`):
/// `alpine` → `docker.io/library/alpine:latest`, `host:5000/ns/repo:tag`, `repo@sha256:…`.
///
/// A reference with both a tag and a digest keeps the tag for display, but
/// [`ImageRef::digest`] is what gets pulled (Docker's `ParseDockerRef` drops the tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Empty input.
    #[error("image reference is empty")]
    Empty,
    /// Uppercase letters in the repository path.
    #[error("image reference {0:?}: repository name must be lowercase")]
    Uppercase(String),
    /// A path component breaks the grammar.
    #[error(
        "image reference {0:?}: invalid repository name (components are [a-z0-9] joined by '.', '_', '__' or '-')"
    )]
    InvalidName(String),
    /// Repository path too long.
    #[error("image reference {0:?}: repository name longer than {MAX_NAME_LEN} characters")]
    NameTooLong(String),
    /// A 64-hex string where a name belongs (Docker refuses these as ambiguous with image IDs).
    #[error(
        "image reference {0:?}: a 64-character hex string is an image ID, not a repository name"
    )]
    LooksLikeId(String),
    /// Bad tag.
    #[error(
        "image reference {0:?}: invalid tag (at most {MAX_TAG_LEN} of [A-Za-z0-9_.-], not starting with '.' or '-')"
    )]
    InvalidTag(String),
    /// Bad digest.
    #[error("image reference {0:?}: {1}")]
    InvalidDigest(String, crate::DigestError),
    /// Bad registry host.
    #[error("image reference {0:?}: invalid registry host")]
    InvalidHost(String),
}

impl ImageRef {
    /// Registry domain (with port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Tag, if written or defaulted (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest, if written.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository at another digest (keeps the tag for display).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host part of the registry, without port or IPv6 brackets.
    pub fn host(&self) -> &str {
        registry_host(&self.registry)
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `::1`), where plain
    /// HTTP is allowed without `--insecure-registry`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }
}

/// Host of a `host[:port]` or `[v6]:port` registry string.
fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn valid_component(c: &str) -> bool {
    // path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    if d.is_empty() {
        return false;
    }
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        (None, after.strip_prefix(':'))
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        }
    }
}

fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match t.as_bytes().first() {
        Some(&f) if word(f) => {}
        _ => return false,
    }
    t.len() <= MAX_TAG_LEN && t.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let err_name = || ReferenceError::InvalidName(input.to_string());
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (
                n,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| ReferenceError::InvalidDigest(input.to_string(), e))?,
                ),
            ),
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(&name_tag[at + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(ReferenceError::InvalidTag(input.to_string()));
        }
        if name.is_empty() {
            return Err(err_name());
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::LooksLikeId(input.to_string()));
        }
        // splitDockerDomain: the first component is a domain when it has '.' or ':', is
        // "localhost", or has uppercase letters (repository names cannot).
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if registry == DOCKER_HUB_LEGACY {
            registry = DOCKER_HUB.to_string();
        }
        if !valid_domain(&registry) {
            return Err(ReferenceError::InvalidHost(input.to_string()));
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(input.to_string()));
        }
        if !repository.split('/').all(valid_component) {
            return Err(err_name());
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong(input.to_string()));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        s.parse::<ImageRef>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(norm("ubuntu:22.04"), "docker.io/library/ubuntu:22.04");
        assert_eq!(norm("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(norm("docker.io/ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(
            norm("index.docker.io/ubuntu"),
            "docker.io/library/ubuntu:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("registry:5000/app"), "registry:5000/app:latest");
        assert_eq!(norm("host:5000/ns/repo:tag"), "host:5000/ns/repo:tag");
        assert_eq!(norm("ghcr.io/o/app"), "ghcr.io/o/app:latest");
        assert_eq!(
            norm(&format!("alpine@{D}")),
            format!("docker.io/library/alpine@{D}")
        );
        assert_eq!(
            norm(&format!("nginx:1.25@{D}")),
            format!("docker.io/library/nginx:1.25@{D}")
        );
        assert_eq!(norm("[::1]:5000/app:v1"), "[::1]:5000/app:v1");
        assert_eq!(
            norm("a__b/c-d--e.f:1.0-rc_1"),
            "docker.io/a__b/c-d--e.f:1.0-rc_1"
        );
    }

    #[test]
    fn parts_and_loopback() {
        let r: ImageRef = "127.0.0.1:5000/ns/app:v1".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "ns/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.host(), "127.0.0.1");
        assert!(r.is_loopback());
        assert!(
            "localhost:5000/a"
                .parse::<ImageRef>()
                .unwrap()
                .is_loopback()
        );
        assert!("[::1]:5000/a".parse::<ImageRef>().unwrap().is_loopback());
        assert!(!"ghcr.io/a".parse::<ImageRef>().unwrap().is_loopback());
        assert!(
            !"127.0.0.1.example.com/a"
                .parse::<ImageRef>()
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn rejects_invalid() {
        assert_eq!("".parse::<ImageRef>(), Err(ReferenceError::Empty));
        assert!(matches!(
            "Ubuntu".parse::<ImageRef>(),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            "ubuntu:".parse::<ImageRef>(),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            "ubuntu:-x".parse::<ImageRef>(),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            "ubuntu@sha256:abc".parse::<ImageRef>(),
            Err(ReferenceError::InvalidDigest(..))
        ));
        assert!(matches!(
            "a/-b".parse::<ImageRef>(),
            Err(ReferenceError::InvalidName(_))
        ));
        assert!(matches!(
            "a//b".parse::<ImageRef>(),
            Err(ReferenceError::InvalidName(_))
        ));
        assert!(matches!(
            "a/b..c".parse::<ImageRef>(),
            Err(ReferenceError::InvalidName(_))
        ));
        assert!(matches!(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse::<ImageRef>(),
            Err(ReferenceError::LooksLikeId(_))
        ));
        let long = format!("a/{}", "b".repeat(300));
        assert!(matches!(
            long.parse::<ImageRef>(),
            Err(ReferenceError::NameTooLong(_))
        ));
        assert!(matches!(
            "host:port/app".parse::<ImageRef>(),
            Err(ReferenceError::InvalidHost(_))
        ));
    }
}
