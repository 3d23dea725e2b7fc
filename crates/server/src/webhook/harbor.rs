//! Harbor webhook policies, both payload formats.
//!
//! - **Default** (`payload_format` empty or `Default`, `Content-Type: application/json`):
//!   `{type, occur_at (Unix s), operator, event_data: {resources: [...], repository}}`.
//! - **CloudEvents** (Harbor ≥ 2.8, structured mode, `application/cloudevents+json`):
//!   `{specversion, id, type, time, operator, data: <the Default event_data>}`. Told apart from
//!   Default by the presence of `specversion`.
//!
//! `PUSH_ARTIFACT` / `harbor.artifact.pushed` yields one [`PushEvent`] per resource:
//!
//! - image: the [`RegistryHint`] host, else the host of `resources[].resource_url` (Harbor's
//!   `ext_endpoint`), then `repository.repo_full_name` (`project/name…`),
//!   `resources[].tag` and `resources[].digest`. Harbor fires for every manifest PUT, and a push
//!   by digest (index children, cosign signatures, SBOM accessories) reports the **digest as
//!   the tag**: such a tag is dropped;
//! - kind: [`PushKind::Unknown`] — Harbor sends no media type, so an index is only known once
//!   the manifest is fetched;
//! - id: the CloudEvents `id`; none in the Default format (dedupe falls back to the digest).
//!
//! Pulls, deletes, scan results, quota and replication events are [`Skipped`], one entry per
//! payload. Harbor signs nothing: authenticate with the policy's `auth_header`.

use serde::Deserialize;

use super::{
    Bounded, Parsed, Part, PushEvent, PushKind, RegistryHint, SkipReason, Skipped, Source,
    WebhookError, actor, decode, event_id, host_of_url, image_ref, indexed_id, present, quote,
    required, timestamp, unix_to_rfc3339,
};

/// Content types accepted: the Default format and CloudEvents structured mode.
pub const CONTENT_TYPES: &[&str] = &["application/json", "application/cloudevents+json"];

#[derive(Deserialize)]
struct RawPayload {
    #[serde(rename = "type")]
    kind: Option<String>,
    operator: Option<String>,
    // Default format.
    occur_at: Option<i64>,
    event_data: Option<RawEventData>,
    // CloudEvents format.
    specversion: Option<String>,
    id: Option<String>,
    time: Option<String>,
    data: Option<RawEventData>,
}

#[derive(Deserialize)]
struct RawEventData {
    resources: Option<Bounded<RawResource>>,
    repository: Option<RawRepository>,
}

#[derive(Deserialize)]
struct RawResource {
    digest: Option<String>,
    tag: Option<String>,
    resource_url: Option<String>,
}

#[derive(Deserialize)]
struct RawRepository {
    repo_full_name: Option<String>,
}

/// What the event type says, in either format's spelling.
enum Kind {
    Push,
    Skip(SkipReason),
}

fn kind_of(kind: &str) -> Kind {
    match kind {
        "PUSH_ARTIFACT" | "harbor.artifact.pushed" => Kind::Push,
        "PULL_ARTIFACT" | "harbor.artifact.pulled" => Kind::Skip(SkipReason::Pull { method: None }),
        "DELETE_ARTIFACT" | "harbor.artifact.deleted" => Kind::Skip(SkipReason::Delete),
        other => Kind::Skip(SkipReason::OtherEvent { kind: quote(other) }),
    }
}

/// Parses a Harbor webhook payload (Default or CloudEvents format).
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    hint: &RegistryHint,
) -> Result<Parsed, WebhookError> {
    let raw: RawPayload = decode(body, content_type, CONTENT_TYPES)?;
    let cloudevents = raw.specversion.is_some();
    let (data_field, data, id, occurred_at) = if cloudevents {
        ("data", raw.data, event_id(raw.id), timestamp(raw.time))
    } else {
        (
            "event_data",
            raw.event_data,
            None,
            raw.occur_at.and_then(unix_to_rfc3339),
        )
    };
    let kind = required(raw.kind, || "type".to_string())?;
    if let Kind::Skip(reason) = kind_of(&kind) {
        return Ok(Parsed {
            events: Vec::new(),
            skipped: vec![Skipped { reason, id }],
        });
    }

    let field = |name: &str| format!("{data_field}.{name}");
    let data = data.ok_or_else(|| WebhookError::MissingField {
        field: data_field.to_string(),
    })?;
    let resources = data
        .resources
        .ok_or_else(|| WebhookError::MissingField {
            field: field("resources"),
        })?
        .into_items()?;
    let repository = required(data.repository.and_then(|r| r.repo_full_name), || {
        field("repository.repo_full_name")
    })?;
    let repository_field = field("repository.repo_full_name");
    let actor = actor(raw.operator);
    let count = resources.len();

    let mut parsed = Parsed::default();
    for (i, resource) in resources.into_iter().enumerate() {
        let at = |name: &str| field(&format!("resources[{i}].{name}"));
        let digest = present(resource.digest);
        // A push by digest reports the digest as the tag.
        let tag = present(resource.tag).filter(|t| Some(t) != digest.as_ref());
        if tag.is_none() && digest.is_none() {
            return Err(WebhookError::MissingField {
                field: at("digest"),
            });
        }
        let url = present(resource.resource_url);
        let (host_field, host) = match (hint.get(), url.as_deref().and_then(host_of_url)) {
            (Some(h), _) => ("registry host (configured)".to_string(), h.to_string()),
            (None, Some(h)) => (at("resource_url"), h.to_string()),
            (None, None) => {
                return Err(WebhookError::MissingField {
                    field: at("resource_url"),
                });
            }
        };
        let (tag_field, digest_field) = (at("tag"), at("digest"));
        let image = image_ref(
            Part::new(&host_field, &host),
            Part::new(&repository_field, &repository),
            tag.as_deref().map(|t| Part::new(&tag_field, t)),
            digest.as_deref().map(|d| Part::new(&digest_field, d)),
        )?;
        parsed.events.push(PushEvent {
            id: indexed_id(id.as_deref(), i, count),
            source: Source::Harbor,
            image,
            media_type: None,
            kind: PushKind::Unknown,
            occurred_at: occurred_at.clone(),
            actor: actor.clone(),
        });
    }
    Ok(parsed)
}
