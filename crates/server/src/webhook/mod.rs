//! Webhook intake: registry push notifications parsed into validated [`PushEvent`]s.
//!
//! One module per sender, each with the same shape — `parse(body, content_type[, hint])` →
//! [`Parsed`] — and [`parse`] to dispatch on a [`Source`]:
//!
//! | Sender | Module | Image from | Digest | Kind |
//! |---|---|---|---|---|
//! | CNCF Distribution 2.8 / 3.x | [`distribution`] | `request.host` (or [`RegistryHint`]) + `target.repository` | `target.digest` | from `target.mediaType` |
//! | GitLab container registry | [`gitlab`] | as Distribution | as Distribution | as Distribution |
//! | Harbor (Default and CloudEvents) | [`harbor`] | `resource_url` host + `repository.repo_full_name` | `resources[].digest` | unknown (no media type) |
//! | Docker Hub | [`dockerhub`] | `docker.io/` + `repository.repo_name` | none: resolve the tag | unknown |
//! | Quay | [`quay`] | `docker_url` host + `repository`, one event per `updated_tags[]` | none: resolve the tag | unknown |
//! | anything else | [`generic`] | `{"image": "ref"}` / `{"images": [...]}` | when the ref has one | unknown |
//!
//! **Skip, don't fail, what a real sender sends.** Registries send far more than pushes of
//! manifests: blob pushes, pulls (GET *and* HEAD), mounts, deletes, Harbor scan results. Those are
//! [`Skipped`] with a [`SkipReason`] and the request still succeeds. An error
//! ([`WebhookError`], a 4xx) is kept for bodies no conforming sender produces: not JSON, the
//! wrong content type, a push without a repository, a reference that breaks the grammar. This
//! matters because Distribution retries a failed delivery *forever*, in order, blocking every
//! later event for that endpoint (interfaces.md §0.2, §1.5): a 4xx must mean "this can never
//! succeed", never "this event is not interesting".
//!
//! **Bounded where the data enters.** The body is capped at [`MAX_WEBHOOK_BODY_BYTES`], a
//! payload at [`MAX_EVENTS_PER_PAYLOAD`] events (counted without materialising the rest), every
//! reference part at the reference grammar's lengths, and informational strings (ids, actors,
//! timestamps, media types) at a few hundred bytes: an over-long one is dropped, never
//! truncated (a truncated id could collide with another). Error messages quote at most
//! [`MAX_QUOTED_BYTES`] of the offending value.

pub mod auth;
pub mod distribution;
pub mod dockerhub;
pub mod generic;
pub mod gitlab;
pub mod harbor;
pub mod quay;

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use gantry_model::{Digest, DigestError, ImageRef, ReferenceError};
use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Largest webhook body accepted, in bytes (1 MiB).
///
/// Real pushes are small: a Distribution event is ~1.5 KB even with `includereferences` (a
/// 100-platform index or a 127-layer manifest stays under ~25 KB), Harbor's ~1 KB, Docker Hub's
/// ~1.3 KB. 1 MiB is forty times the largest of those, and bounds what one in-flight request can
/// make the server hold: the handler must stop reading at this size, before parsing.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

/// Most events (Distribution envelope entries, Harbor resources, Quay tags, generic images) one
/// payload may carry.
///
/// Distribution sends one event per POST in practice but its envelope is a list; 1,000 is
/// far beyond any real batch and caps the jobs one request can enqueue. Counting past the
/// limit does not materialise the extra entries, so a 1 MiB body of `{}`s costs no memory.
pub const MAX_EVENTS_PER_PAYLOAD: usize = 1000;

/// Most bytes of a rejected value quoted in an error message (the rest is elided), so an
/// attacker's 100 KB repository name is not echoed into responses and logs.
pub const MAX_QUOTED_BYTES: usize = 128;

