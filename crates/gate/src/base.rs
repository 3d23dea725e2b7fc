//! Which image this one was built `FROM`, and whether that reference was pinned.
//!
//! Evidence, strongest first:
//! 1. manifest annotations `org.opencontainers.image.base.name` / `.base.digest` (and the same
//!    annotations on the index descriptor of this manifest);
//! 2. config labels with those keys — weaker, because labels are inherited from the base, so a
//!    label can name the base's own base;
//! 3. BuildKit provenance (SLSA v1 `resolvedDependencies`, v0.2 `materials`) attached to the
//!    index as an attestation manifest for this image: `pkg:docker/…` dependencies, each with
//!    the digest BuildKit resolved and, when the Dockerfile pinned it, a `digest` qualifier.
//!
//! "Pinned" means the reference *as written* carried a digest (`FROM alpine:3.20@sha256:…`):
//! a resolved digest alone proves only what the tag pointed at on build day. No evidence is
//! reported as `none`, never as pinned.

use std::collections::BTreeMap;

use gantry_model::oci::{Descriptor, DocumentKind, ImageIndex};
use gantry_model::{Digest, ImageRef, Location};
use gantry_registry::{ImageSource, ResolvedImage};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

/// OCI annotation: fully qualified reference of the base image.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// OCI annotation: digest of the base image.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION_MANIFEST: &str = "attestation-manifest";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
/// Largest provenance statement read. BuildKit caps an attestation at 40 MiB, but those are
/// `mode=max` statements with the whole LLB graph; the dependency list Gantry needs is in the
/// first few KiB, and 16 MiB keeps the statement (held in memory to parse) bounded.
pub const MAX_PROVENANCE_BYTES: u64 = 16 << 20;

/// Where the base-image evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseEvidence {
    /// Manifest (or index descriptor) annotations.
    Annotation,
    /// Config labels (inherited from the base, so weaker).
    Label,
    /// BuildKit SLSA provenance.
    Provenance,
    /// Nothing recorded (FROM scratch, or a builder that records nothing).
    None,
}

/// `facts.base` of the policy input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFacts {
    /// The base reference as recorded, when there is one.
    pub name: Option<String>,
    /// The base digest recorded (resolved at build time), when there is one.
    pub digest: Option<String>,
    /// The tag of the recorded reference, when it has one.
    pub tag: Option<String>,
    /// The reference as written carried a digest.
    pub pinned: bool,
    /// The tag moves by design (`latest`, no tag, a bare major, a channel name); `None` when
    /// there is no name to judge.
    pub floating: Option<bool>,
    /// Where the evidence came from.
    pub evidence: BaseEvidence,
    /// Several base candidates (provenance of a multi-stage build names every stage's image):
    /// all of them, when the final stage's cannot be told apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// Layer indexes that belong to the base, when known exactly (the base manifest was
    /// fetched and its diff IDs are a prefix of this image's); else `None`.
    pub layers: Option<Vec<usize>>,
    /// Where the evidence is.
    pub location: Option<Location>,
}

impl BaseFacts {
    fn none() -> BaseFacts {
        BaseFacts {
            name: None,
            digest: None,
            tag: None,
            pinned: false,
            floating: None,
            evidence: BaseEvidence::None,
            candidates: Vec::new(),
            layers: None,
            location: None,
        }
    }
}

/// Tags that move by design beyond `latest`: release channels.
const CHANNEL_TAGS: &[&str] = &[
    "latest", "stable", "edge", "lts", "current", "mainline", "rolling", "nightly", "testing",
    "unstable",
];

/// Whether a tag floats: no tag, a channel name, or a bare major version (`3`, `v18`).
pub fn tag_floats(tag: Option<&str>) -> bool {
    match tag {
        None => true,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            let bare = lower.strip_prefix('v').unwrap_or(&lower);
            CHANNEL_TAGS.contains(&lower.as_str())
                || (!bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()))
        }
    }
}

/// Splits a recorded reference into (name as written, tag, written digest), leniently: a
/// base name in an annotation need not be fully normalised.
fn split_reference(reference: &str) -> (Option<String>, Option<String>) {
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (reference, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let tag = name_tag[last_slash..]
        .rfind(':')
        .map(|i| name_tag[last_slash + i + 1..].to_string());
    (tag, digest)
}

/// Base facts from an explicit `name` (and maybe digest) found at `evidence`.
fn from_name(
    name: &str,
    digest: Option<&str>,
    evidence: BaseEvidence,
    location: Location,
) -> BaseFacts {
    let (tag, written_digest) = split_reference(name);
    let pinned = written_digest.is_some();
    let floating = !pinned && tag_floats(tag.as_deref());
    // Normalise like Docker when the name parses (`alpine` → docker.io/library/alpine:latest),
    // keep it as written otherwise: the evidence is reported, not rewritten into something else.
    let normalised = name
        .parse::<ImageRef>()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string());
    BaseFacts {
        name: Some(normalised),
        digest: digest.map(str::to_string).or(written_digest),
        tag,
        pinned,
        floating: Some(floating),
        evidence,
        candidates: Vec::new(),
        layers: None,
        location: Some(location),
    }
}

