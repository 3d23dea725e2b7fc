//! A policy that cannot decide denies, and says why.

use std::time::Duration;

use gantry_model::{Decision, Severity};
use gantry_policy::{POLICY_ERROR_CODE, Policy, PolicyBundle, PolicyError, PolicyLimits};
use serde_json::json;

/// The built-in verdict.rego and lib.rego plus one user rule file.
fn with_rule(source: &str) -> PolicyBundle {
    PolicyBundle::builtin()
        .unwrap()
        .with_module("gantry/rules/user.rego", source)
        .unwrap()
}

fn input() -> serde_json::Value {
    json!({"version": 1, "config": {"user": "1000"}, "facts": {"base": {"evidence": "annotation", "pinned": true}}, "context": {"now": "2026-11-22T15:00:00Z"}})
}

fn assert_policy_error(policy: &Policy, needle: &str) {
    let v = policy.evaluate(&input());
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(v.violations.len(), 1, "{v:#?}");
    let f = &v.violations[0];
    assert_eq!(f.code, POLICY_ERROR_CODE);
    assert_eq!(f.severity, Severity::Deny);
    assert!(
        f.message.contains(needle),
        "{:?} does not say {needle:?}",
        f.message
    );
    assert_eq!(v.policy_digest, policy.digest());
}

#[test]
fn the_user_rule_file_works_when_correct() {
    let bundle = with_rule(
        "package gantry.rules.user\nimport rego.v1\ndeny contains {\"code\": \"no-cmd\", \"message\": \"set CMD\"} if not input.config.cmd\n",
    );
    let v = Policy::compile(&bundle, &PolicyLimits::default())
        .unwrap()
        .evaluate(&input());
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(v.violations[0].code, "no-cmd");
}

#[test]
fn runtime_error_denies() {
    let bundle = with_rule(
        "package gantry.rules.user\nimport rego.v1\ndeny contains {\"code\": \"x\", \"message\": \"m\"} if { 1 / 0 }\n",
    );
    let policy = Policy::compile(&bundle, &PolicyLimits::default()).unwrap();
    assert!(matches!(
        policy.evaluate_checked(&input()),
        Err(PolicyError::Eval { .. })
    ));
    assert_policy_error(&policy, "divide by zero");
}

#[test]
fn builtin_error_denies_instead_of_dropping_the_rule() {
    // Under OPA's default, to_number("x") makes the rule undefined and the deny vanishes.
    let bundle = with_rule(
        "package gantry.rules.user\nimport rego.v1\ndeny contains {\"code\": \"x\", \"message\": \"m\"} if { to_number(\"not a number\") > 1 }\n",
    );
    let policy = Policy::compile(&bundle, &PolicyLimits::default()).unwrap();
    assert_policy_error(&policy, "policy evaluation failed");
}