/// Sender event ids longer than this are dropped (UUIDs are 36 bytes).
const MAX_ID_LEN: usize = 256;
/// Actor names longer than this are dropped (usernames, `robot$project+name` accounts).
const MAX_ACTOR_LEN: usize = 256;
/// Media types longer than this are dropped (RFC 6838: type and subtype ≤ 127 each).
const MAX_MEDIA_TYPE_LEN: usize = 255;
/// Timestamps longer than this are dropped (RFC 3339 with nanoseconds and offset is 35 bytes).
const MAX_TIMESTAMP_LEN: usize = 64;
/// Registry host plus `/` plus repository path (distribution/reference `RepositoryNameTotalLengthMax`).
const MAX_NAME_LEN: usize = 255;
/// Tag grammar `[\w][\w.-]{0,127}`.
const MAX_TAG_LEN: usize = 128;
/// `sha512:` and 128 hex characters, the longest digest Gantry accepts.
const MAX_DIGEST_LEN: usize = 7 + 128;
/// Docker Hub's registry name in references.
pub(crate) const DOCKER_HUB: &str = "docker.io";
/// A whole reference: name, `:tag`, `@digest`.
const MAX_REFERENCE_LEN: usize = MAX_NAME_LEN + 1 + MAX_TAG_LEN + 1 + MAX_DIGEST_LEN;

/// Which kind of sender a payload came from (one webhook path each: `/webhooks/<as_str>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// CNCF Distribution (`registry:2`, Debian's `docker-registry`, Distribution 3.x).
    Distribution,
    /// Harbor webhook policy, Default or CloudEvents payload format.
    Harbor,
    /// Docker Hub repository webhook.
    DockerHub,
    /// GitLab's container registry (a Distribution fork) notifications.
    Gitlab,
    /// Quay repository-push notification.
    Quay,
    /// `{"image": "ref"}` / `{"images": [...]}` from CI jobs and scripts.
    Generic,
}

impl Source {
    /// Every source, in a fixed order.
    pub const ALL: [Source; 6] = [
        Source::Distribution,
        Source::Harbor,
        Source::DockerHub,
        Source::Gitlab,
        Source::Quay,
        Source::Generic,
    ];

    /// Stable lowercase name, also the webhook path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Distribution => "distribution",
            Source::Harbor => "harbor",
            Source::DockerHub => "dockerhub",
            Source::Gitlab => "gitlab",
            Source::Quay => "quay",
            Source::Generic => "generic",
        }
    }

    /// Content types this sender's endpoint accepts (parameters such as `charset` are ignored).
    pub fn content_types(self) -> &'static [&'static str] {
        match self {
            Source::Distribution | Source::Gitlab => distribution::CONTENT_TYPES,
            Source::Harbor => harbor::CONTENT_TYPES,
            Source::DockerHub | Source::Quay | Source::Generic => JSON_ONLY,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| UnknownSource(quote(s)))
    }
}

/// A name that is not one of [`Source::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown webhook source {0:?} (known: distribution, harbor, dockerhub, gitlab, quay, generic)"
)]
pub struct UnknownSource(String);

/// `application/json`, the one content type of senders without a media type of their own.
const JSON_ONLY: &[&str] = &["application/json"];

/// What was pushed, as far as the payload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushKind {
    /// An image manifest (OCI or Docker schema 2; also artifacts, which share the media type).
    Manifest,
    /// An image index or Docker manifest list: its platform children are scheduled by
    /// resolving the index (they usually arrived earlier as untagged manifest pushes).
    Index,
    /// The payload does not say (Harbor, Docker Hub, Quay, generic): fetch the manifest — after
    /// resolving the tag when there is no digest — to find out.
    Unknown,
}

/// One pushed manifest (or tag) that Gantry should scan: the validated form of every sender's
/// payload.
///
/// `image` always carries a tag, a digest, or both; [`PushEvent::digest`] and
/// [`PushEvent::tag`] read them from it, so the three can never disagree. With no digest the
/// tag must be resolved against the registry, and the tag may have moved by then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PushEventRepr", try_from = "PushEventRepr")]
pub struct PushEvent {
    id: Option<String>,
    source: Source,
    image: ImageRef,
    media_type: Option<String>,
    kind: PushKind,
    occurred_at: Option<String>,
    actor: Option<String>,
}

