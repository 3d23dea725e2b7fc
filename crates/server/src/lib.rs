//! gantry-server: the long-running Gantry service (`gantry serve`).
//!
//! The server will grow an HTTP layer (webhook and API routers, admin port with health and
//! metrics), durable scan workers over the store's job queue, and Kubernetes admission. Today
//! it holds the first step of that path, **webhook intake**: turning what registries POST into
//! validated push events, and authenticating who POSTs it — all pure functions over bytes and
//! headers, tested without a socket.
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

pub mod webhook;
