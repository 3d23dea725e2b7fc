//! Strict reading of the verdict document a bundle returns.
//!
//! The verdict decides whether an image runs, so its shape is checked member by member
//! rather than trusted to serde defaults: an unknown member, a finding in the wrong list, a
//! code that is not kebab-case or a decision that contradicts the violations is a
//! [`PolicyError::BadOutput`], which `Policy::evaluate` turns into a deny.

use gantry_model::{Decision, Finding, Location, Severity, Verdict, Waived};
use serde_json::{Map, Value};

use crate::PolicyError;

/// Parses and validates `data.gantry.verdict`, sorting every list.
pub(crate) fn parse_verdict(value: Value, policy_digest: &str) -> Result<Verdict, PolicyError> {
    let obj = object(&value, "the verdict")?;
    only_keys(
        obj,
        &["decision", "violations", "warnings", "waived"],
        "the verdict",
    )?;
    let decision = match obj.get("decision") {
        Some(Value::String(s)) if s == "allow" => Decision::Allow,
        Some(Value::String(s)) if s == "deny" => Decision::Deny,
        other => {
            return Err(bad(format!(
                "decision must be \"allow\" or \"deny\", not {}",
                show(other)
            )));
        }
    };
    let mut violations = findings(obj.get("violations"), "violations", Some(Severity::Deny))?;
    let mut warnings = findings(obj.get("warnings"), "warnings", Some(Severity::Warn))?;
    let mut waived = match obj.get("waived") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, w)| waiver(w, &format!("waived[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(bad(format!("waived must be a list, not {other}"))),
    };
    match (decision, violations.is_empty()) {
        (Decision::Allow, false) => {
            return Err(bad(format!(
                "decision is allow but there are {} violations",
                violations.len()
            )));
        }
        (Decision::Deny, true) => {
            return Err(bad("decision is deny but no violation says why".to_string()));
        }
        _ => {}
    }
    violations.sort();
    violations.dedup();
    warnings.sort();
    warnings.dedup();
    waived.sort();
    waived.dedup();
    Ok(Verdict {
        decision,
        violations,
        warnings,
        waived,
        policy_digest: policy_digest.to_string(),
    })
}

fn findings(
    value: Option<&Value>,
    list: &str,
    severity: Option<Severity>,
) -> Result<Vec<Finding>, PolicyError> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, f)| finding(f, &format!("{list}[{i}]"), severity))
            .collect(),
        other => Err(bad(format!("{list} must be a list, not {}", show(other)))),
    }
}

/// One finding; `expected` is the severity its list requires (None: either).
fn finding(value: &Value, at: &str, expected: Option<Severity>) -> Result<Finding, PolicyError> {
    let obj = object(value, at)?;
    only_keys(obj, &["code", "severity", "message", "location"], at)?;
    let code = match obj.get("code") {
        Some(Value::String(c)) if is_kebab_case(c) => c.clone(),
        other => {
            return Err(bad(format!(
                "{at}.code must be a kebab-case string, not {}",
                show(other)
            )));
        }
    };
    let severity = match obj.get("severity") {
        Some(Value::String(s)) if s == "deny" => Severity::Deny,
        Some(Value::String(s)) if s == "warn" => Severity::Warn,
        other => {
            return Err(bad(format!(
                "{at}.severity must be \"deny\" or \"warn\", not {}",
                show(other)
            )));
        }
    };
    if let Some(expected) = expected
        && severity != expected
    {
        return Err(bad(format!(
            "{at} ({code}) has severity {severity:?} in a list of {expected:?} findings"
        )));
    }
    let message = match obj.get("message") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        other => {
            return Err(bad(format!(
                "{at}.message must be a non-empty string, not {}",
                show(other)
            )));
        }
    };
    let location = match obj.get("location") {
        None | Some(Value::Null) => None,
        Some(loc) => location(loc, &format!("{at}.location"))?,
    };
    Ok(Finding {
        code,
        severity,
        message,
        location,
    })
}

