//! gantry-server: the long-running Gantry service (`gantry serve`).
//!
//! Data flow: a registry POSTs to `/webhooks/<sender>` ([`intake`]) → the body is
//! authenticated and parsed into push events ([`webhook`]) → one durable job per event in the
//! store (202 after it is stored) → [`worker`]s claim jobs with a lease, scan and judge the
//! image through gantry-gate ([`judge`]), store verdict, report and SBOM, and queue a
//! notification ([`notify`]) → the [`api`] serves verdicts, reports, SBOMs and jobs, and
//! `POST /v1/scan` answers within a budget → [`admin`] serves health, readiness and
//! metrics ([`metrics`]) on a port of its own. [`config`] reads the TOML/YAML configuration;
//! [`serve::run`] wires it together and drains on shutdown.
//!
//! The intake layer is pure functions over bytes and headers, tested without a socket:
//!
//! - [`webhook::parse`] (and one module per sender: [`webhook::distribution`],
//!   [`webhook::harbor`], [`webhook::dockerhub`], [`webhook::gitlab`], [`webhook::quay`],
//!   [`webhook::generic`]) → [`webhook::Parsed`]: [`webhook::PushEvent`]s to scan, and what was
//!   skipped and why (blob pushes, pulls, deletes, …).
//! - [`webhook::WebhookError`]: why a body was rejected, with a stable code and HTTP status.
//! - [`webhook::auth::WebhookAuth`]: bearer token, shared-secret header or HMAC-SHA256,
//!   compared in constant time.
//! - [`webhook::MAX_WEBHOOK_BODY_BYTES`], [`webhook::MAX_EVENTS_PER_PAYLOAD`]: the intake limits.
//!
//! ```
//! use gantry_server::webhook::{self, PushKind, RegistryHint, Source};
//!
//! let body = br#"{"events": [{
//!     "id": "846390b5-33f2-4850-adca-15cb0160db55",
//!     "action": "push",
//!     "target": {
//!         "mediaType": "application/vnd.oci.image.index.v1+json",
//!         "digest": "sha256:658a413d7dabf291bea8f257522990c82edd956d8944acc7ebaf562bd9baed3d",
//!         "repository": "team/app",
//!         "tag": "v2"
//!     },
//!     "request": {"host": "10.0.0.5:5000", "method": "PUT"}
//! }]}"#;
//! let hint = RegistryHint::host("registry.example.com")?;
//! let parsed = webhook::parse(
//!     Source::Distribution,
//!     body,
//!     Some("application/vnd.docker.distribution.events.v1+json"),
//!     &hint,
//! )?;
//! let push = &parsed.events[0];
//! assert_eq!(push.kind(), PushKind::Index);
//! assert_eq!(
//!     push.image().to_string(),
//!     "registry.example.com/team/app:v2@sha256:658a413d7dabf291bea8f257522990c82edd956d8944acc7ebaf562bd9baed3d"
//! );
//! # Ok::<(), webhook::WebhookError>(())
//! ```

pub mod admin;
pub mod admission;
pub mod api;
pub mod app;
pub mod config;
pub mod freshness;
#[doc(hidden)]
pub mod fuzzing;
pub mod intake;
pub mod judge;
pub mod listener;
pub mod lookup;
pub mod metrics;
pub mod notify;
pub mod serve;
pub mod tls;
pub mod webhook;
pub mod worker;

pub use config::{ConfigError, ServeConfig, Settings};
pub use serve::{ServeError, run};

/// `error: cause: cause`, for `last_error`, logs and answers to callers who may see it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
