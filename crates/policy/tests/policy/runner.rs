//! `gantry policy test`: the runner over the shipped tests and over a user's directory.

use gantry_policy::{PolicyBundle, PolicyError, PolicyLimits, TestOutcome, run_tests};

#[test]
fn shipped_policy_tests_pass() {
    let bundle = PolicyBundle::builtin().unwrap();
    let report = run_tests(&bundle, &PolicyLimits::default()).unwrap();
    println!("{report}");
    assert!(report.all_passed(), "{}", report.render(false));
    assert!(
        report.passed > 50,
        "expected the shipped tests, found {}",
        report.passed
    );
    // Every rule file has tests.
    for area in [
        "non_root",
        "toolchain",
        "base_image",
        "size",
        "secrets",
        "hygiene",
        "completeness",
        "exceptions",
        "verdict",
    ] {
        let prefix = format!("data.gantry_test.{area}.test_");
        assert!(
            report.tests.iter().any(|t| t.name.starts_with(&prefix)),
            "no tests for {area}"
        );
    }
}

fn user_dir(test_source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("rules.rego"),
        "package team\nimport rego.v1\nmax_replicas := 3\nallowed(n) if n <= max_replicas\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tests/team_test.rego"), test_source).unwrap();
    dir
}

#[test]
fn a_failing_user_test_is_reported_with_its_reason() {
    let dir = user_dir(
        "package team_test\nimport rego.v1\nimport data.team\n\
         test_three_is_allowed if team.allowed(3)\n\
         test_four_is_allowed if team.allowed(4)\n\
         test_false := false\n\
         test_error if { x := 1 / 0; x > 0 }\n\
         test_printing if {\n  print(\"looking at\", team.max_replicas)\n  team.max_replicas == 4\n}\n\
         # test_commented_out if false\n\
         helper if test_three_is_allowed\n",
    );
    let bundle = PolicyBundle::from_dir(dir.path()).unwrap();
    let report = run_tests(&bundle, &PolicyLimits::default()).unwrap();
    let names: Vec<_> = report.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "data.team_test.test_error",
            "data.team_test.test_false",
            "data.team_test.test_four_is_allowed",
            "data.team_test.test_printing",
            "data.team_test.test_three_is_allowed",
        ]
    );
    assert_eq!((report.passed, report.failed), (1, 4));
    assert!(!report.all_passed());
    let reason = |name: &str| match &report
        .tests
        .iter()
        .find(|t| t.name.ends_with(name))
        .unwrap()
        .outcome
    {
        TestOutcome::Fail { reason } => reason.clone(),
        TestOutcome::Pass => "pass".into(),
    };
    assert!(reason("test_four_is_allowed").starts_with("undefined"));
    assert_eq!(reason("test_false"), "false");
    assert!(
        reason("test_error").contains("divide by zero"),
        "{}",
        reason("test_error")
    );
    let printing = report
        .tests
        .iter()
        .find(|t| t.name.ends_with("test_printing"))
        .unwrap();
    assert!(
        printing.prints.iter().any(|p| p.contains("looking at 3")),
        "{:?}",
        printing.prints
    );

    let text = report.render(false);
    assert!(
        text.contains("FAIL data.team_test.test_four_is_allowed (tests/team_test.rego): undefined")
    );
    assert!(!text.contains("PASS"));
    assert!(text.ends_with("1 passed, 4 failed\n"), "{text}");
    assert!(
        report
            .to_string()
            .contains("PASS data.team_test.test_three_is_allowed")
    );

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["failed"], 4);
    assert_eq!(json["tests"][0]["outcome"], "fail");
}

#[test]
fn a_directory_without_tests_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.rego"), "package team\nx := 1\n").unwrap();
    let bundle = PolicyBundle::from_dir(dir.path()).unwrap();
    assert!(matches!(
        run_tests(&bundle, &PolicyLimits::default()),
        Err(PolicyError::NoTests { .. })
    ));
}

#[test]
fn a_test_module_that_does_not_parse_is_an_error() {
    let dir = user_dir("package team_test\ntest_x if {\n");
    let bundle = PolicyBundle::from_dir(dir.path()).unwrap();
    assert!(matches!(
        run_tests(&bundle, &PolicyLimits::default()),
        Err(PolicyError::Parse { .. })
    ));
}
