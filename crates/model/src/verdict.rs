//! What policy evaluation decides: a verdict with findings that point at evidence.

use serde::{Deserialize, Serialize};

/// Where a finding's evidence is: a file in a layer, a config field, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Layer blob digest (`sha256:…`) holding the evidence, when it is in a layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Index of that layer in the manifest (0 = base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_index: Option<u64>,
    /// Path inside the layer (no leading `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Image config field, e.g. `config.User`, `config.Env`, `history[3]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Makes the verdict `deny`.
    Deny,
    /// Reported, does not change the decision.
    Warn,
}

/// One result of one policy rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Finding {
    /// Stable kebab-case code, e.g. `root-user`; documented in docs/checks.md.
    pub code: String,
    /// Deny or warn.
    pub severity: Severity,
    /// One sentence for a human.
    pub message: String,
    /// Where the evidence is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A finding that an exception in the policy data waived.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Waived {
    /// The finding that would have counted.
    pub finding: Finding,
    /// The exception's reason, as written in the data.
    pub reason: String,
    /// When the exception expires (RFC 3339 date or time).
    pub expires: String,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// No violation.
    Allow,
    /// At least one violation (or the policy could not be evaluated: fail closed).
    Deny,
}

/// The outcome of evaluating a policy bundle over one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Allow or deny.
    pub decision: Decision,
    /// Findings that make the verdict `deny`, sorted.
    pub violations: Vec<Finding>,
    /// Findings that are reported but do not deny, sorted.
    pub warnings: Vec<Finding>,
    /// Findings an unexpired exception waived, sorted.
    #[serde(default)]
    pub waived: Vec<Waived>,
    /// Digest of the policy bundle (modules and data) that decided.
    pub policy_digest: String,
}
