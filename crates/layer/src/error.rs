use std::fmt;
use std::io;

use gantry_model::Digest;

/// Which of a layer's two byte streams a size limit was hit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The blob as stored in the registry (gzip / zstd / plain tar bytes).
    Compressed,
    /// The tar stream after decompression (what the diff ID covers).
    Uncompressed,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Compressed => "compressed",
            Stream::Uncompressed => "uncompressed",
        })
    }
}

/// Why a layer walk failed. Every variant names the layer; causes are kept in `source`.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The blob's bytes do not hash to the digest the manifest names.
    #[error("layer {layer}: blob digest is {actual}, the manifest says {expected}")]
    DigestMismatch {
        /// The layer, as named by the manifest.
        layer: Digest,
        /// The digest the manifest names.
        expected: Digest,
        /// The digest of the bytes actually read.
        actual: Digest,
    },
    /// The decompressed stream does not hash to the diff ID the image config names.
    #[error("layer {layer}: diff ID is {actual}, the image config says {expected}")]
    DiffIdMismatch {
        /// The layer.
        layer: Digest,
        /// The diff ID from the image config.
        expected: Digest,
        /// The digest of the decompressed stream.
        actual: Digest,
    },
    /// An entry path (or hard link target) with a `..` component or a leading `/`.
    #[error("layer {layer}: path {path:?} escapes the image root")]
    PathTraversal {
        /// The layer.
        layer: Digest,
        /// The offending path as written in the archive.
        path: String,
    },
    /// A path or link target longer than the limit.
    #[error("layer {layer}: a path of {len} bytes exceeds the limit of {limit}")]
    PathTooLong {
        /// The layer.
        layer: Digest,
        /// Length of the path in bytes.
        len: usize,
        /// The limit ([`Limits::max_path_bytes`](crate::Limits::max_path_bytes)).
        limit: usize,
    },
    /// A PAX or GNU long-name/long-link header whose body is larger than the limit; refused
    /// before reading it.
    #[error("layer {layer}: a tar extension header of {size} bytes exceeds the limit of {limit}")]
    ExtensionTooLarge {
        /// The layer.
        layer: Digest,
        /// The body size the header claims.
        size: u64,
        /// The limit ([`Limits::max_extension_bytes`](crate::Limits::max_extension_bytes)).
        limit: u64,
    },
    /// More tar entries than the limit.
    #[error("layer {layer}: more than {limit} tar entries")]
    TooManyEntries {
        /// The layer.
        layer: Digest,
        /// The limit ([`Limits::max_entries`](crate::Limits::max_entries)).
        limit: u64,
    },
    /// The decompressed stream grew more than `ratio_limit` times larger than the compressed
    /// bytes read so far.
    #[error(
        "layer {layer}: {compressed} compressed bytes expanded to {uncompressed}, \
         more than {ratio_limit} times (decompression bomb)"
    )]
    DecompressionBomb {
        /// The layer.
        layer: Digest,
        /// Compressed bytes read when the walk stopped.
        compressed: u64,
        /// Uncompressed bytes produced when the walk stopped.
        uncompressed: u64,
        /// The limit ([`Limits::max_ratio`](crate::Limits::max_ratio)).
        ratio_limit: u64,
    },
    /// One of the two streams is larger than its limit.
    #[error("layer {layer}: {what} stream exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The layer.
        layer: Digest,
        /// Which stream.
        what: Stream,
        /// The limit in bytes.
        limit: u64,
    },
    /// A whiteout marker that names no file (`.wh.` alone, or `.wh..`).
    #[error("layer {layer}: invalid whiteout {path:?}")]
    InvalidWhiteout {
        /// The layer.
        layer: Digest,
        /// The entry path as written in the archive.
        path: String,
    },
    /// A zstd frame asks for a decoding window over the limit.
    #[error(
        "layer {layer}: a zstd frame needs a window larger than 2^{window_log_max} bytes \
         (limit zstd-window-log-max={window_log_max}; layers made with zstd --long need 27)"
    )]
    ZstdWindowTooLarge {
        /// The layer.
        layer: Digest,
        /// The limit ([`Limits::zstd_window_log_max`](crate::Limits::zstd_window_log_max)).
        window_log_max: u32,
    },
    /// The gzip, zstd or tar stream ends before it is complete.
    #[error("layer {layer}: the stream ends early (truncated)")]
    Truncated {
        /// The layer.
        layer: Digest,
        /// What ended early.
        #[source]
        source: io::Error,
    },
    /// Invalid gzip or zstd data, or an invalid tar header.
    #[error("layer {layer}: corrupt data")]
    Corrupt {
        /// The layer.
        layer: Digest,
        /// What is wrong.
        #[source]
        source: io::Error,
    },
    /// Reading the blob itself failed (network, disk): the layer may be fine.
    #[error("layer {layer}: reading the blob failed")]
    Read {
        /// The layer.
        layer: Digest,
        /// The error from the blob reader, unchanged.
        #[source]
        source: io::Error,
    },
    /// The [`EntrySink`](crate::EntrySink) returned an error.
    #[error("layer {layer}: processing {path:?} failed")]
    Sink {
        /// The layer.
        layer: Digest,
        /// Normalised path of the entry (or whiteout) being processed.
        path: String,
        /// The sink's error.
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    /// A stable kebab-case code for the kind of failure, for metrics, logs and findings.
    pub fn kind_code(&self) -> &'static str {
        match self {
            LayerError::DigestMismatch { .. } => "digest-mismatch",
            LayerError::DiffIdMismatch { .. } => "diff-id-mismatch",
            LayerError::PathTraversal { .. } => "path-traversal",
            LayerError::PathTooLong { .. } => "path-too-long",
            LayerError::ExtensionTooLarge { .. } => "extension-too-large",
            LayerError::TooManyEntries { .. } => "too-many-entries",
            LayerError::DecompressionBomb { .. } => "decompression-bomb",
            LayerError::TooLarge { .. } => "too-large",
            LayerError::InvalidWhiteout { .. } => "invalid-whiteout",
            LayerError::ZstdWindowTooLarge { .. } => "zstd-window-too-large",
            LayerError::Truncated { .. } => "truncated",
            LayerError::Corrupt { .. } => "corrupt",
            LayerError::Read { .. } => "read",
            LayerError::Sink { .. } => "sink",
        }
    }

    /// The layer the error is about.
    pub fn layer(&self) -> &Digest {
        match self {
            LayerError::DigestMismatch { layer, .. }
            | LayerError::DiffIdMismatch { layer, .. }
            | LayerError::PathTraversal { layer, .. }
            | LayerError::PathTooLong { layer, .. }
            | LayerError::ExtensionTooLarge { layer, .. }
            | LayerError::TooManyEntries { layer, .. }
            | LayerError::DecompressionBomb { layer, .. }
            | LayerError::TooLarge { layer, .. }
            | LayerError::InvalidWhiteout { layer, .. }
            | LayerError::ZstdWindowTooLarge { layer, .. }
            | LayerError::Truncated { layer, .. }
            | LayerError::Corrupt { layer, .. }
            | LayerError::Read { layer, .. }
            | LayerError::Sink { layer, .. } => layer,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashSet;

    use super::*;

    fn one_of_each() -> Vec<LayerError> {
        let layer: Digest =
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap();
        let l = || layer.clone();
        let all = vec![
            LayerError::DigestMismatch {
                layer: l(),
                expected: l(),
                actual: l(),
            },
            LayerError::DiffIdMismatch {
                layer: l(),
                expected: l(),
                actual: l(),
            },
            LayerError::PathTraversal {
                layer: l(),
                path: String::new(),
            },
            LayerError::PathTooLong {
                layer: l(),
                len: 0,
                limit: 0,
            },
            LayerError::ExtensionTooLarge {
                layer: l(),
                size: 0,
                limit: 0,
            },
            LayerError::TooManyEntries {
                layer: l(),
                limit: 0,
            },
            LayerError::DecompressionBomb {
                layer: l(),
                compressed: 0,
                uncompressed: 0,
                ratio_limit: 0,
            },
            LayerError::TooLarge {
                layer: l(),
                what: Stream::Compressed,
                limit: 0,
            },
            LayerError::InvalidWhiteout {
                layer: l(),
                path: String::new(),
            },
            LayerError::ZstdWindowTooLarge {
                layer: l(),
                window_log_max: 23,
            },
            LayerError::Truncated {
                layer: l(),
                source: io::ErrorKind::UnexpectedEof.into(),
            },
            LayerError::Corrupt {
                layer: l(),
                source: io::ErrorKind::InvalidData.into(),
            },
            LayerError::Read {
                layer: l(),
                source: io::ErrorKind::Other.into(),
            },
            LayerError::Sink {
                layer: l(),
                path: String::new(),
                source: io::ErrorKind::Other.into(),
            },
        ];
        // Adding a variant without listing it here fails to compile: the match is exhaustive.
        for e in &all {
            match e {
                LayerError::DigestMismatch { .. }
                | LayerError::DiffIdMismatch { .. }
                | LayerError::PathTraversal { .. }
                | LayerError::PathTooLong { .. }
                | LayerError::ExtensionTooLarge { .. }
                | LayerError::TooManyEntries { .. }
                | LayerError::DecompressionBomb { .. }
                | LayerError::TooLarge { .. }
                | LayerError::InvalidWhiteout { .. }
                | LayerError::ZstdWindowTooLarge { .. }
                | LayerError::Truncated { .. }
                | LayerError::Corrupt { .. }
                | LayerError::Read { .. }
                | LayerError::Sink { .. } => {}
            }
        }
        all
    }

    #[test]
    fn kind_codes_are_unique_kebab_case() {
        let all = one_of_each();
        let codes: HashSet<&str> = all.iter().map(LayerError::kind_code).collect();
        assert_eq!(codes.len(), all.len(), "duplicate kind codes: {codes:?}");
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !code.starts_with('-')
                    && !code.ends_with('-'),
                "{code} is not kebab-case"
            );
        }
    }

    #[test]
    fn every_message_names_the_layer() {
        for e in one_of_each() {
            assert!(e.to_string().contains("sha256:e3b0c442"), "{e}");
            assert_eq!(e.layer().short(), "e3b0c44298fc");
        }
    }
}