/// The in-toto statement fields Gantry reads.
#[derive(Debug, Deserialize)]
struct Statement {
    #[serde(rename = "predicateType", default)]
    predicate_type: String,
    #[serde(default)]
    predicate: serde_json::Value,
}

/// One `pkg:docker/…` dependency of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DockerDependency {
    /// `name:tag` or `name@digest` as BuildKit wrote it (purl-decoded).
    reference: String,
    tag: Option<String>,
    pinned_digest: Option<String>,
    resolved_digest: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `pkg:docker/[namespace/]name@version?qualifiers` (purl spec, docker type; BuildKit's
/// `util/purl`): version is the tag (or a digest), qualifier `digest` is present when the
/// reference was pinned.
fn parse_docker_purl(uri: &str, resolved: Option<String>) -> Option<DockerDependency> {
    let rest = uri.strip_prefix("pkg:docker/")?;
    let (path, qualifiers) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let (name, version) = match path.rsplit_once('@') {
        Some((n, v)) => (percent_decode(n), Some(percent_decode(v))),
        None => (percent_decode(path), None),
    };
    let mut pinned_digest = None;
    for q in qualifiers.unwrap_or("").split('&') {
        if let Some(d) = q.strip_prefix("digest=") {
            pinned_digest = Some(percent_decode(d));
        }
    }
    let (tag, version_digest) = match version {
        Some(v) if v.contains(':') && v.parse::<Digest>().is_ok() => (None, Some(v)),
        Some(v) => (Some(v), None),
        None => (None, None),
    };
    let pinned_digest = pinned_digest.or(version_digest);
    let mut reference = name;
    if let Some(t) = &tag {
        reference = format!("{reference}:{t}");
    }
    if let Some(d) = &pinned_digest {
        reference = format!("{reference}@{d}");
    }
    Some(DockerDependency {
        reference,
        tag,
        pinned_digest,
        resolved_digest: resolved,
    })
}

/// The `pkg:docker` dependencies of a SLSA v1 or v0.2 provenance predicate.
fn docker_dependencies(statement: &Statement) -> Vec<DockerDependency> {
    let entries = match statement.predicate_type.as_str() {
        SLSA_V1 => statement
            .predicate
            .pointer("/buildDefinition/resolvedDependencies"),
        SLSA_V02 => statement.predicate.pointer("/materials"),
        _ => None,
    };
    let Some(entries) = entries.and_then(|e| e.as_array()) else {
        return Vec::new();
    };
    let mut deps: Vec<DockerDependency> = entries
        .iter()
        .filter_map(|e| {
            let uri = e.get("uri")?.as_str()?;
            let resolved = e
                .pointer("/digest/sha256")
                .and_then(|d| d.as_str())
                .map(|h| format!("sha256:{h}"));
            parse_docker_purl(uri, resolved)
        })
        .collect();
    deps.sort_by(|a, b| a.reference.cmp(&b.reference));
    deps.dedup();
    deps
}

fn from_provenance(deps: &[DockerDependency], location: Location) -> Option<BaseFacts> {
    match deps {
        [] => None,
        [only] => Some(BaseFacts {
            name: Some(only.reference.clone()),
            digest: only
                .pinned_digest
                .clone()
                .or_else(|| only.resolved_digest.clone()),
            tag: only.tag.clone(),
            pinned: only.pinned_digest.is_some(),
            floating: Some(only.pinned_digest.is_none() && tag_floats(only.tag.as_deref())),
            evidence: BaseEvidence::Provenance,
            candidates: Vec::new(),
            layers: None,
            location: Some(location),
        }),
        // A multi-stage build names every stage's image and provenance (mode=min) does not say
        // which one the final stage used: report all, pinned only if all are pinned.
        many => Some(BaseFacts {
            name: None,
            digest: None,
            tag: None,
            pinned: many.iter().all(|d| d.pinned_digest.is_some()),
            floating: Some(
                many.iter()
                    .any(|d| d.pinned_digest.is_none() && tag_floats(d.tag.as_deref())),
            ),
            evidence: BaseEvidence::Provenance,
            candidates: many.iter().map(|d| d.reference.clone()).collect(),
            layers: None,
            location: Some(location),
        }),
    }
}

/// Finds the base-image evidence of `image`. Failures to read provenance are logged and treated as no evidence:
/// they never fail a scan, and never make a base look pinned.
pub async fn base_facts(source: &dyn ImageSource, image: &ResolvedImage) -> BaseFacts {
    let annotations = image.manifest.annotations.clone().unwrap_or_default();
    if let Some(name) = annotations.get(BASE_NAME) {
        let location = Location {
            field: Some(format!("manifest.annotations[\"{BASE_NAME}\"]")),
            ..Location::default()
        };
        return from_name(
            name,
            annotations.get(BASE_DIGEST).map(String::as_str),
            BaseEvidence::Annotation,
            location,
        );
    }
    // The index is read once more (a manifest-sized read) for descriptor annotations and the
    // provenance attestation: ResolvedImage keeps only the index's summary.
    let index = match &image.index {
        Some(_) => match source.root().await {
            Ok(root) if root.kind == DocumentKind::Index => root.index,
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "index unreadable; no descriptor annotations or provenance");
                None
            }
        },
        None => None,
    };
    let entry_annotations = index
        .as_ref()
        .and_then(|i| {
            i.manifests
                .iter()
                .find(|d| d.digest == image.manifest_digest)
        })
        .and_then(|d| d.annotations.clone())
        .unwrap_or_default();
    if let Some(name) = entry_annotations.get(BASE_NAME) {
        let location = Location {
            field: Some(format!("index.manifests[].annotations[\"{BASE_NAME}\"]")),
            ..Location::default()
        };
        return from_name(
            name,
            entry_annotations.get(BASE_DIGEST).map(String::as_str),
            BaseEvidence::Annotation,
            location,
        );
    }
    if let Some(index) = &index
        && let Some(facts) = provenance_facts(source, image, index).await
    {
        return facts;
    }
    let labels: &BTreeMap<String, String> = &image.config.config.labels;
    if let Some(name) = labels.get(BASE_NAME) {
        let location = Location {
            field: Some(format!("config.Labels[\"{BASE_NAME}\"]")),
            ..Location::default()
        };
        return from_name(
            name,
            labels.get(BASE_DIGEST).map(String::as_str),
            BaseEvidence::Label,
            location,
        );
    }
    BaseFacts::none()
}

