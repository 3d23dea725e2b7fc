//! What the user names (`SourceRef`), how to reach it (`SourceOptions`, `FetchLimits`), and the
//! trait every kind of source implements (`ImageSource`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use gantry_model::ImageRef;
use gantry_model::oci::Descriptor;

use crate::document::Document;
use crate::egress::Egress;
use crate::error::RegistryError;

/// Where an image is read from.
///
/// Parsed from the prefixes skopeo and Syft use:
///
/// | Input | Source |
/// |---|---|
/// | `oci:DIR[:TAG]` | OCI image layout directory |
/// | `oci-archive:FILE[:TAG]` | tar of an OCI image layout |
/// | `docker-archive:FILE[:REPO:TAG]` | `docker save` output |
/// | `docker://REF`, `registry:REF`, `REF` | a registry (`REF` normalised as Docker does) |
///
/// As in skopeo (`containers/image` `internal.SplitPathAndImage`), the path ends at the
/// **first** `:` after the prefix, so paths containing `:` cannot be named (`./` does not
/// help); everything after it is the tag or reference. This keeps parsing free of file-system
/// look-ups and lets `docker-archive:x.tar:registry:5000/app:1` work. A prefix always wins: a
/// registry image whose name is literally `oci` must be written `docker.io/library/oci:TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// An image in a registry.
    Registry(ImageRef),
    /// An OCI image layout directory; `tag` selects the `index.json` entry annotated
    /// `org.opencontainers.image.ref.name`.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// Tag (ref name) to select.
        tag: Option<String>,
    },
    /// A tar archive of an OCI image layout.
    OciArchive {
        /// The archive.
        file: PathBuf,
        /// Tag (ref name) to select.
        tag: Option<String>,
    },
    /// A `docker save` archive.
    DockerArchive {
        /// The archive.
        file: PathBuf,
        /// `REPO:TAG` selecting one of the archive's `RepoTags` (compared after Docker
        /// normalisation).
        reference: Option<String>,
    },
}

const OCI: &str = "oci:";
const OCI_ARCHIVE: &str = "oci-archive:";
const DOCKER_ARCHIVE: &str = "docker-archive:";
const DOCKER: &str = "docker://";
const REGISTRY: &str = "registry:";

impl FromStr for SourceRef {
    type Err = RegistryError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| RegistryError::InvalidSource {
            input: input.to_string(),
            reason: reason.to_string(),
            source: None,
        };
        let registry = |s: &str| {
            s.parse::<ImageRef>().map(SourceRef::Registry).map_err(|e| {
                RegistryError::InvalidSource {
                    input: input.to_string(),
                    reason: "not an image reference".to_string(),
                    source: Some(e),
                }
            })
        };
        // oci-archive: before oci: is not needed (different prefixes), but the order documents
        // that the longer prefixes are checked first.
        if let Some(rest) = input.strip_prefix(OCI_ARCHIVE) {
            let (file, tag) = split_path(rest).map_err(&invalid)?;
            let tag = tag
                .map(|t| check_layout_tag(t).map_err(&invalid))
                .transpose()?;
            return Ok(SourceRef::OciArchive { file, tag });
        }
        if let Some(rest) = input.strip_prefix(OCI) {
            let (dir, tag) = split_path(rest).map_err(&invalid)?;
            let tag = tag
                .map(|t| check_layout_tag(t).map_err(&invalid))
                .transpose()?;
            return Ok(SourceRef::OciLayout { dir, tag });
        }
        if let Some(rest) = input.strip_prefix(DOCKER_ARCHIVE) {
            let (file, reference) = split_path(rest).map_err(&invalid)?;
            if let Some(r) = reference {
                let parsed: ImageRef = r.parse().map_err(|e| RegistryError::InvalidSource {
                    input: input.to_string(),
                    reason: "the part after the file is not a REPO:TAG reference".to_string(),
                    source: Some(e),
                })?;
                if parsed.digest().is_some() {
                    return Err(invalid(
                        "a docker-archive is selected by REPO:TAG, not by digest",
                    ));
                }
            }
            return Ok(SourceRef::DockerArchive {
                file,
                reference: reference.map(str::to_string),
            });
        }
        if let Some(rest) = input.strip_prefix(DOCKER) {
            return registry(rest);
        }
        if let Some(rest) = input.strip_prefix(REGISTRY) {
            return registry(rest);
        }
        registry(input)
    }
}