/// A location; an empty one is no location.
fn location(value: &Value, at: &str) -> Result<Option<Location>, PolicyError> {
    let obj = object(value, at)?;
    only_keys(obj, &["layer", "layer_index", "path", "field"], at)?;
    let string = |key: &str| -> Result<Option<String>, PolicyError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!("{at}.{key} must be a string, not {other}"))),
        }
    };
    let layer_index = match obj.get("layer_index") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            bad(format!(
                "{at}.layer_index must be a non-negative integer, not {n}"
            ))
        })?),
        Some(other) => {
            return Err(bad(format!(
                "{at}.layer_index must be a non-negative integer, not {other}"
            )));
        }
    };
    let loc = Location {
        layer: string("layer")?,
        layer_index,
        path: string("path")?,
        field: string("field")?,
    };
    Ok((loc != Location::default()).then_some(loc))
}

fn waiver(value: &Value, at: &str) -> Result<Waived, PolicyError> {
    let obj = object(value, at)?;
    only_keys(obj, &["finding", "reason", "expires"], at)?;
    let finding = finding(
        obj.get("finding").unwrap_or(&Value::Null),
        &format!("{at}.finding"),
        None,
    )?;
    let text = |key: &str| -> Result<String, PolicyError> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            other => Err(bad(format!(
                "{at}.{key} must be a non-empty string, not {}",
                show(other)
            ))),
        }
    };
    Ok(Waived {
        finding,
        reason: text("reason")?,
        expires: text("expires")?,
    })
}

/// `root-user`, `build-toolchain`: lowercase ASCII words joined by single hyphens.
pub fn is_kebab_case(code: &str) -> bool {
    !code.is_empty()
        && code.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, PolicyError> {
    value
        .as_object()
        .ok_or_else(|| bad(format!("{at} must be an object, not {value}")))
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), PolicyError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "{at} has an unknown member {k:?} (allowed: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_string(), Value::to_string)
}

fn bad(reason: String) -> PolicyError {
    PolicyError::BadOutput { reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Verdict, PolicyError> {
        parse_verdict(v, "sha256:x")
    }

    #[test]
    fn accepts_a_well_formed_verdict_and_sorts_it() {
        let v = parse(json!({
            "decision": "deny",
            "violations": [
                {"code": "b-code", "severity": "deny", "message": "b"},
                {"code": "a-code", "severity": "deny", "message": "a", "location": {"path": "x", "layer_index": 1}}
            ],
            "warnings": [],
            "waived": [{"finding": {"code": "c", "severity": "warn", "message": "c"}, "reason": "r", "expires": "2027-01-01"}]
        }))
        .unwrap();
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.violations[0].code, "a-code");
        assert_eq!(
            v.violations[0].location.as_ref().unwrap().layer_index,
            Some(1)
        );
        assert_eq!(v.waived.len(), 1);
    }

    #[test]
    fn rejects_wrong_shapes() {
        let cases = [
            json!({"decision": "maybe", "violations": [], "warnings": []}),
            json!({"decision": "allow", "violations": [], "warnings": [], "extra": 1}),
            json!({"decision": "allow", "violations": [{"code": "x", "severity": "deny", "message": "m"}], "warnings": []}),
            json!({"decision": "deny", "violations": [], "warnings": []}),
            json!({"decision": "deny", "violations": [{"code": "Root_User", "severity": "deny", "message": "m"}], "warnings": []}),
            json!({"decision": "allow", "violations": [], "warnings": [{"code": "x", "severity": "deny", "message": "m"}]}),
            json!({"decision": "allow", "violations": [], "warnings": [{"code": "x", "severity": "warn", "message": ""}]}),
            json!({"decision": "allow", "violations": [], "warnings": [{"code": "x", "severity": "warn", "message": "m", "location": {"layer_index": -1}}]}),
            json!({"decision": "allow", "violations": [], "warnings": [{"code": "x", "severity": "warn", "message": "m", "location": {"line": 3}}]}),
            json!({"decision": "allow", "violations": [], "warnings": [], "waived": [{"finding": {"code": "x", "severity": "warn", "message": "m"}, "reason": ""}]}),
            json!({"decision": "allow", "violations": {}, "warnings": []}),
            json!([1]),
        ];
        for case in cases {
            assert!(
                matches!(parse(case.clone()), Err(PolicyError::BadOutput { .. })),
                "accepted {case}"
            );
        }
    }

    #[test]
    fn kebab_case() {
        for ok in ["root-user", "a", "x2-y"] {
            assert!(is_kebab_case(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a b"] {
            assert!(!is_kebab_case(bad), "{bad}");
        }
    }
}
