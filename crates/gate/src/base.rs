//! Which image this one was built `FROM`, and how firmly that reference was pinned.
//!
//! Evidence, strongest first:
//! 1. manifest annotations `org.opencontainers.image.base.name` / `.base.digest` (and the same
//!    annotations on the index descriptor of this manifest) — Buildah, Podman, ko, `docker
//!    buildx --annotation`;
//! 2. BuildKit provenance (SLSA v1 `resolvedDependencies`, v0.2 `materials`) attached to the
//!    index as an attestation manifest for this image: `pkg:docker/…` dependencies, each with
//!    the digest BuildKit resolved and, when the Dockerfile's `FROM` named one, a `digest`
//!    qualifier; with `mode=max` the Dockerfile itself, which tells the final stage's `FROM`;
//! 3. config labels with the annotation keys — weaker, because labels are inherited from the
//!    base, so a label can name the base's own base.
//!
//! The recorded base is classified ([`Pin`]): **digest** when the reference carries a digest,
//! when only `base.digest` is recorded (ko's form for a base given by digest), or when
//! provenance shows the `FROM` had one; **version** for a specific version tag
//! ([`classify_tag`]) — the resolved digest recorded beside it proves only what the tag
//! pointed at on build day; **floating** for no tag, `latest`, a bare major, or any tag that
//! names no specific version; **unknown** when nothing is recorded. The record's name, tag
//! and digest stay separate fields so a later check can ask the registry where the tag
//! points now.

use std::collections::BTreeMap;

use gantry_model::oci::{Descriptor, DocumentKind, ImageIndex};
use gantry_model::{Digest, ImageRef, Location};
use gantry_registry::{ImageSource, ResolvedImage};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use crate::dockerfile::{FinalFrom, final_from};

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

/// How firmly the recorded base reference is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pin {
    /// Moves by design: no tag, `latest`, a bare major, a channel or codename.
    Floating,
    /// A specific version tag (`1.22.5`, `3.20-alpine`): moves only with rebuilds of that
    /// version.
    Version,
    /// Written with a digest: immutable.
    Digest,
    /// Nothing recorded.
    Unknown,
}

/// `facts.base` of the policy input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFacts {
    /// The base reference as recorded, when there is one.
    pub name: Option<String>,
    /// The recorded reference's repository, normalised (`docker.io/library/debian`), without
    /// tag or digest; null without a name.
    #[serde(default)]
    pub repository: Option<String>,
    /// The class of the record: `digest`, `version`, `floating` or `unknown`.
    pub pin: Pin,
    /// Why that class, for a human (and for messages).
    pub pin_reason: String,
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
    /// The candidates' repositories, normalised like `repository` (same order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_repositories: Vec<String>,
    /// The provenance shows the final stage is `FROM scratch`: there is no base image.
    #[serde(default)]
    pub scratch: bool,
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
            repository: None,
            pin: Pin::Unknown,
            pin_reason: "nothing records the base image".to_string(),
            digest: None,
            tag: None,
            pinned: false,
            floating: None,
            evidence: BaseEvidence::None,
            candidates: Vec::new(),
            candidate_repositories: Vec::new(),
            scratch: false,
            layers: None,
            location: None,
        }
    }
}

