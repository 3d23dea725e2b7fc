//! `gantry policy test`: the shipped bundle's tests pass; a user's failing test fails the run.

use crate::util::{gantry, stderr, stdout};

#[test]
fn builtin_policy_tests_pass() {
    let cache = tempfile::tempdir().unwrap();
    let out = gantry(cache.path(), &["policy", "test"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l.ends_with(" passed, 0 failed")),
        "{text}"
    );
}

#[test]
fn user_policy_tests_report_failures() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("verdict.rego"),
        "package gantry\n\nimport rego.v1\n\nverdict := {\"decision\": \"allow\", \"violations\": [], \"warnings\": [], \"waived\": []}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("verdict_test.rego"),
        "package gantry_test\n\nimport rego.v1\n\ntest_allows if data.gantry.verdict.decision == \"allow\"\n\ntest_denies if data.gantry.verdict.decision == \"deny\"\n",
    )
    .unwrap();
    let out = gantry(
        cache.path(),
        &["policy", "test", dir.path().to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("FAIL") && text.contains("test_denies"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.ends_with("1 passed, 1 failed")),
        "{text}"
    );

    let out = gantry(cache.path(), &["policy", "test", "/nonexistent/policies"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
