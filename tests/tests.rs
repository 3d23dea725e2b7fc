//! End-to-end tests of the `gantry` binary: real images from gantry-testkit, a real registry,
//! the real binary. One test binary (ripgrep's layout); each module is one area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

// Shared helpers: running the binary, the demo image recipe.
mod util;

// `gantry inspect` on local sources: OCI layout, oci-archive, docker-archive; output formats.
mod inspect;
// `gantry inspect` against Debian's docker-registry: tags, digests, indexes, auth.
mod registry;
// Bad input: hostile layers, wrong digests, broken registries — exit code 2 and a clear message.
mod hostile;
// The per-layer cache: hits across images and restarts, corrupt entries.
mod cache;
// `gantry scan`: verdicts, codes and locations for the issue-3 proof images; output formats.
mod scan;
// `gantry policy test`: the shipped policy tests, a user's bundle.
mod policy;
// `gantry sbom` / `scan --sbom`: CycloneDX validity, determinism, exactness against dpkg, pip, npm.
mod sbom;
// gantry serve: registry notifications, API, crash/restart, burst, Postgres replicas.
mod serve;
// Issue 11: hostile images cost a bounded amount and fail for good; no secret kept in clear.
mod bounded;
// The Kubernetes admission webhook over HTTPS: every workload kind, modes, budget, bad reviews.
mod admission;
// `gantry cert`: the admission webhook's CA, serving certificate and caBundle patch, checked with OpenSSL.
mod cert;
// Gantry's own image (gantry-imagebuild): reproducible, runs from its rootfs, allowed by Gantry, pushed.
mod image;
// deploy/kubernetes: every overlay builds and is accepted by kubectl; the webhook's and pod's properties.
mod kubernetes;