/// Whether a tag names a specific version, and why not when it does not.
///
/// The tag's leading component (up to the first `-`) decides, as Docker Official Images
/// spell tags `<version>-<variant>`: `18.17.1-alpine3.18` is node 18.17.1 on Alpine 3.18, and
/// `lts-alpine3.18` is whatever node is LTS today.
/// - **version**: `major.minor[.patch…]` with an optional `v` and pre-release suffix
///   (`1.22`, `v1.2.3`, `3.20-alpine`, `21.0.1_12-jdk`), a Java update (`8u392`, `8u392-b08`),
///   or a date snapshot anywhere in the tag (`bookworm-20240101`, `nightly-2024-01-01`,
///   `20240101`): such a tag is never moved to newer content, only (rarely) rebuilt.
/// - **floating**, everything else: a bare major (`12`, `v2`, `12-slim`) moves with every
///   minor release; a word (`latest`, `stable`, `lts`, `bookworm`, `jammy`, `alpine`,
///   `nonroot`) names a channel, a codename or a variant, all of which move by design.
pub fn classify_tag(tag: &str) -> (Pin, String) {
    let lower = tag.to_ascii_lowercase();
    let lead = lower.split('-').next().unwrap_or_default();
    if is_version(lead) {
        return (Pin::Version, format!("tag {tag} is a specific version"));
    }
    if has_date(&lower) {
        return (
            Pin::Version,
            format!("tag {tag} is a dated snapshot, which is not moved to newer content"),
        );
    }
    let bare = lead.strip_prefix('v').unwrap_or(lead);
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
        return (
            Pin::Floating,
            format!("tag {tag} is a bare major version: it moves with every minor release"),
        );
    }
    (
        Pin::Floating,
        format!(
            "tag {tag} names no specific version: a channel, codename or variant tag moves by design"
        ),
    )
}

/// `v?N.N[.N…]`, optionally `_N` (Temurin builds) and a letter suffix (`rc1`, `b2`); or a
/// Java update `NuN` (`8u392`, `8u392b08`).
fn is_version(component: &str) -> bool {
    let c = component.strip_prefix('v').unwrap_or(component);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((major, update)) = c.split_once('u')
        && digits(major)
    {
        let update = update
            .split_once('b')
            .map_or(update, |(u, b)| if digits(b) { u } else { "" });
        return digits(update);
    }
    let c = c
        .split_once('_')
        .map_or(c, |(v, build)| if digits(build) { v } else { "" });
    let numeric_end = c
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(c.len());
    let (numbers, suffix) = c.split_at(numeric_end);
    let parts: Vec<&str> = numbers.split('.').collect();
    let suffix_ok = suffix.is_empty()
        || (suffix
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && suffix.bytes().all(|b| b.is_ascii_alphanumeric()));
    parts.len() >= 2 && parts.iter().all(|p| digits(p)) && suffix_ok
}

/// A calendar date in the tag: `YYYYMMDD` as one component, or `YYYY-MM-DD` across three.
fn has_date(tag: &str) -> bool {
    let date = |y: &str, m: &str, d: &str| {
        let n = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        matches!((n(y, 4), n(m, 2), n(d, 2)), (Some(y), Some(m), Some(d))
            if (1970..=2199).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d))
    };
    let parts: Vec<&str> = tag.split(['-', '.', '_']).collect();
    parts
        .iter()
        .any(|p| p.len() == 8 && date(&p[..4], &p[4..6], &p[6..]))
        || parts.windows(3).any(|w| date(w[0], w[1], w[2]))
}

/// Whether a tag floats (kept for callers of the boolean form): [`classify_tag`] is floating.
pub fn tag_floats(tag: Option<&str>) -> bool {
    tag.is_none_or(|t| classify_tag(t).0 == Pin::Floating)
}

/// The class of a recorded reference with `tag` (as written) and a written digest or not.
fn classify(tag: Option<&str>, written_digest: bool, how: &str) -> (Pin, String) {
    if written_digest {
        return (Pin::Digest, format!("{how} carries a digest"));
    }
    match tag {
        None => (
            Pin::Floating,
            format!("{how} has no tag, so it means latest"),
        ),
        Some(t) => classify_tag(t),
    }
}