/// Splits `PATH[:REST]` at the first `:` (skopeo's rule).
fn split_path(rest: &str) -> Result<(PathBuf, Option<&str>), &'static str> {
    let (path, after) = match rest.split_once(':') {
        Some((p, a)) => (p, Some(a)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err("the path is empty");
    }
    if after == Some("") {
        return Err("nothing after ':' (leave the ':' out to take the only image)");
    }
    Ok((PathBuf::from(path), after))
}

/// skopeo's grammar for OCI layout ref names (`oci/layout/oci_transport.go` `refRegexp`):
/// `[a-zA-Z0-9._-]+` components separated by `:`, `/` or `@`.
fn check_layout_tag(tag: &str) -> Result<String, &'static str> {
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if tag.split([':', '/', '@']).all(component) {
        Ok(tag.to_string())
    } else {
        Err("invalid tag (components of [A-Za-z0-9._-] separated by ':', '/' or '@')")
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with =
            |f: &mut fmt::Formatter<'_>, prefix: &str, path: &Path, extra: &Option<String>| {
                write!(f, "{prefix}{}", path.display())?;
                if let Some(x) = extra {
                    write!(f, ":{x}")?;
                }
                Ok(())
            };
        match self {
            SourceRef::Registry(r) => write!(f, "{r}"),
            SourceRef::OciLayout { dir, tag } => with(f, OCI, dir, tag),
            SourceRef::OciArchive { file, tag } => with(f, OCI_ARCHIVE, file, tag),
            SourceRef::DockerArchive { file, reference } => {
                with(f, DOCKER_ARCHIVE, file, reference)
            }
        }
    }
}

/// Limits on what is read from a source. Every value bounds memory or waiting where the data
/// enters Gantry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLimits {
    /// Largest manifest or index accepted (also `index.json`, docker-archive `manifest.json`).
    /// Default 4 MiB: the limit Distribution enforces when a manifest is pushed
    /// (`maxManifestBodySize = 4 << 20`) and containerd when it fetches one, so no conforming
    /// registry serves a larger manifest, and one manifest per scan in memory stays small.
    pub max_manifest_bytes: u64,
    /// Largest image config accepted. Default 8 MiB: registries put no limit on config blobs,
    /// and configs grow with `history` (one entry per build step) and labels; the largest seen
    /// in practice are a few hundred KiB, so 8 MiB leaves an order of magnitude of headroom
    /// while keeping a config (held in memory and handed to policy) bounded.
    pub max_config_bytes: u64,
    /// TCP connect plus TLS handshake. Default 10 s: a registry that has not completed a
    /// handshake by then is down or filtered; waiting longer only delays the error.
    pub connect_timeout: Duration,
    /// Longest silence while reading any response, blobs included. Default 60 s: layers of
    /// gigabytes on slow links keep flowing as long as bytes arrive; a minute without a byte is
    /// a stalled connection.
    pub read_timeout: Duration,
    /// Whole-request limit for small requests: manifests, configs, token requests and the
    /// `/v2/` ping, body included. Default 30 s: these are at most a few MiB, so 30 s only
    /// expires on a stalled or trickling registry (the idle timeout alone cannot catch a
    /// registry that sends one byte a minute). For layer blobs it bounds only the wait for
    /// the response headers; the body then runs under `read_timeout` alone.
    pub request_timeout_manifest: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_manifest_bytes: 4 << 20,
            max_config_bytes: 8 << 20,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            request_timeout_manifest: Duration::from_secs(30),
        }
    }
}

/// How to reach a source.
#[derive(Clone, Default)]
pub struct SourceOptions {
    /// Which registry hosts may be connected to, and on which addresses (default: public
    /// addresses only). Checked by [`open`] before connecting, and on every address, redirect
    /// and token realm the registry client meets.
    pub egress: Egress,
    /// Registries allowed over plain HTTP, as `host` (any port) or `host:port`. Loopback
    /// registries (`localhost`, `127.0.0.0/8`, `::1`) that `egress` lists are allowed too, as
    /// Docker allows them. These registries are still tried over HTTPS first, without
    /// certificate verification.
    pub insecure_registries: Vec<String>,
    /// Docker `config.json` to take credentials from (a file, or a directory holding
    /// `config.json`). Default: `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Explicit `(username, password)`; overrides the Docker config.
    pub credentials: Option<(String, String)>,
    /// Size and time limits.
    pub limits: FetchLimits,
}

impl fmt::Debug for SourceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceOptions")
            .field("egress", &self.egress)
            .field("insecure_registries", &self.insecure_registries)
            .field("docker_config", &self.docker_config)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("limits", &self.limits)
            .finish()
    }
}

