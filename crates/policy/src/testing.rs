//! `gantry policy test`: runs every `test_*` rule of a bundle, as `opa test` does.
//!
//! regorus has `with` but no test runner, so Gantry ships one. Discovery: every module of the
//! bundle (test modules and policy modules) is scanned for rule heads named `test_*`; each
//! candidate is confirmed with regorus (`has_declared_rule_rooted_at`), so a `test_` word in
//! a comment or string is never run. Each test is evaluated on its own, with the same time
//! limit as a verdict; it passes when it is defined and not `false` (OPA's rule), and fails
//! with the reason otherwise: `false`, undefined (a condition did not hold), or the error.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Stage, from_regorus};
use crate::policy::{add_data, new_engine};
use crate::{PolicyBundle, PolicyError, PolicyLimits};

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum TestOutcome {
    /// Defined and not false.
    Pass,
    /// False, undefined or an error.
    Fail {
        /// Why, on one line.
        reason: String,
    },
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// Full rule path, e.g. `data.gantry_test.non_root.test_root_denied`.
    pub name: String,
    /// The module that declares it.
    pub file: String,
    /// Pass or fail.
    #[serde(flatten)]
    pub outcome: TestOutcome,
    /// Wall-clock time of the evaluation (`duration_ms` in JSON).
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// What the test printed (`print(…)`), kept for failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prints: Vec<String>,
}

impl TestResult {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.outcome == TestOutcome::Pass
    }
}

/// Every test of a bundle, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// Where the bundle came from.
    pub bundle: String,
    /// Results, sorted by name.
    pub tests: Vec<TestResult>,
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
}

impl TestReport {
    /// True when no test failed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// Readable report: with `verbose`, every test with its time; otherwise the failures
    /// only. Always ends with the summary line `N passed, M failed`.
    pub fn render(&self, verbose: bool) -> String {
        let mut out = String::new();
        for t in &self.tests {
            match &t.outcome {
                TestOutcome::Pass if verbose => {
                    out.push_str(&format!(
                        "PASS {} ({})\n",
                        t.name,
                        show_duration(t.duration)
                    ));
                }
                TestOutcome::Pass => {}
                TestOutcome::Fail { reason } => {
                    out.push_str(&format!("FAIL {} ({}): {reason}\n", t.name, t.file));
                    for p in &t.prints {
                        out.push_str(&format!("  print: {p}\n"));
                    }
                }
            }
        }
        out.push_str(&format!("{} passed, {} failed\n", self.passed, self.failed));
        out
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}

/// Runs every `test_*` rule of `bundle` (modules, test modules and data loaded together).
///
/// Errors are for the bundle as a whole: a module that does not parse, bad data, or no test
/// at all ([`PolicyError::NoTests`]). A test that errors is a failed test, not an error.
pub fn run_tests(bundle: &PolicyBundle, limits: &PolicyLimits) -> Result<TestReport, PolicyError> {
    let mut engine = new_engine(limits)?;
    let all: Vec<_> = bundle
        .modules()
        .iter()
        .chain(bundle.test_modules())
        .collect();
    for m in &all {
        engine
            .add_policy(m.path.clone(), m.source.clone())
            .map_err(|e| from_regorus(Stage::Parse(&m.path), &e))?;
    }
    add_data(&mut engine, bundle)?;
    engine.set_gather_prints(true);

    let packages = engine
        .get_policy_package_components()
        .map_err(|e| from_regorus(Stage::Compile, &e))?;
    let mut tests = BTreeSet::new();
    for (m, package) in all.iter().zip(&packages) {
        for name in candidates(&m.source) {
            // Not every candidate is a rule head (a test may be referenced inside a body);
            // ask regorus.
            if engine
                .has_declared_rule_rooted_at(&m.path, &name)
                .unwrap_or(false)
            {
                tests.insert((rule_path(&package.components, &name), m.path.clone()));
            }
        }
    }
    if tests.is_empty() {
        return Err(PolicyError::NoTests {
            dir: bundle.origin().to_string(),
        });
    }

    let mut results = Vec::with_capacity(tests.len());
    for (name, file) in tests {
        let started = Instant::now();
        let outcome = match engine.eval_rule(name.clone()) {
            Ok(regorus::Value::Bool(false)) => TestOutcome::Fail {
                reason: "false".to_string(),
            },
            Ok(regorus::Value::Undefined) => TestOutcome::Fail {
                reason: "undefined (a condition in the test did not hold)".to_string(),
            },
            Ok(_) => TestOutcome::Pass,
            Err(e) => TestOutcome::Fail {
                reason: from_regorus(Stage::Eval(limits.eval_timeout), &e).to_string(),
            },
        };
        let duration = started.elapsed();
        let prints = engine.take_prints().unwrap_or_default();
        results.push(TestResult {
            name,
            file,
            outcome,
            duration,
            prints,
        });
    }
    let passed = results.iter().filter(|t| t.passed()).count();
    Ok(TestReport {
        bundle: bundle.origin().to_string(),
        failed: results.len() - passed,
        passed,
        tests: results,
    })
}

/// Names that start a line (after indentation) as `test_…` and are not followed by `(` (a
/// function, which `opa test` does not run either).
fn candidates(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("test_")?;
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let after = rest[len..].trim_start();
            (!after.starts_with('(') && !after.starts_with('.') && !after.starts_with('['))
                .then(|| format!("test_{}", &rest[..len]))
        })
        .collect()
}

/// `data.a.b.rule`, with bracket notation for components that are not identifiers.
fn rule_path(package: &[String], rule: &str) -> String {
    let mut path = String::from("data");
    for c in package.iter().map(String::as_str).chain([rule]) {
        let ident = c
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
        if ident && !c.is_empty() {
            path.push('.');
            path.push_str(c);
        } else {
            path.push_str(&format!("[{}]", serde_json::Value::String(c.to_string())));
        }
    }
    path
}

fn show_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_candidates() {
        let src =
            "package x\ntest_a if true\n  test_b := 1\ntest_f(x) := x\n# test_c\nx if { test_a }\n";
        let c = candidates(src);
        assert!(c.contains("test_a") && c.contains("test_b"));
        assert!(!c.contains("test_f"));
        assert!(!c.contains("test_c"), "a comment is not a rule");
    }

    #[test]
    fn builds_rule_paths() {
        assert_eq!(
            rule_path(&["gantry_test".into(), "non_root".into()], "test_a"),
            "data.gantry_test.non_root.test_a"
        );
        assert_eq!(
            rule_path(&["x".into(), "1.0".into()], "test_a"),
            "data.x[\"1.0\"].test_a"
        );
    }
}