impl PushEvent {
    /// The sender's event id, the de-duplication key for redeliveries: Distribution's
    /// `events[].id` (stable across its retries), Harbor CloudEvents' `id`, the generic
    /// payload's `id`; synthesised from repository, tag and `pushed_at` for Docker Hub; `None`
    /// when the sender has none (Harbor Default, Quay). When one payload yields several events
    /// from one sender id, each gets `<id>#<index>`, so ids stay unique per event.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Which kind of sender it came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The pushed image, normalised (`registry/repository[:tag][@digest]`).
    pub fn image(&self) -> &ImageRef {
        &self.image
    }

    /// The manifest digest, when the payload carries one.
    pub fn digest(&self) -> Option<&Digest> {
        self.image.digest()
    }

    /// The tag, when the push was by tag.
    pub fn tag(&self) -> Option<&str> {
        self.image.tag()
    }

    /// The manifest media type, when the payload carries one (Distribution, GitLab).
    pub fn media_type(&self) -> Option<&str> {
        self.media_type.as_deref()
    }

    /// Manifest, index, or unknown until fetched.
    pub fn kind(&self) -> PushKind {
        self.kind
    }

    /// When the sender says it happened: RFC 3339, as sent (Distribution, CloudEvents) or
    /// converted from Unix seconds (Harbor Default, Docker Hub).
    pub fn occurred_at(&self) -> Option<&str> {
        self.occurred_at.as_deref()
    }

    /// Who pushed, as the sender names them (`actor.name`, `operator`, `pusher`).
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }
}

/// The serialised form of [`PushEvent`]: `digest` and `tag` are spelled out for readers, and
/// checked against `image` when read back.
#[derive(Serialize, Deserialize)]
struct PushEventRepr {
    id: Option<String>,
    source: Source,
    image: ImageRef,
    digest: Option<Digest>,
    tag: Option<String>,
    media_type: Option<String>,
    kind: PushKind,
    occurred_at: Option<String>,
    actor: Option<String>,
}

impl From<PushEvent> for PushEventRepr {
    fn from(e: PushEvent) -> Self {
        PushEventRepr {
            digest: e.image.digest().cloned(),
            tag: e.image.tag().map(str::to_string),
            id: e.id,
            source: e.source,
            image: e.image,
            media_type: e.media_type,
            kind: e.kind,
            occurred_at: e.occurred_at,
            actor: e.actor,
        }
    }
}

impl TryFrom<PushEventRepr> for PushEvent {
    type Error = String;

    fn try_from(r: PushEventRepr) -> Result<Self, Self::Error> {
        if r.digest.as_ref() != r.image.digest() || r.tag.as_deref() != r.image.tag() {
            return Err(format!(
                "push event: digest {:?} and tag {:?} disagree with image {}",
                r.digest.map(|d| d.to_string()),
                r.tag,
                r.image
            ));
        }
        Ok(PushEvent {
            id: r.id,
            source: r.source,
            image: r.image,
            media_type: r.media_type,
            kind: r.kind,
            occurred_at: r.occurred_at,
            actor: r.actor,
        })
    }
}

/// What one payload yielded: events to schedule, and everything else with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    /// Pushes to scan, in payload order.
    pub events: Vec<PushEvent>,
    /// Entries that are not pushes of a manifest, in payload order.
    pub skipped: Vec<Skipped>,
}

/// A payload entry that is not a push to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Why it was skipped.
    pub reason: SkipReason,
    /// The sender's event id, when it has one (for logs and metrics).
    pub id: Option<String>,
}

