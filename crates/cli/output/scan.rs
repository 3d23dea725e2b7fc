//! `gantry scan` as a table: the verdict first, then every finding with its evidence.

use std::fmt::Write as _;

use gantry_model::{Decision, Finding, Location, Verdict};

/// Where a finding's evidence is, for humans: `layer 2 (sha256:0123456789ab) usr/bin/gcc`,
/// `config.User`, or both.
pub fn location(loc: &Location) -> String {
    let mut parts = Vec::new();
    if let Some(layer) = &loc.layer {
        let short = layer
            .split_once(':')
            .map_or(layer.as_str(), |(_, h)| h.get(..12).unwrap_or(h));
        match loc.layer_index {
            Some(i) => parts.push(format!("layer {i} ({short})")),
            None => parts.push(format!("blob {short}")),
        }
    }
    if let Some(path) = &loc.path {
        parts.push(format!("/{path}"));
    }
    if let Some(field) = &loc.field {
        parts.push(field.clone());
    }
    parts.join(" ")
}

fn section(s: &mut String, title: &str, findings: &[&Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{title}");
    let width = findings.iter().map(|f| f.code.len()).max().unwrap_or(0);
    for f in findings {
        let _ = writeln!(s, "  {:<width$}  {}", f.code, f.message);
        if let Some(loc) = f.location.as_ref().filter(|l| **l != Location::default()) {
            let _ = writeln!(s, "  {:<width$}  at {}", "", location(loc));
        }
    }
}

/// The human-readable form of `gantry scan`.
pub fn scan_table(source: &str, digest: &str, platform: &str, verdict: &Verdict) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Image     {source}");
    let _ = writeln!(s, "Digest    {digest}");
    let _ = writeln!(s, "Platform  {platform}");
    let decision = match verdict.decision {
        Decision::Allow => "ALLOW",
        Decision::Deny => "DENY",
    };
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let _ = writeln!(
        s,
        "Verdict   {decision} ({}, {}{})",
        plural(verdict.violations.len(), "violation"),
        plural(verdict.warnings.len(), "warning"),
        if verdict.waived.is_empty() {
            String::new()
        } else {
            format!(", {} waived", verdict.waived.len())
        }
    );
    section(
        &mut s,
        "Violations",
        &verdict.violations.iter().collect::<Vec<_>>(),
    );
    section(
        &mut s,
        "Warnings",
        &verdict.warnings.iter().collect::<Vec<_>>(),
    );
    if !verdict.waived.is_empty() {
        let _ = writeln!(s, "\nWaived");
        for w in &verdict.waived {
            let _ = writeln!(
                s,
                "  {}  {} (until {}: {})",
                w.finding.code, w.finding.message, w.expires, w.reason
            );
        }
    }
    let _ = writeln!(s, "\nPolicy    {}", verdict.policy_digest);
    s
}

#[cfg(test)]
mod tests {
    use gantry_model::Severity;

    use super::*;

    #[test]
    fn formats_locations() {
        let loc = Location {
            layer: Some("sha256:0123456789abcdef0123".into()),
            layer_index: Some(2),
            path: Some("usr/bin/gcc".into()),
            field: None,
        };
        assert_eq!(location(&loc), "layer 2 (0123456789ab) /usr/bin/gcc");
        let cfg = Location {
            field: Some("config.User".into()),
            ..Location::default()
        };
        assert_eq!(location(&cfg), "config.User");
    }

    #[test]
    fn table_lists_violations_with_evidence() {
        let verdict = Verdict {
            decision: Decision::Deny,
            violations: vec![Finding {
                code: "root-user".into(),
                severity: Severity::Deny,
                message: "USER is not set: runs as root".into(),
                location: Some(Location {
                    field: Some("config.User".into()),
                    ..Location::default()
                }),
            }],
            warnings: vec![],
            waived: vec![],
            policy_digest: "sha256:p".into(),
        };
        let t = scan_table("oci:x", "sha256:d", "linux/amd64", &verdict);
        assert!(
            t.contains("Verdict   DENY (1 violation, 0 warnings)"),
            "{t}"
        );
        assert!(
            t.contains("  root-user  USER is not set: runs as root\n             at config.User"),
            "{t}"
        );
    }
}
