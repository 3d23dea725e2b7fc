//! Manifest-level documents (manifests and indexes) as fetched, and the digest and size checks
//! every source applies to what it reads.

use gantry_model::oci::{Descriptor, DocumentKind, ImageIndex, ImageManifest};
use gantry_model::{Digest, DigestAlgorithm};
use sha2::Digest as _;

use crate::error::RegistryError;

/// A manifest or index as read from a source, with its verified digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Digest of [`Document::bytes`] (verified).
    pub digest: Digest,
    /// The media type: the document's own `mediaType` field, else what the transport or the
    /// parent descriptor said.
    pub media_type: Option<String>,
    /// The bytes exactly as stored (the digest is over these).
    pub bytes: Vec<u8>,
    /// Index or manifest.
    pub kind: DocumentKind,
    /// Parsed index, when `kind` is `Index`.
    pub index: Option<ImageIndex>,
    /// Parsed manifest, when `kind` is `Manifest`.
    pub manifest: Option<ImageManifest>,
}

impl Document {
    /// Parses `bytes` (already digest-verified by the caller) as a manifest or index.
    ///
    /// `transport_media_type` is the Content-Type or the parent descriptor's media type; the
    /// document's own `mediaType` field wins over it. `what` names the document in errors.
    pub fn parse(
        digest: Digest,
        transport_media_type: Option<String>,
        bytes: Vec<u8>,
        what: &str,
    ) -> Result<Document, RegistryError> {
        let invalid = |source| RegistryError::InvalidJson {
            what: what.to_string(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
        let own = value
            .get("mediaType")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // A generic Content-Type says nothing; structure decides then.
        let transport = transport_media_type.filter(|m| !is_generic(m));
        let media_type = own.or(transport);
        let kind = DocumentKind::detect(media_type.as_deref(), &value).ok_or_else(|| {
            RegistryError::UnsupportedMediaType {
                media_type: media_type
                    .clone()
                    .unwrap_or_else(|| "(none, and not shaped like a manifest or index)".into()),
            }
        })?;
        let schema = value.get("schemaVersion").and_then(|v| v.as_u64());
        if schema != Some(2) {
            return Err(RegistryError::MalformedImage {
                reason: format!(
                    "{what}: schemaVersion is {}, expected 2",
                    schema.map_or_else(|| "missing".to_string(), |s| s.to_string())
                ),
            });
        }
        let (index, manifest) = match kind {
            DocumentKind::Index => (
                Some(serde_json::from_value::<ImageIndex>(value).map_err(invalid)?),
                None,
            ),
            DocumentKind::Manifest => (
                None,
                Some(serde_json::from_value::<ImageManifest>(value).map_err(invalid)?),
            ),
        };
        Ok(Document {
            digest,
            media_type,
            bytes,
            kind,
            index,
            manifest,
        })
    }
}

fn is_generic(mt: &str) -> bool {
    let base = mt.split(';').next().unwrap_or(mt).trim();
    matches!(
        base,
        "application/json" | "text/plain" | "application/octet-stream" | ""
    )
}

/// Hashes `bytes` with `algorithm`.
pub(crate) fn digest_of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
    match algorithm {
        DigestAlgorithm::Sha256 => Digest::from_bytes(algorithm, &sha2::Sha256::digest(bytes)),
        DigestAlgorithm::Sha512 => Digest::from_bytes(algorithm, &sha2::Sha512::digest(bytes)),
    }
}

/// Fails unless `bytes` hash to `expected`.
pub(crate) fn verify_digest(
    what: &str,
    expected: &Digest,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let actual = digest_of(expected.algorithm(), bytes);
    if &actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// Fails when a descriptor announces more bytes than `limit` (before anything is fetched).
pub(crate) fn check_announced_size(
    what: &str,
    desc: &Descriptor,
    limit: u64,
) -> Result<(), RegistryError> {
    if desc.size > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            size: desc.size,
            limit,
        });
    }
    Ok(())
}