/// Why a payload entry is not a push to scan. Serialised with a stable kebab-case `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum SkipReason {
    /// A blob upload (`mediaType: application/octet-stream`): one per layer and config.
    BlobPush,
    /// A push whose media type is neither a manifest nor an index (e.g. a layer type, as in
    /// Distribution's documentation example).
    NotAManifest {
        /// The media type, quoted up to [`MAX_QUOTED_BYTES`].
        media_type: String,
    },
    /// A pull: a GET, or a HEAD existence check (Distribution emits `pull` for both).
    Pull {
        /// The HTTP method, when the sender says.
        method: Option<String>,
    },
    /// A cross-repository blob mount.
    Mount,
    /// A manifest, tag, blob or repository delete.
    Delete,
    /// A GitLab repository rename.
    Rename,
    /// An event kind that is not a push (a Harbor scan result, a quota warning, an action
    /// a newer registry added).
    OtherEvent {
        /// The sender's name for it, quoted up to [`MAX_QUOTED_BYTES`].
        kind: String,
    },
    /// A Quay push notification with an empty `updated_tags`.
    NoTags,
}

impl SkipReason {
    /// Stable kebab-case code (the serialised `code`), for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::BlobPush => "blob-push",
            SkipReason::NotAManifest { .. } => "not-a-manifest",
            SkipReason::Pull { .. } => "pull",
            SkipReason::Mount => "mount",
            SkipReason::Delete => "delete",
            SkipReason::Rename => "rename",
            SkipReason::OtherEvent { .. } => "other-event",
            SkipReason::NoTags => "no-tags",
        }
    }
}

/// The registry host to use instead of the one a payload names.
///
/// Distribution's `request.host` is the Host header of the client's request — an internal
/// service address when clients push through a load balancer or inside the cluster — and
/// Harbor's and Quay's hosts come from their own external-URL settings. When set, the hint
/// replaces the payload's host for [`distribution`], [`gitlab`], [`harbor`] and [`quay`];
/// [`dockerhub`] is always `docker.io` and [`generic`] references carry their own host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryHint {
    host: Option<String>,
}

impl RegistryHint {
    /// No hint: use the host the payload names.
    pub fn none() -> Self {
        RegistryHint::default()
    }

    /// Use `host` (`registry.example.com`, `10.0.0.5:5000`, `[::1]:5000`), validated now so
    /// that a bad setting fails at startup, not at the first push. Lowercased.
    pub fn host(host: &str) -> Result<Self, WebhookError> {
        let host = validate_host(host, "registry host (configured)")?;
        Ok(RegistryHint { host: Some(host) })
    }

    /// The configured host, if any.
    pub fn get(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

/// Why a webhook payload was rejected. Each variant has a stable [`code`](Self::code) and an
/// HTTP [`status`](Self::status); the cause stays in `source()`, and [`detail`](Self::detail)
/// renders the whole chain, bounded, for a response body.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request's Content-Type is not one this endpoint accepts (or is missing).
    #[error(
        "{}; this endpoint accepts {}",
        .found.as_ref().map_or("no Content-Type".to_string(), |f| format!("unsupported content type {f:?}")),
        .expected.join(", ")
    )]
    UnsupportedContentType {
        /// What the request said, quoted up to [`MAX_QUOTED_BYTES`].
        found: Option<String>,
        /// What the endpoint accepts.
        expected: &'static [&'static str],
    },
    /// The body is over [`MAX_WEBHOOK_BODY_BYTES`].
    #[error("request body of {size} bytes is over the {limit}-byte limit")]
    BodyTooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON, or not JSON of the sender's shape (an array where an object
    /// belongs, a number where a string belongs).
    #[error("request body is not JSON of the expected shape")]
    InvalidJson {
        /// The parser's complaint, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A field needed to name the pushed image is absent (or null, or empty).
    #[error("missing field `{field}`")]
    MissingField {
        /// JSON path of the field, e.g. `events[0].target.repository`.
        field: String,
    },
    /// A host, repository, tag or digest breaks the reference grammar.
    #[error("field `{field}` is not a valid image reference part: {value:?}")]
    InvalidReference {
        /// JSON path of the field (or `registry host (configured)`).
        field: String,
        /// The value, quoted up to [`MAX_QUOTED_BYTES`].
        value: String,
        /// What is wrong with it.
        #[source]
        source: ReferenceProblem,
    },
    /// More than [`MAX_EVENTS_PER_PAYLOAD`] entries in one payload.
    #[error("payload carries more than {limit} events")]
    TooManyEvents {
        /// The limit.
        limit: usize,
    },
}

