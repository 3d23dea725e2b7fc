//! The one error type of this crate, and the one place oci-client's and reqwest's errors are
//! turned into it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use gantry_model::{Platform, ReferenceError};
use oci_client::errors::{DigestError as OciDigestError, OciDistributionError, OciErrorCode};

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
        }
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

    fn protocol(&self, detail: impl Into<String>, source: Option<BoxError>) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            detail: detail.into(),
            source,
        }
    }

    /// Maps an HTTP status that is not a success (shared by oci-client's errors and ours).
    pub(crate) fn status(&self, status: u16, codes: &[OciErrorCode]) -> RegistryError {
        // The error envelope's code is more precise than the status (a 404 can be an unknown
        // repository or an unknown manifest).
        for code in codes {
            match code {
                OciErrorCode::Unauthorized | OciErrorCode::Denied => return self.unauthorized(),
                OciErrorCode::NameUnknown => return self.not_found("repository"),
                OciErrorCode::ManifestUnknown
                | OciErrorCode::BlobUnknown
                | OciErrorCode::ManifestBlobUnknown => {
                    return self.not_found(self.what);
                }
                OciErrorCode::Toomanyrequests => {
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

/// Converts a reqwest transport error.
pub(crate) fn from_reqwest(err: reqwest::Error, ctx: &Ctx) -> RegistryError {
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

/// Converts an oci-client error: the one place where its variants are interpreted.
pub(crate) fn from_oci(err: OciDistributionError, ctx: &Ctx) -> RegistryError {
    match err {
        OciDistributionError::AuthenticationFailure(reason) => {
            tracing::debug!(registry = %ctx.registry, %reason, "token request refused");
            ctx.unauthorized()
        }
        OciDistributionError::UnauthorizedError { .. } => ctx.unauthorized(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<OciErrorCode> = envelope.errors.into_iter().map(|e| e.code).collect();
            // The client drops the status for 4xx answers that carry an envelope; 400 is the
            // neutral guess, so only the envelope codes decide.
            ctx.status(400, &codes)
        }
        OciDistributionError::ServerError { code, .. } => ctx.status(code, &[]),
        OciDistributionError::RequestError(e) => from_reqwest(e, ctx),
        OciDistributionError::DigestError(OciDigestError::VerificationError {
            expected,
            actual,
        }) => RegistryError::DigestMismatch {
            what: format!("{} {}", ctx.what, ctx.reference),
            expected,
            actual,
        },
        OciDistributionError::IoError(e) => from_stream_io(e, ctx),
        other => {
            let detail = match &other {
                OciDistributionError::RegistryTokenDecodeError(_) => {
                    "token response could not be decoded"
                }
                OciDistributionError::SpecViolationError(_) => {
                    "answer violates the distribution spec"
                }
                OciDistributionError::UrlParseError(_) => "invalid URL",
                _ => "client error",
            };
            ctx.protocol(detail, Some(Box::new(other)))
        }
    }
}

/// Converts an error from a blob byte stream (oci-client reports transport errors and its own
/// digest verification as `io::Error`).
pub(crate) fn from_stream_io(err: io::Error, ctx: &Ctx) -> RegistryError {
    if err.get_ref().is_some_and(|e| e.is::<reqwest::Error>()) {
        return match err.into_inner().map(|b| b.downcast::<reqwest::Error>()) {
            Some(Ok(e)) => from_reqwest(*e, ctx),
            Some(Err(other)) => ctx.protocol("blob stream failed", Some(other)),
            None => ctx.protocol("blob stream failed", None),
        };
    }
    if err.get_ref().is_some_and(|e| e.is::<OciDigestError>()) {
        if let Some(Ok(OciDigestError::VerificationError { expected, actual })) = err
            .into_inner()
            .map(|b| b.downcast::<OciDigestError>().map(|b| *b))
        {
            return RegistryError::DigestMismatch {
                what: format!("{} {}", ctx.what, ctx.reference),
                expected,
                actual,
            };
        }
        return ctx.protocol("blob digest could not be verified", None);
    }
    if err.kind() == io::ErrorKind::TimedOut {
        return RegistryError::Timeout {
            registry: ctx.registry.clone(),
            after: ctx.read_timeout,
        };
    }
    ctx.protocol("blob stream failed", Some(Box::new(err)))
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
            c.status(404, &[OciErrorCode::NameUnknown]),
            RegistryError::NotFound {
                what: "repository",
                ..
            }
        ));
        assert!(matches!(
            c.status(400, &[OciErrorCode::ManifestUnknown]),
            RegistryError::NotFound { what: "tag", .. }
        ));
        assert_eq!(
            c.status(400, &[OciErrorCode::Denied]).code(),
            "unauthorized"
        );
        assert_eq!(c.status(429, &[]).code(), "rate-limited");
        assert!(matches!(
            c.status(503, &[]),
            RegistryError::Server { status: 503, .. }
        ));
        assert_eq!(c.status(302, &[]).code(), "registry-protocol-error");
    }

    #[test]
    fn maps_oci_client_errors() {
        let c = ctx();
        let e = from_oci(
            OciDistributionError::AuthenticationFailure("bad password".into()),
            &c,
        );
        assert!(
            matches!(e, RegistryError::Unauthorized { ref registry, .. } if registry == "ghcr.io")
        );
        let e = from_oci(
            OciDistributionError::UnauthorizedError { url: "u".into() },
            &c,
        );
        assert_eq!(e.code(), "unauthorized");
        let env: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
        )
        .unwrap();
        let e = from_oci(
            OciDistributionError::RegistryError {
                envelope: env,
                url: "u".into(),
            },
            &ctx(),
        );
        assert!(matches!(e, RegistryError::NotFound { .. }));
        let e = from_oci(
            OciDistributionError::ServerError {
                code: 502,
                url: "u".into(),
                message: "bad gateway".into(),
            },
            &c,
        );
        assert!(matches!(e, RegistryError::Server { status: 502, .. }));
        let e = from_oci(
            OciDistributionError::DigestError(OciDigestError::VerificationError {
                expected: "sha256:a".into(),
                actual: "sha256:b".into(),
            }),
            &c,
        );
        assert!(
            matches!(e, RegistryError::DigestMismatch { ref expected, .. } if expected == "sha256:a")
        );
        let e = from_oci(
            OciDistributionError::RegistryTokenDecodeError("x".into()),
            &c,
        );
        assert_eq!(e.code(), "registry-protocol-error");
        assert!(std::error::Error::source(&e).is_some());
        let stream_err = io::Error::other(OciDigestError::VerificationError {
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        });
        assert_eq!(from_stream_io(stream_err, &c).code(), "digest-mismatch");
        assert_eq!(
            from_stream_io(io::Error::from(io::ErrorKind::TimedOut), &c).code(),
            "timeout"
        );
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