/// Checks size, then digest, of content fetched for `desc`.
pub(crate) fn verify_content(
    what: &str,
    desc: &Descriptor,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let actual = bytes.len() as u64;
    if actual != desc.size {
        // A wrong digest is the more telling error when both are wrong.
        verify_digest(what, &desc.digest, bytes)?;
        return Err(RegistryError::SizeMismatch {
            what: what.to_string(),
            expected: desc.size,
            actual,
        });
    }
    verify_digest(what, &desc.digest, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use gantry_model::oci::media_type as mt;

    fn doc(json: &str, transport: Option<&str>) -> Result<Document, RegistryError> {
        let bytes = json.as_bytes().to_vec();
        let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
        Document::parse(
            digest,
            transport.map(str::to_string),
            bytes,
            "test manifest",
        )
    }

    const CFG: &str = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#;

    #[test]
    fn parses_manifest_and_index() {
        let m = doc(
            &format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","config":{CFG},"layers":[]}}"#,
                mt::OCI_MANIFEST
            ),
            None,
        )
        .unwrap();
        assert_eq!(m.kind, DocumentKind::Manifest);
        assert!(m.manifest.is_some() && m.index.is_none());
        assert_eq!(m.media_type.as_deref(), Some(mt::OCI_MANIFEST));
        // No mediaType field: the transport's type decides; a generic one is ignored.
        let i = doc(
            r#"{"schemaVersion":2,"manifests":[]}"#,
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(i.kind, DocumentKind::Index);
        assert_eq!(i.media_type, None);
        let i = doc(
            r#"{"schemaVersion":2,"manifests":[]}"#,
            Some(mt::DOCKER_MANIFEST_LIST),
        )
        .unwrap();
        assert_eq!(i.media_type.as_deref(), Some(mt::DOCKER_MANIFEST_LIST));
    }

    #[test]
    fn rejects_bad_documents() {
        assert_eq!(doc("{not json", None).unwrap_err().code(), "invalid-json");
        assert_eq!(
            doc(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                None
            )
            .unwrap_err()
            .code(),
            "invalid-json"
        );
        let schema1 = r#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","fsLayers":[]}"#;
        assert_eq!(
            doc(schema1, None).unwrap_err().code(),
            "unsupported-media-type"
        );
        let v3 = format!(r#"{{"schemaVersion":3,"config":{CFG},"layers":[]}}"#);
        let e = doc(&v3, None).unwrap_err();
        assert_eq!(e.code(), "malformed-image");
        assert!(e.to_string().contains("schemaVersion is 3"), "{e}");
        assert_eq!(
            doc(r#"{"schemaVersion":2}"#, None).unwrap_err().code(),
            "unsupported-media-type"
        );
        assert_eq!(
            doc("[]", None).unwrap_err().code(),
            "unsupported-media-type"
        );
    }

    #[test]
    fn verifies_size_and_digest() {
        let bytes = b"{}";
        let desc = Descriptor {
            media_type: mt::OCI_CONFIG.into(),
            digest: digest_of(DigestAlgorithm::Sha256, bytes),
            size: 2,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        };
        verify_content("c", &desc, bytes).unwrap();
        assert_eq!(
            verify_content("c", &desc, b"[]").unwrap_err().code(),
            "digest-mismatch"
        );
        let wrong_size = Descriptor {
            size: 3,
            ..desc.clone()
        };
        assert_eq!(
            verify_content("c", &wrong_size, bytes).unwrap_err().code(),
            "size-mismatch"
        );
        assert_eq!(
            check_announced_size("c", &wrong_size, 2)
                .unwrap_err()
                .code(),
            "too-large"
        );
        let sha512 = Descriptor {
            digest: digest_of(DigestAlgorithm::Sha512, bytes),
            ..desc
        };
        verify_content("c", &sha512, bytes).unwrap();
    }
}
