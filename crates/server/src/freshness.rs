//! Base freshness: does the tag an image's base was built from still point at the base the
//! image records? When it moved, the base was replaced (usually with fixes) after the image
//! was built, and the image should be rebuilt. Each check is one manifest request to the
//! base's registry, under the same egress policy and credentials as every pull (only
//! `[registry] allow`ed registries, Gantry's own credentials only: a base is not a tenant's
//! private pull), and a round checks at most `[base_freshness] max_checks` tags.

use std::str::FromStr;

use gantry_model::ImageRef;
use gantry_model::oci::DocumentKind;
use gantry_registry::{RegistryError, SourceRef};
use gantry_store::{BaseCheck, StoreError};

use crate::app::App;
use crate::judge::now_ms;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Tags checked (resolved or not).
    pub checked: usize,
    /// Of them, those that could not be resolved.
    pub failed: usize,
    /// Stored images whose freshness changed (their verdicts are due again).
    pub changed: usize,
}

/// Checks the base tags that are due (not checked for `[base_freshness] interval`), at most
/// `max_checks` of them, and records what each points at. Nothing when checks are off.
pub async fn check_due(app: &App) -> Result<Round, StoreError> {
    let Some(settings) = app.settings.base_freshness else {
        return Ok(Round::default());
    };
    let interval = i64::try_from(settings.interval.as_millis()).unwrap_or(i64::MAX);
    let due = app
        .store
        .base_references_due(now_ms().saturating_sub(interval), settings.max_checks)
        .await?;
    let mut round = Round::default();
    for reference in due {
        if app.is_draining() {
            break;
        }
        let check = match resolve(app, &reference).await {
            Ok(check) => check,
            Err(e) => {
                tracing::warn!(base = %reference, error = %crate::error_chain(&e), "cannot check the base image's tag");
                round.failed += 1;
                BaseCheck::Failed {
                    error: e.to_string(),
                }
            }
        };
        app.metrics.base_check(match &check {
            BaseCheck::Failed { .. } => "failed",
            BaseCheck::Resolved { .. } => "resolved",
        });
        let changed = app.store.record_base_check(&reference, &check).await?;
        for digest in &changed {
            tracing::info!(base = %reference, digest = %digest, "base image freshness changed; the image is judged again");
        }
        round.checked += 1;
        round.changed += changed.len();
    }
    Ok(round)
}

/// What `reference` (`repository:tag`) points at now: the root digest, and for an index the
/// digests of its manifests (an image records the manifest of its platform, or the index).
async fn resolve(app: &App, reference: &str) -> Result<BaseCheck, RegistryError> {
    let parsed = ImageRef::from_str(reference).map_err(|e| RegistryError::InvalidSource {
        input: reference.to_string(),
        reason: "the recorded base is not an image reference".to_string(),
        source: Some(e),
    })?;
    let options = app.settings.registry.options_for(parsed.registry());
    let source = gantry_registry::open(&SourceRef::Registry(parsed), &options).await?;
    let root = source.root().await?;
    let mut digests = Vec::new();
    if root.kind == DocumentKind::Index
        && let Some(index) = &root.index
    {
        digests.extend(index.manifests.iter().map(|m| m.digest.to_string()));
    }
    Ok(BaseCheck::Resolved {
        root: root.digest.to_string(),
        digests,
    })
}
