//! gantry-policy: decide allow or deny for an image with a Rego policy bundle.
//!
//! A [`PolicyBundle`] is Rego modules plus JSON data: the built-in bundle (the workspace's
//! `policies/`, embedded at build time) or a directory, with data overrides merged in. A
//! [`Policy`] is that bundle compiled once by [regorus](https://github.com/microsoft/regorus);
//! it is `Send + Sync`, cheap to clone, and evaluates the policy input document
//! (docs/policies/input.md) into a typed [`Verdict`](gantry_model::Verdict) whose
//! `policy_digest` is the bundle's [`digest`](PolicyBundle::digest).
//!
//! Evaluation **fails closed**: an evaluation error, a time-out
//! ([`PolicyLimits::eval_timeout`]) or a verdict of the wrong shape becomes a `deny` with a
//! `policy-error` violation that says what failed ([`Policy::evaluate`]);
//! [`Policy::evaluate_checked`] returns the [`PolicyError`] instead.
//!
//! [`run_tests`] runs a bundle's `test_*` rules, as `opa test` does (`gantry policy test`).
//!
//! ```
//! use gantry_policy::{Policy, PolicyBundle, PolicyLimits};
//! use gantry_model::Decision;
//!
//! let bundle = PolicyBundle::builtin()?;
//! let policy = Policy::compile(&bundle, &PolicyLimits::default())?;
//! // An input with no USER: the image runs as root.
//! let input = serde_json::json!({"version": 1, "config": {"user": ""}});
//! let verdict = policy.evaluate(&input);
//! assert_eq!(verdict.decision, Decision::Deny);
//! assert!(verdict.violations.iter().any(|f| f.code == "root-user"));
//! # Ok::<(), gantry_policy::PolicyError>(())
//! ```

mod builtins;
mod bundle;
mod error;
mod output;
mod policy;
mod testing;

pub use bundle::{MAX_FILE_BYTES, Module, PolicyBundle};
pub use error::PolicyError;
pub use output::is_kebab_case;
pub use policy::{ENTRYPOINT, POLICY_ERROR_CODE, Policy, PolicyLimits, error_verdict};
pub use testing::{TestOutcome, TestReport, TestResult, run_tests};
