//! The one error type of this crate, and the one place reqwest's errors and the registry's
//! error envelopes are turned into it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use gantry_model::{Platform, ReferenceError};

use crate::egress::Refused;

/// A boxed foreign error kept as a `#[source]`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an image could not be read from its source.
///
/// Messages name the image, registry or file; the foreign cause (if any) is the error's
/// [`source`](std::error::Error::source). [`RegistryError::code`] gives a stable identifier.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A source string (`oci:…`, `docker-archive:…`, an image reference) could not be parsed.
    #[error("invalid image source {input:?}: {reason}")]
    InvalidSource {
        /// The string as given.
        input: String,
        /// What is wrong with it.
        reason: String,
        /// The reference parser's error, when the string was taken as an image reference.
        #[source]
        source: Option<ReferenceError>,
    },
    /// The registry answered 401/403, or refused the credentials while issuing a token.
    #[error(
        "registry {registry} refused access to {repository} (credentials missing or wrong, or no pull permission)"
    )]
    Unauthorized {
        /// Registry host (with port).
        registry: String,
        /// Repository path.
        repository: String,
    },
    /// A manifest, blob, tag, repository or file does not exist.
    #[error("{what} not found: {reference}")]
    NotFound {
        /// `manifest`, `blob`, `tag`, `repository`, `file`.
        what: &'static str,
        /// What was looked up, as the user would recognise it.
        reference: String,
    },
    /// HTTP 429: the registry is rate-limiting this client (Docker Hub's pull limit).
    #[error("registry {registry} is rate-limiting requests (HTTP 429); retry later or log in")]
    TooManyRequests {
        /// Registry host.
        registry: String,
    },
    /// A 5xx answer.
    #[error("registry {registry} failed with HTTP {status}")]
    Server {
        /// Registry host.
        registry: String,
        /// HTTP status code.
        status: u16,
    },
    /// No answer (connect, idle read, or whole request) within the configured time.
    #[error("registry {registry} did not answer within {after:?}")]
    Timeout {
        /// Registry host.
        registry: String,
        /// The limit that expired.
        after: Duration,
    },
    /// TCP or TLS connection failure.
    #[error("cannot connect to registry {registry}")]
    Connect {
        /// Registry host.
        registry: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// The registry answers plain HTTP only and is neither on loopback nor listed as insecure.
    #[error(
        "registry {registry} speaks plain HTTP only; list it as an insecure registry to allow that"
    )]
    InsecureNotAllowed {
        /// Registry host.
        registry: String,
    },
    /// A manifest, config or metadata file is larger than its limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was being read (names the image or file).
        what: String,
        /// Its size (announced or read so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A manifest, index, config or metadata file is not JSON of the expected shape.
    #[error("{what} is not valid JSON of the expected shape")]
    InvalidJson {
        /// What was being parsed.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Content does not hash to the digest that names it.
    #[error("{what}: content hashes to {actual}, expected {expected}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest that named it.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// Content does not have the size its descriptor announces.
    #[error("{what}: content is {actual} bytes, the descriptor says {expected}")]
    SizeMismatch {
        /// What was fetched.
        what: String,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// An index has no image for the requested platform.
    #[error("no image for platform {wanted} (available: {})", list(available))]
    NoMatchingPlatform {
        /// The requested platform.
        wanted: Platform,
        /// The platforms the index offers (attestations left out).
        available: Vec<Platform>,
    },
    /// A local layout or archive holds several images and none was named.
    #[error("{location} holds several images; name one of: {}", available.join(", "))]
    Ambiguous {
        /// The layout or archive.
        location: String,
        /// Tags (or `RepoTags`) that can be named.
        available: Vec<String>,
    },
    /// Structurally wrong image (schema version, rootfs, layers vs diff IDs, …).
    #[error("malformed image: {reason}")]
    MalformedImage {
        /// Precise reason.
        reason: String,
    },
    /// A manifest or config media type Gantry does not read (schema 1, artifacts, …).
    #[error("unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// The media type as found.
        media_type: String,
    },
    /// A tar archive (oci-archive, docker-archive) is not a readable tar of the expected shape.
    #[error("archive {path}: {reason}")]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An operating-system error reading a local file.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The Docker `config.json` could not be used.
    #[error("docker config {path}: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// An allowlist is configured and the reference matches none of its rules. Nothing was
    /// connected to.
    #[error(
        "registry {registry} is not allowed ({reference} matches no rule of the registry allowlist); add {registry} or a {registry}/NAMESPACE prefix to [registry] allow (serve) or --allow-registry (CLI)"
    )]
    RegistryNotAllowed {
        /// The reference as given.
        reference: String,
        /// Its registry host (with port).
        registry: String,
    },
    /// A host the registry client was about to connect to (the registry, a redirect target, a
    /// token realm) is on an address that is reached only when listed (loopback, link-local,
    /// private, …), or a redirect led somewhere it may not go.
    #[error(
        "registry {registry}: connection to {host} refused: {reason}; list the host to allow it ([registry] allow or --allow-registry)"
    )]
    AddressNotAllowed {
        /// The registry being read.
        registry: String,
        /// The host refused (the registry itself, or a host it sent Gantry to).
        host: String,
        /// Why (the address and its class, a port not listed, plain HTTP).
        reason: String,
    },
    /// The token realm of a registry is plain HTTP, and the registry is neither listed as
    /// insecure nor an allowed loopback registry: its credentials would travel in clear.
    #[error(
        "registry {registry} asks for tokens from {realm} over plain HTTP; refused (list the registry as insecure if that is intended)"
    )]
    InsecureRealm {
        /// Registry host.
        registry: String,
        /// The realm URL the registry named.
        realm: String,
    },
    /// A registry allowlist rule could not be parsed.
    #[error("registry allow rule {rule:?}: {reason}")]
    InvalidAllowRule {
        /// The rule as written.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else the registry or client got wrong (unexpected status, bad token response, …).
    #[error("registry {registry}: {detail}")]
    Protocol {
        /// Registry host.
        registry: String,
        /// What happened, in our words.
        detail: String,
        /// The client's error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

fn list(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_string();
    }
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RegistryError {
    /// A stable kebab-case identifier for the kind of failure (for logs, metrics and policy).
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::InvalidSource { .. } => "invalid-source",
            RegistryError::Unauthorized { .. } => "unauthorized",
            RegistryError::NotFound { .. } => "not-found",
            RegistryError::TooManyRequests { .. } => "rate-limited",
            RegistryError::Server { .. } => "registry-server-error",
            RegistryError::Timeout { .. } => "timeout",
            RegistryError::Connect { .. } => "connect-failed",
            RegistryError::InsecureNotAllowed { .. } => "insecure-registry-not-allowed",
            RegistryError::TooLarge { .. } => "too-large",
            RegistryError::InvalidJson { .. } => "invalid-json",
            RegistryError::DigestMismatch { .. } => "digest-mismatch",
            RegistryError::SizeMismatch { .. } => "size-mismatch",
            RegistryError::NoMatchingPlatform { .. } => "no-matching-platform",
            RegistryError::Ambiguous { .. } => "ambiguous-image",
            RegistryError::MalformedImage { .. } => "malformed-image",
            RegistryError::UnsupportedMediaType { .. } => "unsupported-media-type",
            RegistryError::Archive { .. } => "invalid-archive",
            RegistryError::Io { .. } => "io-error",
            RegistryError::Config { .. } => "invalid-docker-config",
            RegistryError::Protocol { .. } => "registry-protocol-error",
            RegistryError::RegistryNotAllowed { .. } => "registry-not-allowed",
            RegistryError::AddressNotAllowed { .. } => "address-not-allowed",
            RegistryError::InsecureRealm { .. } => "insecure-token-realm",
            RegistryError::InvalidAllowRule { .. } => "invalid-allow-rule",
        }
    }

    /// The code to show a caller who named the image but does not operate Gantry (an API
    /// caller, a webhook sender, an admission review).
    ///
    /// Errors that depend only on what the caller asked, or on the content of a registry that
    /// answered as a registry, keep their [`code`](RegistryError::code). Everything that tells
    /// what is listening at a host — nothing (`connect-failed`), something slow (`timeout`),
    /// something that is not a registry (`registry-protocol-error`, `invalid-json`), plain HTTP,
    /// a 5xx, an address class the edge refused — becomes one `registry-unavailable`, so the
    /// gate cannot be used to scan ports or map a network. Operators still see the precise
    /// error in logs.
    pub fn public_code(&self) -> &'static str {
        match self {
            RegistryError::InvalidSource { .. }
            | RegistryError::Unauthorized { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::TooManyRequests { .. }
            | RegistryError::RegistryNotAllowed { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::NoMatchingPlatform { .. }
            | RegistryError::Ambiguous { .. }
            | RegistryError::MalformedImage { .. }
            | RegistryError::UnsupportedMediaType { .. } => self.code(),
            RegistryError::Server { .. }
            | RegistryError::Timeout { .. }
            | RegistryError::Connect { .. }
            | RegistryError::InsecureNotAllowed { .. }
            | RegistryError::InvalidJson { .. }
            | RegistryError::Archive { .. }
            | RegistryError::Io { .. }
            | RegistryError::Config { .. }
            | RegistryError::Protocol { .. }
            | RegistryError::AddressNotAllowed { .. }
            | RegistryError::InsecureRealm { .. }
            | RegistryError::InvalidAllowRule { .. } => "registry-unavailable",
        }
    }

    /// Whether [`public_code`](RegistryError::public_code) keeps the precise code, so the
    /// message may be shown to the caller too; otherwise show a fixed text.
    pub fn is_public(&self) -> bool {
        self.public_code() == self.code()
    }

    /// Whether retrying the same request later may succeed (timeouts, 5xx, 429, connection errors).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::TooManyRequests { .. }
                | RegistryError::Server { .. }
                | RegistryError::Timeout { .. }
                | RegistryError::Connect { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> RegistryError {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }

    /// Finds a `RegistryError` carried inside an `io::Error` (as blob streams report them).
    pub fn from_io_ref(err: &io::Error) -> Option<&RegistryError> {
        err.get_ref()?.downcast_ref::<RegistryError>()
    }

    /// Wraps this error in an `io::Error` of a fitting kind, for `AsyncRead` streams.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            RegistryError::Timeout { .. } => io::ErrorKind::TimedOut,
            RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. } => {
                io::ErrorKind::InvalidData
            }
            RegistryError::NotFound { .. } => io::ErrorKind::NotFound,
            RegistryError::Unauthorized { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

/// What a failed registry call was about, for [`from_oci`] and [`from_reqwest`].
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Registry host as in the reference (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path.
    pub repository: String,
    /// `manifest`, `blob`, `tag`, …, used for 404s.
    pub what: &'static str,
    /// The thing looked up (reference or digest) for 404 messages.
    pub reference: String,
    /// Connect timeout, reported when a connect times out.
    pub connect_timeout: Duration,
    /// Idle read timeout, reported when a read times out.
    pub read_timeout: Duration,
}

impl Ctx {
    fn unauthorized(&self) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
        }
    }

    fn not_found(&self, what: &'static str) -> RegistryError {
        RegistryError::NotFound {
            what,
            reference: self.reference.clone(),
        }
    }

    pub(crate) fn refused(&self, refused: Refused) -> RegistryError {
        RegistryError::AddressNotAllowed {
            registry: self.registry.clone(),
            host: refused.host,
            reason: refused.reason,
        }
    }

    pub(crate) fn protocol(
        &self,
        detail: impl Into<String>,
        source: Option<BoxError>,
    ) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            detail: detail.into(),
            source,
        }
    }

    /// Maps an HTTP status that is not a success, with the codes of the registry's error
    /// envelope (`{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`, distribution-spec).
    pub(crate) fn status(&self, status: u16, codes: &[String]) -> RegistryError {
        // The error envelope's code is more precise than the status (a 404 can be an unknown
        // repository or an unknown manifest).
        for code in codes {
            match code.to_ascii_uppercase().as_str() {
                "UNAUTHORIZED" | "DENIED" => return self.unauthorized(),
                "NAME_UNKNOWN" => return self.not_found("repository"),
                "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "MANIFEST_BLOB_UNKNOWN" => {
                    return self.not_found(self.what);
                }
                "TOOMANYREQUESTS" => {
                    return RegistryError::TooManyRequests {
                        registry: self.registry.clone(),
                    };
                }
                _ => {}
            }
        }
        match status {
            401 | 403 => self.unauthorized(),
            404 => self.not_found(self.what),
            429 => RegistryError::TooManyRequests {
                registry: self.registry.clone(),
            },
            500..=599 => RegistryError::Server {
                registry: self.registry.clone(),
                status,
            },
            other => self.protocol(
                format!(
                    "unexpected HTTP status {other} for {} {}",
                    self.what, self.reference
                ),
                None,
            ),
        }
    }
}