async fn provenance_facts(
    source: &dyn ImageSource,
    image: &ResolvedImage,
    index: &ImageIndex,
) -> Option<BaseFacts> {
    let subject = image.manifest_digest.to_string();
    let attestation = index.manifests.iter().find(|d| {
        d.annotations.as_ref().is_some_and(|a| {
            a.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST)
                && a.get(REFERENCE_DIGEST) == Some(&subject)
        })
    })?;
    let manifest = match source.manifest(attestation).await {
        Ok(doc) => doc.manifest?,
        Err(e) => {
            tracing::warn!(error = %e, "attestation manifest unreadable; base image evidence from provenance skipped");
            return None;
        }
    };
    for layer in &manifest.layers {
        let predicate = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(PREDICATE_TYPE))
            .map(String::as_str);
        if layer.media_type != IN_TOTO || !matches!(predicate, Some(SLSA_V1) | Some(SLSA_V02)) {
            continue;
        }
        let statement = match read_statement(source, layer).await {
            Ok(s) => s,
            Err(reason) => {
                tracing::warn!(layer = %layer.digest, %reason, "provenance statement unreadable");
                continue;
            }
        };
        let location = Location {
            layer: Some(layer.digest.to_string()),
            field: Some(format!("attestation {} predicate", attestation.digest)),
            ..Location::default()
        };
        if let Some(facts) = from_provenance(&docker_dependencies(&statement), location) {
            return Some(facts);
        }
    }
    None
}