/// `registry/repository` of a reference whose name parses, Docker-normalised (the digest
/// is left out before parsing: a recorded one need not be well-formed for the name to be).
fn repository_of(reference: &str) -> Option<String> {
    let name = reference.split_once('@').map_or(reference, |(n, _)| n);
    name.parse::<ImageRef>().ok().map(|r| r.name())
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
    let (pin, mut pin_reason) = classify(tag.as_deref(), pinned, "the recorded base reference");
    if pin == Pin::Version && digest.is_some() {
        pin_reason.push_str(", with the digest it resolved to at build time recorded");
    }
    // Normalise like Docker when the name parses (`alpine` → docker.io/library/alpine:latest),
    // keep it as written otherwise: the evidence is reported, not rewritten into something else.
    let normalised = name
        .parse::<ImageRef>()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string());
    BaseFacts {
        name: Some(normalised),
        repository: repository_of(name),
        pin,
        pin_reason,
        digest: digest.map(str::to_string).or(written_digest),
        tag,
        pinned,
        floating: Some(pin == Pin::Floating),
        evidence,
        candidates: Vec::new(),
        candidate_repositories: Vec::new(),
        scratch: false,
        layers: None,
        location: Some(location),
    }
}

/// Base facts from a `base.digest` recorded without a name: ko writes the name only when
/// the base was given by tag, so a digest alone is ko's record of a base given by digest.
fn from_digest_only(digest: &str, evidence: BaseEvidence, location: Location) -> BaseFacts {
    BaseFacts {
        name: None,
        repository: None,
        pin: Pin::Digest,
        pin_reason: "only the base digest is recorded (as ko records a base given by digest)"
            .to_string(),
        digest: Some(digest.to_string()),
        tag: None,
        pinned: true,
        floating: Some(false),
        evidence,
        candidates: Vec::new(),
        candidate_repositories: Vec::new(),
        scratch: false,
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

/// The `pkg:docker` dependencies of a SLSA v1 or v0.2 provenance predicate, without the
/// Dockerfile frontend image (`# syntax=…`), which BuildKit lists among them but is not a
/// base.
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
    let frontend = build_args(statement)
        .get("source")
        .and_then(|s| repository_of(s));
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
        .filter(|d| frontend.is_none() || repository_of(&d.reference) != frontend)
        .collect();
    deps.sort_by(|a, b| a.reference.cmp(&b.reference));
    deps.dedup();
    deps
}

/// The frontend's request arguments (`target`, `build-arg:NAME`, `source`): SLSA v1
/// `buildDefinition.externalParameters.request.args`, v0.2 `invocation.parameters.args`.
fn build_args(statement: &Statement) -> BTreeMap<String, String> {
    let args = match statement.predicate_type.as_str() {
        SLSA_V1 => statement
            .predicate
            .pointer("/buildDefinition/externalParameters/request/args"),
        _ => statement.predicate.pointer("/invocation/parameters/args"),
    };
    args.and_then(|a| a.as_object())
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The Dockerfile of a `mode=max` statement (`source.infos[].data`, base64), when there is
/// one: the info named like the config source's file, else the first.
fn dockerfile_of(statement: &Statement) -> Option<String> {
    use base64::Engine as _;
    let p = &statement.predicate;
    let (metadata, entry) = match statement.predicate_type.as_str() {
        SLSA_V1 => (
            p.pointer("/runDetails/metadata/buildkit_metadata/source/infos"),
            p.pointer("/buildDefinition/externalParameters/configSource/path"),
        ),
        _ => (
            p.get("metadata")
                .and_then(|m| m.get("https://mobyproject.org/buildkit@v1#metadata"))
                .and_then(|m| m.pointer("/source/infos")),
            p.pointer("/invocation/configSource/entryPoint"),
        ),
    };
    let infos = metadata?.as_array()?;
    let entry = entry.and_then(|e| e.as_str()).unwrap_or("Dockerfile");
    let info = infos
        .iter()
        .find(|i| i.get("filename").and_then(|f| f.as_str()) == Some(entry))
        .or_else(|| infos.first())?;
    let data = info.get("data")?.as_str()?;
    if data.len() > crate::dockerfile::MAX_DOCKERFILE_BYTES * 4 / 3 + 4 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The final stage's `FROM`, from the Dockerfile in the statement.
fn final_from_of(statement: &Statement) -> Option<FinalFrom> {
    let dockerfile = dockerfile_of(statement)?;
    let args = build_args(statement);
    let target = args
        .get("target")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let build: BTreeMap<String, String> = args
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("build-arg:")?.to_string(), v.clone())))
        .collect();
    final_from(&dockerfile, target, &build)
}