/// Converts a reqwest transport error. A refusal of the edge (the resolver's or the redirect
/// policy's) travels inside it and is found first.
pub(crate) fn from_reqwest(err: reqwest::Error, ctx: &Ctx) -> RegistryError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return ctx.refused(refused.clone());
        }
        cause = e.source();
    }
    if err.is_timeout() {
        let after = if err.is_connect() {
            ctx.connect_timeout
        } else {
            ctx.read_timeout
        };
        return RegistryError::Timeout {
            registry: ctx.registry.clone(),
            after,
        };
    }
    if err.is_connect() {
        return RegistryError::Connect {
            registry: ctx.registry.clone(),
            source: Box::new(err),
        };
    }
    if let Some(status) = err.status() {
        return ctx.status(status.as_u16(), &[]);
    }
    ctx.protocol("request failed", Some(Box::new(err)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ctx() -> Ctx {
        Ctx {
            registry: "ghcr.io".into(),
            repository: "o/app".into(),
            what: "tag",
            reference: "ghcr.io/o/app:1".into(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }

    fn json_err() -> serde_json::Error {
        serde_json::from_str::<serde_json::Value>("{").unwrap_err()
    }

    fn samples() -> Vec<RegistryError> {
        let s = String::new;
        vec![
            RegistryError::InvalidSource {
                input: s(),
                reason: s(),
                source: None,
            },
            RegistryError::Unauthorized {
                registry: s(),
                repository: s(),
            },
            RegistryError::NotFound {
                what: "tag",
                reference: s(),
            },
            RegistryError::TooManyRequests { registry: s() },
            RegistryError::Server {
                registry: s(),
                status: 500,
            },
            RegistryError::Timeout {
                registry: s(),
                after: Duration::ZERO,
            },
            RegistryError::Connect {
                registry: s(),
                source: "x".into(),
            },
            RegistryError::InsecureNotAllowed { registry: s() },
            RegistryError::TooLarge {
                what: s(),
                size: 1,
                limit: 0,
            },
            RegistryError::InvalidJson {
                what: s(),
                source: json_err(),
            },
            RegistryError::DigestMismatch {
                what: s(),
                expected: s(),
                actual: s(),
            },
            RegistryError::SizeMismatch {
                what: s(),
                expected: 1,
                actual: 2,
            },
            RegistryError::NoMatchingPlatform {
                wanted: Platform::host(),
                available: vec![],
            },
            RegistryError::Ambiguous {
                location: s(),
                available: vec![],
            },
            RegistryError::MalformedImage { reason: s() },
            RegistryError::UnsupportedMediaType { media_type: s() },
            RegistryError::Archive {
                path: PathBuf::new(),
                reason: s(),
            },
            RegistryError::Io {
                path: PathBuf::new(),
                source: io::Error::other("x"),
            },
            RegistryError::Config {
                path: PathBuf::new(),
                reason: s(),
                source: None,
            },
            RegistryError::Protocol {
                registry: s(),
                detail: s(),
                source: None,
            },
            RegistryError::RegistryNotAllowed {
                reference: s(),
                registry: s(),
            },
            RegistryError::AddressNotAllowed {
                registry: s(),
                host: s(),
                reason: s(),
            },
            RegistryError::InsecureRealm {
                registry: s(),
                realm: s(),
            },
            RegistryError::InvalidAllowRule {
                rule: s(),
                reason: s(),
            },
        ]
    }

    #[test]
    fn codes_are_unique_kebab_case() {
        let samples = samples();
        let codes: BTreeSet<&str> = samples.iter().map(RegistryError::code).collect();
        assert_eq!(codes.len(), samples.len(), "duplicate code");
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !code.starts_with('-')
                    && !code.ends_with('-'),
                "{code}"
            );
        }
    }

    #[test]
    fn maps_statuses_and_envelope_codes() {
        let c = ctx();
        assert_eq!(c.status(401, &[]).code(), "unauthorized");
        assert_eq!(c.status(403, &[]).code(), "unauthorized");
        assert!(matches!(
            c.status(404, &[]),
            RegistryError::NotFound { what: "tag", .. }
        ));
        assert!(matches!(
            c.status(404, &["NAME_UNKNOWN".into()]),
            RegistryError::NotFound {
                what: "repository",
                ..
            }
        ));
        assert!(matches!(
            c.status(400, &["MANIFEST_UNKNOWN".into()]),
            RegistryError::NotFound { what: "tag", .. }
        ));
        assert_eq!(c.status(400, &["DENIED".into()]).code(), "unauthorized");
        assert_eq!(c.status(429, &[]).code(), "rate-limited");
        assert!(matches!(
            c.status(503, &[]),
            RegistryError::Server { status: 503, .. }
        ));
        assert_eq!(c.status(302, &[]).code(), "registry-protocol-error");
    }

    #[test]
    fn public_codes_do_not_tell_what_answered() {
        for e in samples() {
            let public = e.public_code();
            match e.code() {
                "connect-failed"
                | "timeout"
                | "registry-protocol-error"
                | "invalid-json"
                | "insecure-registry-not-allowed"
                | "registry-server-error"
                | "address-not-allowed"
                | "insecure-token-realm" => {
                    assert_eq!(public, "registry-unavailable", "{}", e.code());
                    assert!(!e.is_public());
                }
                "not-found" | "unauthorized" | "registry-not-allowed" | "digest-mismatch" => {
                    assert_eq!(public, e.code());
                    assert!(e.is_public());
                }
                _ => {}
            }
        }
    }

    #[test]
    fn travels_inside_io_errors() {
        let e = RegistryError::Timeout {
            registry: "r".into(),
            after: Duration::from_secs(1),
        }
        .into_io();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            RegistryError::from_io_ref(&e).map(RegistryError::code),
            Some("timeout")
        );
    }

    #[test]
    fn messages_name_the_platforms() {
        let e = RegistryError::NoMatchingPlatform {
            wanted: "linux/s390x".parse().unwrap(),
            available: vec![Platform::host()],
        };
        assert!(e.to_string().contains("linux/s390x"), "{e}");
        assert!(e.to_string().contains(&Platform::host().to_string()), "{e}");
    }
}
