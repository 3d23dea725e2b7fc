//! The generic endpoint, for CI jobs, scripts and registries Gantry has no parser for.
//!
//! `{"image": "ref"}`, `{"images": ["ref", …]}`, or both (the single image first), with an
//! optional `"id"` for de-duplicating retries. References are normalised as Docker normalises
//! them (`alpine` → `docker.io/library/alpine:latest`); a reference with a digest schedules
//! that digest, one without is resolved by tag. Kind is always [`PushKind::Unknown`]. No
//! [`RegistryHint`](super::RegistryHint): each reference names its own registry.

use serde::Deserialize;

use super::{
    Bounded, Parsed, Part, PushEvent, PushKind, Source, WebhookError, decode, event_id,
    full_reference, indexed_id, present,
};

#[derive(Deserialize)]
struct RawPayload {
    id: Option<String>,
    image: Option<String>,
    images: Option<Bounded<String>>,
}

/// Parses a generic `{"image": …}` / `{"images": […]}` payload.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed, WebhookError> {
    let raw: RawPayload = decode(body, content_type, super::JSON_ONLY)?;
    let image = present(raw.image);
    let images = match raw.images {
        Some(list) => list.into_items()?,
        None => Vec::new(),
    };
    if image.is_none() && images.is_empty() {
        return Err(WebhookError::MissingField {
            field: "image".to_string(),
        });
    }
    if image.is_some() && images.len() >= super::MAX_EVENTS_PER_PAYLOAD {
        return Err(WebhookError::TooManyEvents {
            limit: super::MAX_EVENTS_PER_PAYLOAD,
        });
    }
    let id = event_id(raw.id);
    let refs: Vec<(String, String)> = image
        .map(|r| ("image".to_string(), r))
        .into_iter()
        .chain(
            images
                .into_iter()
                .enumerate()
                .map(|(i, r)| (format!("images[{i}]"), r)),
        )
        .collect();
    let count = refs.len();
    let mut parsed = Parsed::default();
    for (i, (field, reference)) in refs.iter().enumerate() {
        parsed.events.push(PushEvent {
            id: indexed_id(id.as_deref(), i, count),
            source: Source::Generic,
            image: full_reference(Part::new(field, reference))?,
            media_type: None,
            kind: PushKind::Unknown,
            occurred_at: None,
            actor: None,
        });
    }
    Ok(parsed)
}