impl WebhookError {
    /// Every code, for documentation and uniqueness tests.
    pub const CODES: [&'static str; 6] = [
        "unsupported-content-type",
        "body-too-large",
        "invalid-json",
        "missing-field",
        "invalid-reference",
        "too-many-events",
    ];

    /// Stable kebab-case code for responses, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::UnsupportedContentType { .. } => "unsupported-content-type",
            WebhookError::BodyTooLarge { .. } => "body-too-large",
            WebhookError::InvalidJson { .. } => "invalid-json",
            WebhookError::MissingField { .. } => "missing-field",
            WebhookError::InvalidReference { .. } => "invalid-reference",
            WebhookError::TooManyEvents { .. } => "too-many-events",
        }
    }

    /// The HTTP status to answer with: 415 for the content type, 413 for size and event
    /// count, 400 for everything else. All are 4xx: retrying the same body cannot succeed.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::UnsupportedContentType { .. } => 415,
            WebhookError::BodyTooLarge { .. } | WebhookError::TooManyEvents { .. } => 413,
            WebhookError::InvalidJson { .. }
            | WebhookError::MissingField { .. }
            | WebhookError::InvalidReference { .. } => 400,
        }
    }

    /// The message and its causes (`a: b: c`), at most 1 KiB: serde's messages quote the
    /// offending value whole, and a response must not echo 100 KB back.
    pub fn detail(&self) -> String {
        const MAX_DETAIL_BYTES: usize = 1024;
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        if out.len() > MAX_DETAIL_BYTES {
            let cut = floor_char_boundary(&out, MAX_DETAIL_BYTES);
            out.truncate(cut);
            out.push('…');
        }
        out
    }
}

/// What is wrong with one part of an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    /// The reference grammar (distribution/reference) rejects it.
    #[error(transparent)]
    Grammar(#[from] ReferenceError),
    /// Not a digest Gantry accepts.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// Longer than the grammar allows.
    #[error("longer than {limit} bytes")]
    TooLong {
        /// The limit for this part.
        limit: usize,
    },
    /// A character that would change how the assembled reference reads (`:` or `@` in a
    /// repository, `/` in a host): rejected rather than let one field rewrite another.
    #[error("contains {0:?}, which is not allowed in this part of a reference")]
    ReservedChar(char),
    /// A host without a `.`, a `:port` or `localhost` reads as the first path component of a
    /// Docker Hub repository (`registry/team/app` is `docker.io/registry/team/app`).
    #[error(
        "a registry host needs a '.', a ':port', or to be 'localhost', or it reads as part of a \
         Docker Hub repository; configure the registry host for this endpoint"
    )]
    HostNotADomain,
}

/// Parses a payload from `source`. `hint` is used by the senders that name a host
/// ([`RegistryHint`]).
pub fn parse(
    source: Source,
    body: &[u8],
    content_type: Option<&str>,
    hint: &RegistryHint,
) -> Result<Parsed, WebhookError> {
    match source {
        Source::Distribution => distribution::parse(body, content_type, hint),
        Source::Gitlab => gitlab::parse(body, content_type, hint),
        Source::Harbor => harbor::parse(body, content_type, hint),
        Source::DockerHub => dockerhub::parse(body, content_type),
        Source::Quay => quay::parse(body, content_type, hint),
        Source::Generic => generic::parse(body, content_type),
    }
}

// ---- shared by the sender modules ----

