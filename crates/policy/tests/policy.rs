//! gantry-policy integration tests: the shipped bundle, its rules over input fixtures,
//! fail-closed evaluation, the test runner and the documentation of every code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod policy {
    mod bundle;
    mod docs;
    mod fail_closed;
    mod rules;
    mod runner;
}