#[test]
fn conflicting_complete_rule_denies() {
    let bundle = with_rule(
        "package gantry.rules.user\nimport rego.v1\nlimit := 1\nlimit := 2 if true\ndeny contains {\"code\": \"x\", \"message\": \"m\"} if limit > 5\n",
    );
    match Policy::compile(&bundle, &PolicyLimits::default()) {
        Err(PolicyError::Compile { .. } | PolicyError::Parse { .. }) => {}
        Ok(policy) => assert_policy_error(&policy, "policy evaluation failed"),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn slow_policy_times_out_and_denies() {
    let bundle = with_rule(
        "package gantry.rules.user\nimport rego.v1\n\
         deny contains {\"code\": \"slow\", \"message\": \"m\"} if {\n\
           count([1 | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); a * b < 0]) > 0\n\
         }\n",
    );
    let limits = PolicyLimits {
        eval_timeout: Duration::from_millis(100),
        ..PolicyLimits::default()
    };
    let policy = Policy::compile(&bundle, &limits).unwrap();
    let started = std::time::Instant::now();
    match policy.evaluate_checked(&input()) {
        Err(PolicyError::Timeout { limit }) => assert_eq!(limit, Duration::from_millis(100)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Generous bound: the check is cooperative, every 64 interpreter steps.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_policy_error(&policy, "time limit of 100ms");
}

#[test]
fn wrong_verdict_shapes_deny() {
    let cases = [
        (
            "package gantry\nimport rego.v1\nverdict := {\"decision\": \"allow\"}\n",
            "violations",
        ),
        (
            "package gantry\nimport rego.v1\nverdict := {\"decision\": \"allow\", \"violations\": [{\"code\": \"x\", \"severity\": \"deny\", \"message\": \"m\"}], \"warnings\": []}\n",
            "decision is allow",
        ),
        (
            "package gantry\nimport rego.v1\nverdict := {\"decision\": \"deny\", \"violations\": [], \"warnings\": []}\n",
            "no violation says why",
        ),
        (
            "package gantry\nimport rego.v1\nverdict := \"allow\"\n",
            "must be an object",
        ),
        (
            "package gantry\nimport rego.v1\nverdict := {\"decision\": \"allow\", \"violations\": [], \"warnings\": []} if input.nothing\n",
            "undefined",
        ),
        (
            "package gantry\nimport rego.v1\nverdict := {\"decision\": \"allow\", \"violations\": [], \"warnings\": [{\"code\": \"Bad Code\", \"severity\": \"warn\", \"message\": \"m\"}]}\n",
            "kebab-case",
        ),
    ];
    for (source, needle) in cases {
        let bundle = PolicyBundle::builtin()
            .unwrap()
            .replace_data(json!({}))
            .unwrap();
        // Replace the built-in verdict.rego with the broken one.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("verdict.rego"), source).unwrap();
        let broken = PolicyBundle::from_dir(dir.path()).unwrap();
        let policy = Policy::compile(&broken, &PolicyLimits::default()).unwrap();
        assert!(
            matches!(
                policy.evaluate_checked(&input()),
                Err(PolicyError::BadOutput { .. })
            ),
            "{source}"
        );
        assert_policy_error(&policy, needle);
        drop(bundle);
    }
}

#[test]
fn a_bundle_without_the_entrypoint_does_not_compile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.rego"),
        "package other\nimport rego.v1\nverdict := 1\n",
    )
    .unwrap();
    let bundle = PolicyBundle::from_dir(dir.path()).unwrap();
    match Policy::compile(&bundle, &PolicyLimits::default()) {
        Err(PolicyError::Compile { message }) => assert!(message.contains("data.gantry.verdict")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_parse_error_names_the_file_and_line() {
    let bundle = with_rule("package gantry.rules.user\nimport rego.v1\ndeny contains x if {\n");
    match Policy::compile(&bundle, &PolicyLimits::default()) {
        Err(PolicyError::Parse { path, message }) => {
            assert_eq!(path, "gantry/rules/user.rego");
            assert!(message.starts_with("gantry/rules/user.rego:"), "{message}");
            assert!(!message.contains('\n'));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversized_bundle_is_refused() {
    let limits = PolicyLimits {
        max_policy_bytes: 1000,
        ..PolicyLimits::default()
    };
    assert!(matches!(
        Policy::compile(&PolicyBundle::builtin().unwrap(), &limits),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn input_of_another_version_denies_through_the_policy() {
    let policy =
        Policy::compile(&PolicyBundle::builtin().unwrap(), &PolicyLimits::default()).unwrap();
    for input in [
        json!({"version": 2}),
        json!({}),
        json!("not an object"),
        json!(null),
    ] {
        let v = policy.evaluate(&input);
        assert_eq!(v.decision, Decision::Deny, "{input}");
    }
}

/// Issue 11: `numbers.range(1, 2e8)` ran 23 s and built 4.7 GB despite the 2 s limit, as
/// the time limit is checked between steps only. The capped builtins refuse such results
/// before building them: a deny that says which limit.
#[test]
fn amplifying_builtins_are_refused_before_they_build() {
    for call in [
        "numbers.range(1, 2e8)",
        "numbers.range_step(0, 9000000000, 3)",
        "net.cidr_expand(\"::/0\")",
    ] {
        let policy = Policy::compile(
            &with_rule(&format!(
                "package gantry.rules.user\nimport rego.v1\n\
                 deny contains {{\"code\": \"big\", \"message\": \"m\"}} if count({call}) > 0\n"
            )),
            &PolicyLimits::default(),
        )
        .unwrap();
        assert_policy_error(&policy, "policy-builtin-elements");
    }
    // Within the cap they give what OPA gives.
    let policy = Policy::compile(
        &with_rule(
            "package gantry.rules.user\nimport rego.v1\n\
             deny contains {\"code\": \"sum\", \"message\": sprintf(\"%v %v %v\", [sum(numbers.range(1, 10)), numbers.range_step(10, 1, 4), net.cidr_expand(\"10.0.0.0/31\")])} if true\n",
        ),
        &PolicyLimits::default(),
    )
    .unwrap();
    let v = policy.evaluate(&input());
    let f = v.violations.iter().find(|f| f.code == "sum").unwrap();
    assert_eq!(f.message, "55 [10, 6, 2] [\"10.0.0.0\", \"10.0.0.1\"]");
}

/// Evaluation runs on the blocking pool, never on the runtime's threads, at most
/// `max_concurrent_evaluations` at once; a runaway policy still denies at its time limit.
#[test]
fn async_evaluation_leaves_the_runtime_free_and_is_capped() {
    let bundle = with_rule(
        "package gantry.rules.user\nimport rego.v1\n\
         deny contains {\"code\": \"slow\", \"message\": \"m\"} if {\n\
           count([1 | some a in numbers.range(1, 5000); some b in numbers.range(1, 5000); a * b < 0]) > 0\n\
         }\n",
    );
    let limits = PolicyLimits {
        eval_timeout: Duration::from_millis(800),
        max_concurrent_evaluations: 1,
        ..PolicyLimits::default()
    };
    let policy = Policy::compile(&bundle, &limits).unwrap();
    // One runtime thread: if evaluation ran on it, nothing else could run meanwhile.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let first = tokio::spawn({
            let policy = policy.clone();
            async move { policy.evaluate_async(input()).await }
        });
        let second = tokio::spawn({
            let policy = policy.clone();
            async move { policy.evaluate_async(input()).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!first.is_finished() && !second.is_finished());
        assert_eq!(
            policy.idle_evaluations(),
            0,
            "one evaluation holds the only permit"
        );
        for task in [first, second] {
            let v = task.await.unwrap();
            assert_eq!(v.decision, Decision::Deny);
            assert!(v.violations[0].message.contains("time limit"), "{v:?}");
        }
        assert_eq!(policy.idle_evaluations(), 1);
    });
}
