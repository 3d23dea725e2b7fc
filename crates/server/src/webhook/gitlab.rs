//! GitLab container registry notifications.
//!
//! GitLab has no project-level "registry push" webhook (gitlab-org/gitlab#15385); a self-managed
//! admin points the registry's own notifications (`registry['notifications']` in `gitlab.rb`)
//! at Gantry. GitLab.com does not let users configure them. The registry is a Distribution
//! fork, so the envelope, fields and rules are [`distribution`]'s, with
//! these differences (gitlab-org/container-registry `docs/spec/gitlab/notifications.md`):
//!
//! - `action: rename` with `target.rename{type, from, to}` → [`SkipReason::Rename`](super::SkipReason::Rename);
//! - `actor.user_type` (`deploy_token`, `personal_access_token`, `build`, …) — [`PushEvent::actor`](super::PushEvent::actor)
//!   keeps `actor.name` only;
//! - `meta.blob{redirected, storageBackend}` on blob pulls — ignored;
//! - the envelope media type stays `…events.v1+json`; its fork adds delivery settings
//!   (`maxretries`, `queuesizelimit`: a full queue *drops* events) that change nothing here.

use super::{Parsed, RegistryHint, Source, WebhookError, distribution};

/// Parses a GitLab container registry notification envelope.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    hint: &RegistryHint,
) -> Result<Parsed, WebhookError> {
    distribution::parse_as(Source::Gitlab, body, content_type, hint)
}
