//! gantry-server integration tests. Today: webhook intake, fed every real payload we have and
//! a good deal of hostile input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod webhook {
    /// Caller authentication: tokens, headers, HMAC signatures.
    mod auth;
    /// Deterministic mutations of every payload file through every parser.
    mod fuzz;
    /// Malformed, oversized and malicious bodies: clear errors, never a panic.
    mod hostile;
    /// Every payload file of a supported sender → the exact events and skips.
    mod payloads;
    /// The Distribution captures, recorded again from the harness registry: same shapes.
    mod recorded;
    /// Shared helpers: payload files, content types.
    mod util;
}