/// Size, content type, then JSON: the checks every parser runs first, cheapest first.
pub(crate) fn decode<T: DeserializeOwned>(
    body: &[u8],
    content_type: Option<&str>,
    accepted: &'static [&'static str],
) -> Result<T, WebhookError> {
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(WebhookError::BodyTooLarge {
            size: body.len(),
            limit: MAX_WEBHOOK_BODY_BYTES,
        });
    }
    let essence = content_type.map(|ct| ct.split(';').next().unwrap_or("").trim());
    if !essence.is_some_and(|e| accepted.iter().any(|a| a.eq_ignore_ascii_case(e))) {
        return Err(WebhookError::UnsupportedContentType {
            found: content_type.map(quote),
            expected: accepted,
        });
    }
    serde_json::from_slice(body).map_err(|source| WebhookError::InvalidJson { source })
}

/// A JSON array read up to [`MAX_EVENTS_PER_PAYLOAD`] elements; the rest are counted, not kept.
pub(crate) struct Bounded<T> {
    items: Vec<T>,
    total: usize,
}

impl<T> Bounded<T> {
    /// The elements, or [`WebhookError::TooManyEvents`].
    pub(crate) fn into_items(self) -> Result<Vec<T>, WebhookError> {
        if self.total > MAX_EVENTS_PER_PAYLOAD {
            return Err(WebhookError::TooManyEvents {
                limit: MAX_EVENTS_PER_PAYLOAD,
            });
        }
        Ok(self.items)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for BoundedVisitor<T> {
            type Value = Bounded<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                let mut total = 0usize;
                while total < MAX_EVENTS_PER_PAYLOAD {
                    match seq.next_element::<T>()? {
                        Some(item) => {
                            items.push(item);
                            total += 1;
                        }
                        None => return Ok(Bounded { items, total }),
                    }
                }
                // Past the limit: still consume (the JSON must be well-formed to say "too many"
                // rather than "invalid"), but keep nothing.
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(Bounded { items, total })
            }
        }

        d.deserialize_seq(BoundedVisitor(PhantomData))
    }
}

