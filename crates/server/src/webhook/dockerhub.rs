//! Docker Hub repository webhooks.
//!
//! One trigger (a push), no event type, no id, no digest, no signature and no way to add a
//! header (docker/docs `docker-hub/repos/manage/webhooks.md`). The body is
//! `{push_data: {pushed_at, pusher, tag}, repository: {repo_name, …}, callback_url}`
//! (`callback_url` is legacy and unused).
//!
//! One [`PushEvent`]: `docker.io/<repo_name>:<tag>` with no digest and [`PushKind::Unknown`] —
//! the tag must be resolved against Docker Hub, and may have moved by then (docker/roadmap#440
//! asks for the digest). The id is synthesised as `<repo_name>:<tag>@<pushed_at>`, so a
//! redelivery of the same push de-duplicates and the next push of the same tag does not.

use serde::Deserialize;

use super::{
    DOCKER_HUB, Parsed, Part, PushEvent, PushKind, Source, WebhookError, actor, decode, image_ref,
    required, unix_to_rfc3339,
};

#[derive(Deserialize)]
struct RawPayload {
    push_data: Option<RawPushData>,
    repository: Option<RawRepository>,
}

#[derive(Deserialize)]
struct RawPushData {
    /// Unix seconds; an integer in the documented example, accepted as a float too.
    pushed_at: Option<serde_json::Number>,
    pusher: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct RawRepository {
    repo_name: Option<String>,
}

/// Parses a Docker Hub webhook payload. Docker Hub is always `docker.io`: there is no
/// [`RegistryHint`](super::RegistryHint) to give.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed, WebhookError> {
    let raw: RawPayload = decode(body, content_type, super::JSON_ONLY)?;
    let push = raw.push_data.ok_or_else(|| WebhookError::MissingField {
        field: "push_data".to_string(),
    })?;
    let repo_name = required(raw.repository.and_then(|r| r.repo_name), || {
        "repository.repo_name".to_string()
    })?;
    let tag = required(push.tag, || "push_data.tag".to_string())?;
    let image = image_ref(
        Part::new("docker hub", DOCKER_HUB),
        Part::new("repository.repo_name", &repo_name),
        Some(Part::new("push_data.tag", &tag)),
        None,
    )?;
    let pushed_at = push.pushed_at.as_ref().and_then(unix_seconds);
    Ok(Parsed {
        events: vec![PushEvent {
            id: pushed_at.map(|t| format!("{repo_name}:{tag}@{t}")),
            source: Source::DockerHub,
            image,
            media_type: None,
            kind: PushKind::Unknown,
            occurred_at: pushed_at.and_then(unix_to_rfc3339),
            actor: actor(push.pusher),
        }],
        skipped: Vec::new(),
    })
}

/// Whole Unix seconds from an integer or a finite float.
fn unix_seconds(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Casting a float to an integer saturates; the range check keeps it meaningful.
    (f.is_finite() && (0.0..9.0e15).contains(&f)).then(|| f.trunc() as i64)
}