async fn read_statement(source: &dyn ImageSource, desc: &Descriptor) -> Result<Statement, String> {
    if desc.size > MAX_PROVENANCE_BYTES {
        return Err(format!(
            "{} bytes is over the {MAX_PROVENANCE_BYTES}-byte provenance limit",
            desc.size
        ));
    }
    let stream = source.blob(desc).await.map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    stream
        .take(MAX_PROVENANCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| e.to_string())?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if actual != desc.digest.to_string() {
        return Err(format!(
            "digest mismatch: expected {}, got {actual}",
            desc.digest
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON: {e}"))
}

/// Marks which layers belong to the base: the base's diff IDs must be a prefix of the image's.
pub fn base_layers(image_diff_ids: &[Digest], base_diff_ids: &[Digest]) -> Option<Vec<usize>> {
    (base_diff_ids.len() <= image_diff_ids.len() && image_diff_ids.starts_with(base_diff_ids))
        .then(|| (0..base_diff_ids.len()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_tags() {
        for t in [
            None,
            Some("latest"),
            Some("3"),
            Some("v18"),
            Some("stable"),
            Some("EDGE"),
        ] {
            assert!(tag_floats(t), "{t:?}");
        }
        for t in [
            Some("3.20"),
            Some("bookworm-slim"),
            Some("1.25.3-alpine"),
            Some("v"),
            Some(""),
        ] {
            assert!(!tag_floats(t), "{t:?}");
        }
    }

    #[test]
    fn annotation_names() {
        let loc = Location::default();
        let f = from_name(
            "docker.io/library/alpine:3.20",
            Some("sha256:abc"),
            BaseEvidence::Annotation,
            loc.clone(),
        );
        assert_eq!(f.tag.as_deref(), Some("3.20"));
        assert!(!f.pinned);
        assert_eq!(f.floating, Some(false));
        assert_eq!(f.digest.as_deref(), Some("sha256:abc"));

        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let f = from_name(
            &format!("alpine:3.20@{d}"),
            None,
            BaseEvidence::Annotation,
            loc.clone(),
        );
        assert!(f.pinned);
        assert_eq!(f.floating, Some(false));
        assert_eq!(f.digest.as_deref(), Some(d));
        assert_eq!(
            f.name.as_deref(),
            Some(format!("docker.io/library/alpine:3.20@{d}").as_str())
        );

        let f = from_name("alpine", None, BaseEvidence::Label, loc.clone());
        assert_eq!(f.floating, Some(true));
        assert_eq!(f.name.as_deref(), Some("docker.io/library/alpine:latest"));
        let f = from_name("localhost:5000/base:latest", None, BaseEvidence::Label, loc);
        assert_eq!(f.tag.as_deref(), Some("latest"));
        assert_eq!(f.floating, Some(true));
    }

    #[test]
    fn buildkit_purls() {
        let d = parse_docker_purl(
            "pkg:docker/alpine@latest?platform=linux%2Famd64",
            Some("sha256:89".into()),
        )
        .unwrap();
        assert_eq!(d.reference, "alpine:latest");
        assert_eq!(d.tag.as_deref(), Some("latest"));
        assert_eq!(d.pinned_digest, None);
        let d = parse_docker_purl(
            "pkg:docker/docker.io/library/golang@1.22?digest=sha256%3Aabcd&platform=linux%2Famd64",
            None,
        )
        .unwrap();
        assert_eq!(d.reference, "docker.io/library/golang:1.22@sha256:abcd");
        assert_eq!(d.pinned_digest.as_deref(), Some("sha256:abcd"));
        assert!(parse_docker_purl("pkg:github/x/y@v1", None).is_none());
        assert!(parse_docker_purl("https://example.com/x.tar", None).is_none());
    }

    #[test]
    fn provenance_from_shared_payload() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/payloads/buildkit-provenance-slsa-v1-mode-min.json"
        );
        let statement: Statement = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let deps = docker_dependencies(&statement);
        assert_eq!(deps.len(), 1);
        let facts = from_provenance(&deps, Location::default()).unwrap();
        assert_eq!(facts.name.as_deref(), Some("alpine:latest"));
        assert!(!facts.pinned);
        assert_eq!(facts.floating, Some(true));
        assert_eq!(
            facts.digest.as_deref(),
            Some("sha256:8914eb54f968791faf6a8638949e480fef81e697984fba772b3976835194c6d4")
        );
    }

    #[test]
    fn multi_stage_provenance_lists_candidates() {
        let deps = vec![
            parse_docker_purl("pkg:docker/golang@1.22?platform=linux%2Famd64", None).unwrap(),
            parse_docker_purl(
                "pkg:docker/gcr.io/distroless/static@nonroot?digest=sha256%3Aaa",
                None,
            )
            .unwrap(),
        ];
        let f = from_provenance(&deps, Location::default()).unwrap();
        assert_eq!(f.name, None);
        assert!(!f.pinned);
        assert_eq!(f.candidates.len(), 2);
    }

    #[test]
    fn base_layer_prefix() {
        let d = |b: u8| Digest::from_bytes(gantry_model::DigestAlgorithm::Sha256, &[b; 32]);
        assert_eq!(
            base_layers(&[d(1), d(2), d(3)], &[d(1), d(2)]),
            Some(vec![0, 1])
        );
        assert_eq!(base_layers(&[d(1), d(2)], &[d(2)]), None);
        assert_eq!(base_layers(&[d(1)], &[d(1), d(2)]), None);
    }
}