/// `Some(s)` unless absent or empty: senders write `""` for "none" as often as they omit a key.
pub(crate) fn present(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// A required, non-empty field.
pub(crate) fn required(
    s: Option<String>,
    field: impl FnOnce() -> String,
) -> Result<String, WebhookError> {
    present(s).ok_or_else(|| WebhookError::MissingField { field: field() })
}

/// An informational string: kept when present and at most `limit` bytes, dropped otherwise.
pub(crate) fn informational(s: Option<String>, limit: usize) -> Option<String> {
    present(s).filter(|s| s.len() <= limit)
}

pub(crate) fn event_id(s: Option<String>) -> Option<String> {
    informational(s, MAX_ID_LEN)
}

pub(crate) fn actor(s: Option<String>) -> Option<String> {
    informational(s, MAX_ACTOR_LEN)
}

pub(crate) fn media_type(s: Option<String>) -> Option<String> {
    informational(s, MAX_MEDIA_TYPE_LEN)
}

pub(crate) fn timestamp(s: Option<String>) -> Option<String> {
    informational(s, MAX_TIMESTAMP_LEN)
}

/// `<id>#<index>` when one sender id covers several events, so ids stay unique per event.
pub(crate) fn indexed_id(id: Option<&str>, index: usize, count: usize) -> Option<String> {
    id.map(|id| {
        if count > 1 {
            format!("{id}#{index}")
        } else {
            id.to_string()
        }
    })
}

/// A value for an error message or skip reason: at most [`MAX_QUOTED_BYTES`], then `…`.
pub(crate) fn quote(s: &str) -> String {
    if s.len() <= MAX_QUOTED_BYTES {
        return s.to_string();
    }
    let cut = floor_char_boundary(s, MAX_QUOTED_BYTES);
    format!("{}…({} bytes)", &s[..cut], s.len())
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// The host part of a `[scheme://]host/path` URL-ish string (Harbor's `resource_url`, Quay's
/// `docker_url`); `None` when there is no path after the host.
pub(crate) fn host_of_url(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split_once('/')
        .map(|(host, _)| host)
        .filter(|h| !h.is_empty())
}

/// A registry host (`name[:port]`, `[v6]:port`), lowercased, checked on its own.
fn validate_host(host: &str, field: &str) -> Result<String, WebhookError> {
    let bad = |source| WebhookError::InvalidReference {
        field: field.to_string(),
        value: quote(host),
        source,
    };
    if host.len() > MAX_NAME_LEN {
        return Err(bad(ReferenceProblem::TooLong {
            limit: MAX_NAME_LEN,
        }));
    }
    if let Some(c) = host.chars().find(|c| matches!(c, '/' | '@')) {
        return Err(bad(ReferenceProblem::ReservedChar(c)));
    }
    let host = host.to_ascii_lowercase();
    // Parse `<host>/x` and check the host survived as the registry: that is the grammar's
    // check plus Docker's "is the first component a domain" rule, in one.
    match format!("{host}/x").parse::<ImageRef>() {
        Ok(r) if r.registry() == normalise_hub(&host) => Ok(host),
        Ok(_) => Err(bad(ReferenceProblem::HostNotADomain)),
        Err(e) => Err(bad(e.into())),
    }
}

/// `index.docker.io` is Docker Hub's legacy name; ImageRef rewrites it to `docker.io`.
fn normalise_hub(host: &str) -> &str {
    if host == "index.docker.io" {
        DOCKER_HUB
    } else {
        host
    }
}

/// One part of a reference and the JSON path it came from.
#[derive(Clone, Copy)]
pub(crate) struct Part<'a> {
    pub(crate) field: &'a str,
    pub(crate) value: &'a str,
}

impl<'a> Part<'a> {
    pub(crate) fn new(field: &'a str, value: &'a str) -> Self {
        Part { field, value }
    }

    fn invalid(self, source: ReferenceProblem) -> WebhookError {
        WebhookError::InvalidReference {
            field: self.field.to_string(),
            value: quote(self.value),
            source,
        }
    }
}

/// Assembles `host/repository[:tag][@digest]` from separately reported parts, checking each
/// one so that no part can rewrite another (a repository `team/app@sha256:…` would otherwise
/// smuggle in a digest).
pub(crate) fn image_ref(
    host: Part<'_>,
    repository: Part<'_>,
    tag: Option<Part<'_>>,
    digest: Option<Part<'_>>,
) -> Result<ImageRef, WebhookError> {
    let host_value = validate_host(host.value, host.field)?;
    if repository.value.len() > MAX_NAME_LEN {
        return Err(repository.invalid(ReferenceProblem::TooLong {
            limit: MAX_NAME_LEN,
        }));
    }
    if let Some(c) = repository.value.chars().find(|c| matches!(c, ':' | '@')) {
        return Err(repository.invalid(ReferenceProblem::ReservedChar(c)));
    }
    if let Some(tag) = tag {
        if tag.value.len() > MAX_TAG_LEN {
            return Err(tag.invalid(ReferenceProblem::TooLong { limit: MAX_TAG_LEN }));
        }
        if let Some(c) = tag.value.chars().find(|c| matches!(c, ':' | '@' | '/')) {
            return Err(tag.invalid(ReferenceProblem::ReservedChar(c)));
        }
    }
    if let Some(digest) = digest {
        if digest.value.len() > MAX_DIGEST_LEN {
            return Err(digest.invalid(ReferenceProblem::TooLong {
                limit: MAX_DIGEST_LEN,
            }));
        }
        if let Err(e) = digest.value.parse::<Digest>() {
            return Err(digest.invalid(e.into()));
        }
    }
    let mut text = format!("{host_value}/{}", repository.value);
    if let Some(tag) = tag {
        text.push(':');
        text.push_str(tag.value);
    }
    if let Some(digest) = digest {
        text.push('@');
        text.push_str(digest.value);
    }
    let image = text.parse::<ImageRef>().map_err(|e| {
        let part = match &e {
            ReferenceError::InvalidTag(_) => tag.unwrap_or(repository),
            ReferenceError::InvalidDigest(..) => digest.unwrap_or(repository),
            ReferenceError::InvalidHost(_) => host,
            _ => repository,
        };
        part.invalid(e.into())
    })?;
    // validate_host guarantees the registry; this is the belt to its braces.
    if image.registry() != normalise_hub(&host_value) {
        return Err(host.invalid(ReferenceProblem::HostNotADomain));
    }
    Ok(image)
}

/// A whole reference written by the caller (generic endpoint), length-checked before parsing.
pub(crate) fn full_reference(part: Part<'_>) -> Result<ImageRef, WebhookError> {
    if part.value.len() > MAX_REFERENCE_LEN {
        return Err(part.invalid(ReferenceProblem::TooLong {
            limit: MAX_REFERENCE_LEN,
        }));
    }
    part.value
        .parse::<ImageRef>()
        .map_err(|e| part.invalid(e.into()))
}

/// RFC 3339 UTC for Unix seconds (Harbor's `occur_at`, Docker Hub's `pushed_at`); `None`
/// outside years 1970..=9999.
pub(crate) use gantry_model::time::rfc3339_checked as unix_to_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn image_ref_assembles_and_guards_parts() {
        let host = Part::new("h", "Registry.Example.com:5000");
        let repo = Part::new("r", "team/app");
        let r = image_ref(
            host,
            repo,
            Some(Part::new("t", "v1")),
            Some(Part::new("d", D)),
        )
        .unwrap();
        assert_eq!(
            r.to_string(),
            format!("registry.example.com:5000/team/app:v1@{D}")
        );

        let smuggled = format!("team/app@{D}");
        let e = image_ref(host, Part::new("r", &smuggled), None, None).unwrap_err();
        assert!(matches!(
            e,
            WebhookError::InvalidReference { ref field, source: ReferenceProblem::ReservedChar('@'), .. } if field == "r"
        ));
        let e = image_ref(Part::new("h", "evil.com/x"), repo, None, None).unwrap_err();
        assert!(matches!(
            e,
            WebhookError::InvalidReference {
                source: ReferenceProblem::ReservedChar('/'),
                ..
            }
        ));
        let e = image_ref(Part::new("h", "registry"), repo, None, None).unwrap_err();
        assert!(matches!(
            e,
            WebhookError::InvalidReference {
                source: ReferenceProblem::HostNotADomain,
                ..
            }
        ));
        let e = image_ref(host, Part::new("r", "Team/App"), None, None).unwrap_err();
        assert!(matches!(
            e,
            WebhookError::InvalidReference { ref field, source: ReferenceProblem::Grammar(ReferenceError::Uppercase(_)), .. } if field == "r"
        ));
        let e = image_ref(host, repo, Some(Part::new("t", "-x")), None).unwrap_err();
        assert!(matches!(
            e,
            WebhookError::InvalidReference { ref field, .. } if field == "t"
        ));
        let hub = image_ref(
            Part::new("h", "index.docker.io"),
            Part::new("r", "alpine"),
            Some(Part::new("t", "3")),
            None,
        )
        .unwrap();
        assert_eq!(hub.to_string(), "docker.io/library/alpine:3");
    }

    #[test]
    fn quote_bounds_and_keeps_utf8() {
        let long = "é".repeat(200);
        let q = quote(&long);
        assert!(q.len() < MAX_QUOTED_BYTES + 20, "{}", q.len());
        assert!(q.ends_with("…(400 bytes)"));
        assert_eq!(quote("short"), "short");
    }

    #[test]
    fn source_names_round_trip() {
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("nope".parse::<Source>().is_err());
    }

    #[test]
    fn registry_hint_is_validated() {
        assert_eq!(
            RegistryHint::host("Registry.Example.com").unwrap().get(),
            Some("registry.example.com")
        );
        assert!(RegistryHint::host("registry").is_err());
        assert!(RegistryHint::host("a/b").is_err());
        assert!(RegistryHint::host("").is_err());
        assert_eq!(RegistryHint::none().get(), None);
    }
}