fn dependency_facts(dep: &DockerDependency, how: &str, location: Location) -> BaseFacts {
    let (pin, mut pin_reason) = classify(dep.tag.as_deref(), dep.pinned_digest.is_some(), how);
    if pin == Pin::Version && dep.resolved_digest.is_some() {
        pin_reason.push_str(", with the digest it resolved to at build time recorded");
    }
    BaseFacts {
        name: Some(dep.reference.clone()),
        repository: repository_of(&dep.reference),
        pin,
        pin_reason,
        digest: dep
            .pinned_digest
            .clone()
            .or_else(|| dep.resolved_digest.clone()),
        tag: dep.tag.clone(),
        pinned: dep.pinned_digest.is_some(),
        floating: Some(pin == Pin::Floating),
        evidence: BaseEvidence::Provenance,
        candidates: Vec::new(),
        candidate_repositories: Vec::new(),
        scratch: false,
        layers: None,
        location: Some(location),
    }
}

fn from_provenance(statement: &Statement, location: Location) -> Option<BaseFacts> {
    let deps = docker_dependencies(statement);
    // mode=max: the Dockerfile says which image the final stage is built FROM, and how the
    // FROM was written.
    match final_from_of(statement) {
        Some(FinalFrom::Scratch { line }) => {
            return Some(BaseFacts {
                pin_reason: format!(
                    "the final stage is FROM scratch (Dockerfile line {line}): there is no base image"
                ),
                evidence: BaseEvidence::Provenance,
                scratch: true,
                location: Some(location),
                ..BaseFacts::none()
            });
        }
        Some(FinalFrom::Image { reference, line }) => {
            let (tag, written) = split_reference(&reference);
            let wanted = repository_of(&reference);
            let dep = deps.iter().find(|d| {
                wanted.is_some()
                    && repository_of(&d.reference) == wanted
                    && (tag.is_none() || d.tag == tag)
            });
            let how = format!("the final stage's FROM {reference} (Dockerfile line {line})");
            let mut facts = match dep {
                Some(d) => dependency_facts(d, &how, location),
                None => {
                    // The Dockerfile names it, the dependency list does not: judge the text.
                    let (pin, pin_reason) = classify(tag.as_deref(), written.is_some(), &how);
                    BaseFacts {
                        name: Some(reference.clone()),
                        repository: wanted,
                        pin,
                        pin_reason,
                        digest: written.clone(),
                        tag: tag.clone(),
                        pinned: written.is_some(),
                        floating: Some(pin == Pin::Floating),
                        evidence: BaseEvidence::Provenance,
                        candidates: Vec::new(),
                        candidate_repositories: Vec::new(),
                        scratch: false,
                        layers: None,
                        location: Some(location),
                    }
                }
            };
            // What the Dockerfile wrote decides whether FROM had a digest.
            if written.is_some() && facts.pin != Pin::Digest {
                facts.pin = Pin::Digest;
                facts.pinned = true;
                facts.floating = Some(false);
                facts.pin_reason = format!("{how} carries a digest");
            }
            return Some(facts);
        }
        None => {}
    }
    match deps.as_slice() {
        [] => None,
        [only] => Some(dependency_facts(
            only,
            "the base reference in the provenance",
            location,
        )),
        // A multi-stage build names every stage's image and provenance (mode=min) does not say
        // which one the final stage used: report all, classified as the weakest of them.
        many => {
            let classes: Vec<(Pin, String)> = many
                .iter()
                .map(|d| {
                    classify(
                        d.tag.as_deref(),
                        d.pinned_digest.is_some(),
                        &format!("the build's image {}", d.reference),
                    )
                })
                .collect();
            let (pin, reason) = classes
                .iter()
                .min_by_key(|(p, _)| *p)
                .cloned()
                .unwrap_or((Pin::Unknown, String::new()));
            Some(BaseFacts {
                name: None,
                repository: None,
                pin,
                pin_reason: format!(
                    "the final stage's base cannot be told apart among the build's images; the weakest: {reason}"
                ),
                digest: None,
                tag: None,
                pinned: many.iter().all(|d| d.pinned_digest.is_some()),
                floating: Some(pin == Pin::Floating),
                evidence: BaseEvidence::Provenance,
                candidates: many.iter().map(|d| d.reference.clone()).collect(),
                candidate_repositories: many
                    .iter()
                    .filter_map(|d| repository_of(&d.reference))
                    .collect(),
                scratch: false,
                layers: None,
                location: Some(location),
            })
        }
    }
}

