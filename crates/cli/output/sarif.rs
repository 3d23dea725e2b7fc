//! SARIF 2.1.0 for `gantry scan --format sarif`, shaped for GitHub code scanning: every result
//! has a physical location (GitHub rejects results without one — Dockle's SARIF fails upload
//! for exactly that reason), a stable rule id (the finding code) and a fingerprint.

use std::collections::BTreeMap;

use gantry_model::{Finding, Severity, Verdict};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Deny => "error",
        Severity::Warn => "warning",
    }
}

/// The artifact a finding points at: the file path in the image, else the image itself
/// (config and manifest findings), named by its repository as Trivy does.
fn artifact_uri(finding: &Finding, image_name: &str) -> String {
    finding
        .location
        .as_ref()
        .and_then(|l| l.path.clone())
        .unwrap_or_else(|| image_name.to_string())
}

fn result(finding: &Finding, image_name: &str, image_digest: &str) -> Value {
    let loc = finding.location.clone().unwrap_or_default();
    let mut logical = Vec::new();
    if let Some(layer) = &loc.layer {
        let name = match loc.layer_index {
            Some(i) => format!("layer {i} {layer}"),
            None => layer.clone(),
        };
        logical.push(json!({"name": name, "kind": "module"}));
    }
    if let Some(field) = &loc.field {
        logical.push(json!({"name": field, "kind": "member"}));
    }
    let mut location = json!({
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(finding, image_name)},
            "region": {"startLine": 1}
        }
    });
    if !logical.is_empty() {
        location["logicalLocations"] = Value::Array(logical);
    }
    let fingerprint = Sha256::digest(
        format!(
            "{}|{}|{:?}|{:?}|{:?}",
            image_digest, finding.code, loc.layer, loc.path, loc.field
        )
        .as_bytes(),
    );
    json!({
        "ruleId": finding.code,
        "level": level(finding.severity),
        "message": {"text": finding.message},
        "locations": [location],
        "partialFingerprints": {"gantryFinding/v1": hex::encode(fingerprint)},
    })
}

/// Renders a verdict as a SARIF log with one run.
pub fn sarif(verdict: &Verdict, image_name: &str, image_digest: &str) -> Value {
    let findings: Vec<&Finding> = verdict.violations.iter().chain(&verdict.warnings).collect();
    let mut rules: BTreeMap<&str, Severity> = BTreeMap::new();
    for f in &findings {
        let e = rules.entry(f.code.as_str()).or_insert(f.severity);
        if f.severity == Severity::Deny {
            *e = Severity::Deny;
        }
    }
    let rules: Vec<Value> = rules
        .iter()
        .map(|(code, severity)| {
            json!({
                "id": code,
                "name": code,
                "shortDescription": {"text": code},
                "help": {"text": format!("See docs/checks.md, section {code}.")},
                "defaultConfiguration": {"level": level(*severity)},
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gantry",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": findings.iter().map(|f| result(f, image_name, image_digest)).collect::<Vec<_>>(),
            "properties": {"imageDigest": image_digest, "decision": verdict.decision, "policyDigest": verdict.policy_digest},
        }],
    })
}

#[cfg(test)]
mod tests {
    use gantry_model::{Decision, Location};

    use super::*;

    #[test]
    fn every_result_has_a_physical_location() {
        let f = |code: &str, path: Option<&str>| Finding {
            code: code.into(),
            severity: Severity::Deny,
            message: "m".into(),
            location: Some(Location {
                path: path.map(Into::into),
                field: path.is_none().then(|| "config.User".into()),
                ..Location::default()
            }),
        };
        let v = Verdict {
            decision: Decision::Deny,
            violations: vec![
                f("root-user", None),
                f("build-toolchain", Some("usr/bin/gcc")),
            ],
            warnings: vec![],
            waived: vec![],
            policy_digest: "sha256:p".into(),
        };
        let log = sarif(&v, "registry.example/app", "sha256:d");
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for r in results {
            assert!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
        }
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "registry.example/app"
        );
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "usr/bin/gcc"
        );
        assert_eq!(
            log["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
