//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, writing, pushing or serving test images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or socket operation failed; `context` says which.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A document could not be encoded or decoded as JSON.
    #[error("JSON of {what}")]
    Json {
        /// Which document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The recipe asks for something impossible (an index entry that does not exist, …).
    #[error("invalid recipe: {0}")]
    Recipe(String),
    /// An HTTP request did not get an answer.
    #[error("{method} {url} failed")]
    Transport {
        /// HTTP method.
        method: String,
        /// Full URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// An HTTP request got an unexpected status.
    #[error("{method} {url} answered {status}: {body}")]
    Http {
        /// HTTP method.
        method: String,
        /// Full URL.
        url: String,
        /// Status code.
        status: u16,
        /// Start of the response body (the registry's error document).
        body: String,
    },
    /// The registry binary is not installed.
    #[error(
        "docker-registry binary not found (looked at {path}); install Debian package docker-registry (scripts/test.sh does)"
    )]
    RegistryMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The registry started but did not become ready, or exited.
    #[error("docker-registry did not start: {reason}\n--- registry log (tail) ---\n{log_tail}")]
    RegistryStart {
        /// What was observed.
        reason: String,
        /// The end of the registry's log.
        log_tail: String,
    },
    /// Key or certificate generation, or signing, failed.
    #[error("token server crypto: {0}")]
    Crypto(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a context message to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

pub(crate) fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Json {
        what: what.to_string(),
        source,
    })
}
