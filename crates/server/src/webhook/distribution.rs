//! CNCF Distribution notifications (`registry:2`, Debian's `docker-registry` 2.8, Distribution 3.x).
//!
//! `POST {"events": [Event, …]}` with Content-Type `application/vnd.docker.distribution.events.v1+json`
//! (2.8) or `…v2+json` (3.x); `application/json` is accepted too. In practice one event per POST,
//! but the envelope is a list and every entry is read (up to
//! [`MAX_EVENTS_PER_PAYLOAD`](super::MAX_EVENTS_PER_PAYLOAD)).
//!
//! An event becomes a [`PushEvent`] when `action` is `push` and `target.mediaType` is a
//! manifest or an index:
//!
//! - image: the [`RegistryHint`] host, else `request.host` (the Host header of the client's
//!   request, so an internal address when clients push through a proxy), then
//!   `target.repository`, `target.tag` (only on pushes by tag; index children arrive by digest
//!   without one) and `target.digest`;
//! - kind: [`PushKind::Index`] for OCI indexes and Docker manifest lists (children are found
//!   by resolving the index), [`PushKind::Manifest`] for OCI, Docker schema 2 and schema 1
//!   manifests, [`PushKind::Unknown`] when the media type is absent;
//! - id: `events[].id`, stable across the registry's retries.
//!
//! Everything else is [`Skipped`]: blob pushes (`application/octet-stream`, one per layer and
//! config), pushes of other media types, `pull` (GET *and* HEAD: a client's existence checks
//! during `docker push` produce pulls), `mount`, `delete` (a manifest delete also emits one
//! tag delete per tag that pointed at it), `rename` (GitLab) and any action a later registry
//! adds. Their fields are not validated: an odd pull never blocks the registry's queue.

use serde::Deserialize;

use super::{
    Bounded, Parsed, Part, PushEvent, PushKind, RegistryHint, SkipReason, Skipped, Source,
    WebhookError, actor, decode, event_id, image_ref, media_type, present, quote, required,
    timestamp,
};
use gantry_model::oci::media_type as mt;

/// Content types accepted: the 2.8 envelope, the 3.x envelope, and plain JSON.
pub const CONTENT_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",
    "application/json",
];

/// Media type of blob events (layers, configs, mounted blobs).
const BLOB: &str = "application/octet-stream";
/// Docker schema 1 manifests (Distribution 2.8 still accepts them; 3.x rejects them).
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Longest HTTP method kept in a [`SkipReason::Pull`].
const MAX_METHOD_LEN: usize = 16;

#[derive(Deserialize)]
struct Envelope {
    events: Option<Bounded<RawEvent>>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: Option<String>,
    timestamp: Option<String>,
    action: Option<String>,
    target: Option<RawTarget>,
    request: Option<RawRequest>,
    actor: Option<RawActor>,
}

#[derive(Deserialize)]
struct RawTarget {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct RawRequest {
    host: Option<String>,
    method: Option<String>,
}

#[derive(Deserialize)]
struct RawActor {
    name: Option<String>,
}

/// Parses a Distribution notification envelope.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    hint: &RegistryHint,
) -> Result<Parsed, WebhookError> {
    parse_as(Source::Distribution, body, content_type, hint)
}

/// The envelope parser shared with [`gitlab`](super::gitlab), whose registry is a fork.
pub(crate) fn parse_as(
    source: Source,
    body: &[u8],
    content_type: Option<&str>,
    hint: &RegistryHint,
) -> Result<Parsed, WebhookError> {
    let envelope: Envelope = decode(body, content_type, CONTENT_TYPES)?;
    let events = envelope
        .events
        .ok_or_else(|| WebhookError::MissingField {
            field: "events".to_string(),
        })?
        .into_items()?;
    let mut parsed = Parsed::default();
    for (i, raw) in events.into_iter().enumerate() {
        match event(source, i, raw, hint)? {
            Ok(e) => parsed.events.push(e),
            Err(s) => parsed.skipped.push(s),
        }
    }
    Ok(parsed)
}

/// What the media type of a pushed target says.
enum Pushed {
    Manifest(PushKind),
    Blob,
    Other(String),
}

fn classify(media_type: Option<&str>) -> Pushed {
    match media_type {
        None | Some("") => Pushed::Manifest(PushKind::Unknown),
        Some(mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST) => Pushed::Manifest(PushKind::Index),
        Some(mt::OCI_MANIFEST | mt::DOCKER_MANIFEST | DOCKER_SCHEMA1_SIGNED | DOCKER_SCHEMA1) => {
            Pushed::Manifest(PushKind::Manifest)
        }
        Some(BLOB) => Pushed::Blob,
        Some(other) => Pushed::Other(quote(other)),
    }
}

/// One envelope entry: a push to scan, a skip, or an error that rejects the whole payload.
fn event(
    source: Source,
    i: usize,
    raw: RawEvent,
    hint: &RegistryHint,
) -> Result<Result<PushEvent, Skipped>, WebhookError> {
    let field = |name: &str| format!("events[{i}].{name}");
    let id = event_id(raw.id);
    let action = required(raw.action, || field("action"))?;
    let skip = |reason| {
        Ok(Err(Skipped {
            reason,
            id: id.clone(),
        }))
    };
    match action.as_str() {
        "push" => {}
        "pull" => {
            let method = raw
                .request
                .and_then(|r| present(r.method))
                .filter(|m| m.len() <= MAX_METHOD_LEN);
            return skip(SkipReason::Pull { method });
        }
        "mount" => return skip(SkipReason::Mount),
        "delete" => return skip(SkipReason::Delete),
        "rename" => return skip(SkipReason::Rename),
        other => {
            return skip(SkipReason::OtherEvent { kind: quote(other) });
        }
    }
    let target = raw.target.ok_or_else(|| WebhookError::MissingField {
        field: field("target"),
    })?;
    // Classify on the media type as sent: dropping an over-long one first would turn it into
    // "absent", which means "fetch and see".
    let kind = match classify(target.media_type.as_deref()) {
        Pushed::Manifest(kind) => kind,
        Pushed::Blob => return skip(SkipReason::BlobPush),
        Pushed::Other(media_type) => return skip(SkipReason::NotAManifest { media_type }),
    };
    let media_type = media_type(target.media_type);

    let repository = required(target.repository, || field("target.repository"))?;
    let tag = present(target.tag);
    let digest = present(target.digest);
    if tag.is_none() && digest.is_none() {
        return Err(WebhookError::MissingField {
            field: field("target.digest"),
        });
    }
    let request_host = raw.request.and_then(|r| present(r.host));
    let (host_field, host) = match (hint.get(), &request_host) {
        (Some(h), _) => ("registry host (configured)".to_string(), h.to_string()),
        (None, Some(h)) => (field("request.host"), h.clone()),
        (None, None) => {
            return Err(WebhookError::MissingField {
                field: field("request.host"),
            });
        }
    };
    let tag_field = field("target.tag");
    let digest_field = field("target.digest");
    let image = image_ref(
        Part::new(&host_field, &host),
        Part::new(&field("target.repository"), &repository),
        tag.as_deref().map(|t| Part::new(&tag_field, t)),
        digest.as_deref().map(|d| Part::new(&digest_field, d)),
    )?;
    Ok(Ok(PushEvent {
        id,
        source,
        image,
        media_type,
        kind,
        occurred_at: timestamp(raw.timestamp),
        actor: actor(raw.actor.and_then(|a| a.name)),
    }))
}
