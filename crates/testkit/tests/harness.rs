//! gantry-testkit's own tests: local formats are structurally right, and images really reach
//! (and come back from) Debian's docker-registry, with and without auth.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "harness/local.rs"]
mod local;
#[path = "harness/registry.rs"]
mod registry;
