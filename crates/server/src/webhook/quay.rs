//! Quay repository-push notifications (`repo_push`, webhook method).
//!
//! The body is Quay's bare event data (quay/quay `notifications/__init__.py`
//! `build_repository_event_data`): `{repository: "ns/name", namespace, name,
//! docker_url: "<SERVER_HOSTNAME>/ns/name", homepage, updated_tags: [tag, …]}`. No id, no
//! digest, no timestamp, no signature, no custom headers. A notification with a user-defined
//! JSON template reshapes the body and is not this format.
//!
//! One [`PushEvent`] per entry of `updated_tags`: the [`RegistryHint`] host, else the host of
//! `docker_url`, then `repository` and the tag, with no digest and [`PushKind::Unknown`] —
//! resolve the tag. Quay sends `repo_push` only for tag writes: a manifest pushed by digest
//! (index children) produces nothing. An empty `updated_tags` is [`Skipped`]
//! ([`SkipReason::NoTags`]).

use serde::Deserialize;

use super::{
    Bounded, Parsed, Part, PushEvent, PushKind, RegistryHint, SkipReason, Skipped, Source,
    WebhookError, decode, host_of_url, image_ref, present, required,
};

#[derive(Deserialize)]
struct RawPayload {
    repository: Option<String>,
    docker_url: Option<String>,
    updated_tags: Option<Bounded<String>>,
}

/// Parses a Quay repository-push notification.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    hint: &RegistryHint,
) -> Result<Parsed, WebhookError> {
    let raw: RawPayload = decode(body, content_type, super::JSON_ONLY)?;
    let repository = required(raw.repository, || "repository".to_string())?;
    let tags = raw
        .updated_tags
        .ok_or_else(|| WebhookError::MissingField {
            field: "updated_tags".to_string(),
        })?
        .into_items()?;
    let docker_url = present(raw.docker_url);
    let (host_field, host) = match (hint.get(), docker_url.as_deref().and_then(host_of_url)) {
        (Some(h), _) => ("registry host (configured)", h),
        (None, Some(h)) => ("docker_url", h),
        (None, None) => {
            return Err(WebhookError::MissingField {
                field: "docker_url".to_string(),
            });
        }
    };
    let mut parsed = Parsed::default();
    if tags.is_empty() {
        parsed.skipped.push(Skipped {
            reason: SkipReason::NoTags,
            id: None,
        });
    }
    for (i, tag) in tags.iter().enumerate() {
        let tag_field = format!("updated_tags[{i}]");
        let image = image_ref(
            Part::new(host_field, host),
            Part::new("repository", &repository),
            Some(Part::new(&tag_field, tag)),
            None,
        )?;
        parsed.events.push(PushEvent {
            id: None,
            source: Source::Quay,
            image,
            media_type: None,
            kind: PushKind::Unknown,
            occurred_at: None,
            actor: None,
        });
    }
    Ok(parsed)
}