/// The raw bytes of a blob as stored (compressed layers stay compressed).
pub type BlobStream = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// One place images come from: a registry repository, an OCI layout, or an archive.
///
/// [`crate::resolve_one`] and [`crate::resolve_all_platforms`] use it to go from the named
/// document to image manifests and configs; the scanner then streams layers with
/// [`ImageSource::blob`].
#[async_trait::async_trait]
pub trait ImageSource: Send + Sync + fmt::Debug {
    /// How to name this source in messages (`ghcr.io/o/app:1`, `oci:./dir:tag`, …).
    fn describe(&self) -> String;

    /// The registry reference, for registry sources.
    fn reference(&self) -> Option<&ImageRef> {
        None
    }

    /// The document the source names: an image manifest or an index.
    async fn root(&self) -> Result<Document, RegistryError>;

    /// A manifest or nested index named by a descriptor of an index: size-capped and
    /// digest-verified.
    async fn manifest(&self, desc: &Descriptor) -> Result<Document, RegistryError>;

    /// An image config: size-capped and digest-verified.
    async fn config(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError>;

    /// The stored bytes of a blob (a layer), streamed, **not** verified: the layer walker
    /// hashes and counts them while it reads. Errors while reading arrive as `io::Error`s that
    /// carry a [`RegistryError`] where one applies ([`RegistryError::from_io_ref`]).
    async fn blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SourceRef {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_local_prefixes() {
        assert_eq!(
            parse("oci:./img"),
            SourceRef::OciLayout {
                dir: "./img".into(),
                tag: None
            }
        );
        assert_eq!(
            parse("oci:/tmp/img:v1.2"),
            SourceRef::OciLayout {
                dir: "/tmp/img".into(),
                tag: Some("v1.2".into())
            }
        );
        assert_eq!(
            parse("oci-archive:img.tar:latest"),
            SourceRef::OciArchive {
                file: "img.tar".into(),
                tag: Some("latest".into())
            }
        );
        // The first ':' ends the path, so a reference with a registry port works.
        assert_eq!(
            parse("docker-archive:save.tar:localhost:5000/app:1"),
            SourceRef::DockerArchive {
                file: "save.tar".into(),
                reference: Some("localhost:5000/app:1".into())
            }
        );
        assert_eq!(
            parse("docker-archive:save.tar"),
            SourceRef::DockerArchive {
                file: "save.tar".into(),
                reference: None
            }
        );
        // Ref names may be full references (skopeo's grammar).
        assert!(
            matches!(parse("oci:d:example.com/app:1"), SourceRef::OciLayout { tag: Some(t), .. } if t == "example.com/app:1")
        );
    }

    #[test]
    fn parses_registry_references() {
        assert_eq!(
            parse("alpine"),
            SourceRef::Registry("docker.io/library/alpine:latest".parse().unwrap())
        );
        assert_eq!(
            parse("docker://ghcr.io/o/app:1"),
            SourceRef::Registry("ghcr.io/o/app:1".parse().unwrap())
        );
        assert_eq!(
            parse("registry:127.0.0.1:5000/a"),
            SourceRef::Registry("127.0.0.1:5000/a:latest".parse().unwrap())
        );
        // Not a prefix: an image called "ocix".
        assert!(matches!(parse("ocix:1"), SourceRef::Registry(_)));
    }

    #[test]
    fn rejects_bad_sources() {
        for bad in [
            "oci:",
            "oci::tag",
            "oci:dir:",
            "oci:dir:bad tag",
            "oci-archive:f.tar:a::b",
            "docker-archive:",
            "docker-archive:f.tar:Upper/Case",
            "docker-archive:f.tar:alpine@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "docker://",
            "UPPER",
            "",
        ] {
            let err = bad.parse::<SourceRef>().expect_err(bad);
            assert_eq!(err.code(), "invalid-source", "{bad}");
        }
    }

    #[test]
    fn displays_round_trip() {
        for s in [
            "oci:./img",
            "oci:/tmp/img:v1",
            "oci-archive:a.tar:t",
            "docker-archive:save.tar:localhost:5000/app:1",
            "docker-archive:save.tar",
            "ghcr.io/o/app:1",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
        assert_eq!(
            parse("alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
    }

    #[test]
    fn options_debug_hides_the_password() {
        let opts = SourceOptions {
            credentials: Some(("me".into(), "hunter2".into())),
            ..SourceOptions::default()
        };
        let dbg = format!("{opts:?}");
        assert!(dbg.contains("me") && !dbg.contains("hunter2"), "{dbg}");
    }
}