/// Finds the base-image evidence of `image`. Failures to read provenance are logged and treated as no evidence:
/// they never fail a scan, and never make a base look pinned.
pub async fn base_facts(source: &dyn ImageSource, image: &ResolvedImage) -> BaseFacts {
    let annotations = image.manifest.annotations.clone().unwrap_or_default();
    if let Some(facts) = from_record(
        &annotations,
        BaseEvidence::Annotation,
        "manifest.annotations",
    ) {
        return facts;
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
    if let Some(facts) = from_record(
        &entry_annotations,
        BaseEvidence::Annotation,
        "index.manifests[].annotations",
    ) {
        return facts;
    }
    if let Some(index) = &index
        && let Some(facts) = provenance_facts(source, image, index).await
    {
        return facts;
    }
    from_record(
        &image.config.config.labels,
        BaseEvidence::Label,
        "config.Labels",
    )
    .unwrap_or_else(BaseFacts::none)
}

/// Base facts from `base.name` / `base.digest` in one map (annotations or labels): a name,
/// with its digest when recorded; or a digest alone (ko's record of a base given by digest).
fn from_record(
    map: &BTreeMap<String, String>,
    evidence: BaseEvidence,
    field: &str,
) -> Option<BaseFacts> {
    let at = |key: &str| Location {
        field: Some(format!("{field}[\"{key}\"]")),
        ..Location::default()
    };
    let digest = map
        .get(BASE_DIGEST)
        .map(String::as_str)
        .filter(|d| !d.is_empty());
    match (map.get(BASE_NAME).filter(|n| !n.is_empty()), digest) {
        (Some(name), digest) => Some(from_name(name, digest, evidence, at(BASE_NAME))),
        (None, Some(digest)) => Some(from_digest_only(digest, evidence, at(BASE_DIGEST))),
        (None, None) => None,
    }
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
        if let Some(facts) = from_provenance(&statement, location) {
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

    /// The classification of tags, case by case (docs/checks.md, `unpinned-base`).
    #[test]
    fn tag_classes() {
        use Pin::{Floating, Version};
        for (tag, want) in [
            // Specific versions: at least major.minor.
            ("1.22", Version),
            ("12.12", Version),
            ("3.20.1", Version),
            ("1.22.5", Version),
            ("v1.2.3", Version),
            ("18.17.1-alpine3.18", Version),
            ("3.20-alpine", Version),
            ("1.22-bookworm", Version),
            ("2.7.18-slim-bookworm", Version),
            ("3.13.0rc1", Version),
            ("21.0.1_12-jdk", Version),
            // Java updates.
            ("8u392-jdk", Version),
            ("8u392b08", Version),
            ("8u392-b08-jre", Version),
            // Dated snapshots: the date freezes the codename or channel.
            ("bookworm-20240101", Version),
            ("jammy-20240125", Version),
            ("nightly-2024-01-01", Version),
            ("20240101", Version),
            // Bare majors, with or without a variant.
            ("12", Floating),
            ("3", Floating),
            ("v2", Floating),
            ("V18", Floating),
            ("12-slim", Floating),
            ("18-alpine3.18", Floating),
            // Channels, codenames, variants.
            ("latest", Floating),
            ("stable", Floating),
            ("LTS", Floating),
            ("edge", Floating),
            ("mainline", Floating),
            ("current", Floating),
            ("rolling", Floating),
            ("nightly", Floating),
            ("devel", Floating),
            ("bookworm", Floating),
            ("bookworm-slim", Floating),
            ("bullseye", Floating),
            ("trixie", Floating),
            ("sid", Floating),
            ("jammy", Floating),
            ("noble", Floating),
            ("focal", Floating),
            ("alpine", Floating),
            ("alpine3.18", Floating),
            ("lts-alpine3.18", Floating),
            ("nonroot", Floating),
            ("slim", Floating),
            // Not versions by shape.
            ("1.x", Floating),
            ("v", Floating),
            ("", Floating),
            ("8u", Floating),
            ("2024-13-01", Floating),
            ("99999999", Floating),
        ] {
            assert_eq!(classify_tag(tag).0, want, "{tag:?}");
        }
        assert!(tag_floats(None));
        assert!(!tag_floats(Some("3.20")));
        assert!(classify_tag("12-slim").1.contains("bare major"));
        assert!(
            classify_tag("bookworm-20240101")
                .1
                .contains("dated snapshot")
        );
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
        assert_eq!(f.pin, Pin::Version);
        assert!(
            f.pin_reason.contains("resolved to at build time"),
            "{}",
            f.pin_reason
        );
        assert_eq!(f.repository.as_deref(), Some("docker.io/library/alpine"));

        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let f = from_name(
            &format!("alpine:3.20@{d}"),
            None,
            BaseEvidence::Annotation,
            loc.clone(),
        );
        assert!(f.pinned);
        assert_eq!(f.pin, Pin::Digest);
        assert_eq!(f.floating, Some(false));
        assert_eq!(f.digest.as_deref(), Some(d));
        assert_eq!(
            f.name.as_deref(),
            Some(format!("docker.io/library/alpine:3.20@{d}").as_str())
        );

        let f = from_name("alpine", None, BaseEvidence::Label, loc.clone());
        assert_eq!(f.floating, Some(true));
        assert_eq!(f.pin, Pin::Floating);
        assert!(f.pin_reason.contains("no tag"), "{}", f.pin_reason);
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
        let facts = from_provenance(&statement, Location::default()).unwrap();
        assert_eq!(facts.pin, Pin::Floating);
        assert_eq!(facts.name.as_deref(), Some("alpine:latest"));
        assert!(!facts.pinned);
        assert_eq!(facts.floating, Some(true));
        assert_eq!(
            facts.digest.as_deref(),
            Some("sha256:8914eb54f968791faf6a8638949e480fef81e697984fba772b3976835194c6d4")
        );
    }

    fn statement(predicate_type: &str, predicate: serde_json::Value) -> Statement {
        Statement {
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }

    #[test]
    fn multi_stage_provenance_lists_candidates() {
        let s = statement(
            SLSA_V02,
            serde_json::json!({"materials": [
                {"uri": "pkg:docker/golang@1.22?platform=linux%2Famd64", "digest": {"sha256": "11"}},
                {"uri": "pkg:docker/gcr.io/distroless/static@nonroot?digest=sha256%3Aaa", "digest": {"sha256": "aa"}},
                // The frontend of `# syntax=docker/dockerfile:1` is not a base.
                {"uri": "pkg:docker/docker/dockerfile@1?platform=linux%2Famd64", "digest": {"sha256": "22"}},
            ], "invocation": {"parameters": {"frontend": "gateway.v0", "args": {"source": "docker/dockerfile:1"}}}}),
        );
        let f = from_provenance(&s, Location::default()).unwrap();
        assert_eq!(f.name, None);
        assert!(!f.pinned);
        assert_eq!(f.candidates.len(), 2, "{:?}", f.candidates);
        // The weakest candidate: golang:1.22 is a version.
        assert_eq!(f.pin, Pin::Version);
    }

    #[test]
    fn mode_max_dockerfile_tells_the_final_stage_and_its_digest() {
        use base64::Engine as _;
        let dockerfile = "FROM golang:1.22 AS build\nRUN go build\nARG BASE=gcr.io/distroless/static-debian12:nonroot\nFROM ${BASE}@sha256:aa\nCOPY --from=build /app /app\n";
        let deps = serde_json::json!([
            {"uri": "pkg:docker/golang@1.22?platform=linux%2Famd64", "digest": {"sha256": "11"}},
            {"uri": "pkg:docker/gcr.io/distroless/static-debian12@nonroot?digest=sha256%3Aaa&platform=linux%2Famd64", "digest": {"sha256": "aa"}},
        ]);
        // ARG after the first FROM is a stage arg, not global: BASE has no value for FROM.
        let v1 = |df: &str, args: serde_json::Value| {
            statement(
                SLSA_V1,
                serde_json::json!({
                    "buildDefinition": {"resolvedDependencies": deps, "externalParameters": {"configSource": {"path": "Dockerfile"}, "request": {"args": args}}},
                    "runDetails": {"metadata": {"buildkit_metadata": {"source": {"infos": [{"filename": "Dockerfile", "data": base64::engine::general_purpose::STANDARD.encode(df)}]}}}},
                }),
            )
        };
        let f =
            from_provenance(&v1(dockerfile, serde_json::json!({})), Location::default()).unwrap();
        assert_eq!(
            f.candidates.len(),
            2,
            "no answer from the Dockerfile: candidates"
        );

        let dockerfile = "ARG BASE=gcr.io/distroless/static-debian12:nonroot\nFROM golang:1.22 AS build\nRUN go build\nFROM ${BASE}@sha256:aa\nCOPY --from=build /app /app\n";
        let f =
            from_provenance(&v1(dockerfile, serde_json::json!({})), Location::default()).unwrap();
        assert_eq!(f.pin, Pin::Digest);
        assert_eq!(
            f.repository.as_deref(),
            Some("gcr.io/distroless/static-debian12")
        );
        assert!(
            f.pin_reason.contains("Dockerfile line 4"),
            "{}",
            f.pin_reason
        );
        assert!(f.candidates.is_empty());

        // The same build with --target=build: golang:1.22, a version tag.
        let f = from_provenance(
            &v1(dockerfile, serde_json::json!({"target": "build"})),
            Location::default(),
        )
        .unwrap();
        assert_eq!(
            (f.pin, f.name.as_deref()),
            (Pin::Version, Some("golang:1.22"))
        );
        assert_eq!(f.digest.as_deref(), Some("sha256:11"));

        // FROM scratch: nothing to pin.
        let f = from_provenance(
            &v1(
                "FROM golang:1.22 AS b\nFROM scratch\n",
                serde_json::json!({}),
            ),
            Location::default(),
        )
        .unwrap();
        assert_eq!(f.pin, Pin::Unknown);
        assert!(f.pin_reason.contains("FROM scratch"));
    }

    #[test]
    fn ko_digest_only_record_is_a_digest() {
        let map = BTreeMap::from([(BASE_DIGEST.to_string(), "sha256:abc".to_string())]);
        let f = from_record(&map, BaseEvidence::Annotation, "manifest.annotations").unwrap();
        assert_eq!(
            (f.pin, f.pinned, f.name.as_deref()),
            (Pin::Digest, true, None)
        );
        assert_eq!(
            f.location.unwrap().field.as_deref(),
            Some("manifest.annotations[\"org.opencontainers.image.base.digest\"]")
        );
        assert!(from_record(&BTreeMap::new(), BaseEvidence::Label, "config.Labels").is_none());
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
