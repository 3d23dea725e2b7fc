//! The shipped bundle over hand-written input documents (tests/fixtures/*.json, which follow
//! docs/policies/input.md and validate against docs/policies/input.schema.json).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use gantry_model::{Decision, Location, Verdict};
use gantry_policy::{Policy, PolicyBundle, PolicyLimits};
use serde_json::Value;

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::compile(&PolicyBundle::builtin().unwrap(), &PolicyLimits::default()).unwrap()
    })
}

fn verdict(name: &str) -> Verdict {
    policy().evaluate_checked(&fixture(name)).unwrap()
}

fn codes(findings: &[gantry_model::Finding]) -> BTreeSet<&str> {
    findings.iter().map(|f| f.code.as_str()).collect()
}

fn layer(i: u64) -> String {
    format!(
        "sha256:{}",
        "abcdef"
            .chars()
            .nth(i as usize)
            .unwrap()
            .to_string()
            .repeat(64)
    )
}

#[test]
fn every_fixture_validates_against_the_input_schema() {
    let schema_path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policies/input.schema.json"
    ));
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&doc)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 9, "fixtures found: {seen}");
}

#[test]
fn the_schema_rejects_what_input_md_forbids() {
    let schema_path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policies/input.schema.json"
    ));
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let good = fixture("distroless_nonroot");
    assert!(validator.is_valid(&good));
    let mut bad = good.clone();
    bad["version"] = 2.into();
    assert!(!validator.is_valid(&bad), "version 2");
    let mut bad = good.clone();
    bad["facts"]["toolchain"] = serde_json::json!([{"name": "gcc", "category": "compilers", "evidence": "path", "location": {}}]);
    assert!(!validator.is_valid(&bad), "unknown category");
    let mut bad = good.clone();
    bad["facts"]["user"]["location"] = serde_json::json!({"path": "/etc/passwd"});
    assert!(!validator.is_valid(&bad), "leading slash");
    let mut bad = good;
    bad["facts"]["base"]["evidence"] = "guess".into();
    assert!(!validator.is_valid(&bad), "evidence");
}

#[test]
fn distroless_nonroot_pinned_is_allowed_without_warnings() {
    let v = verdict("distroless_nonroot");
    assert_eq!(v.decision, Decision::Allow, "{v:#?}");
    assert!(v.violations.is_empty() && v.warnings.is_empty(), "{v:#?}");
    assert_eq!(v.policy_digest, policy().digest());
}

#[test]
fn single_stage_build_as_root_is_denied_for_every_reason() {
    let v = verdict("single_stage_root");
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(
        codes(&v.violations),
        BTreeSet::from(["root-user", "build-toolchain", "build-leftover"])
    );
    assert_eq!(
        codes(&v.warnings),
        BTreeSet::from(["base-image-unknown", "no-healthcheck"])
    );

    let root = v.violations.iter().find(|f| f.code == "root-user").unwrap();
    assert!(root.message.contains("USER is not set"), "{}", root.message);
    assert_eq!(
        root.location,
        Some(Location {
            field: Some("config.User".into()),
            ..Default::default()
        })
    );

    // g++ and cc1plus come from one package (g++-12): one finding; so do the two header
    // files of libpython3.11-dev.
    let tools: Vec<_> = v
        .violations
        .iter()
        .filter(|f| f.code == "build-toolchain")
        .collect();
    assert_eq!(tools.len(), 4, "{tools:#?}");
    let headers = tools
        .iter()
        .find(|f| f.message.starts_with("python3.11 headers"))
        .unwrap();
    assert!(
        headers.message.contains("and 1 more path(s)"),
        "{}",
        headers.message
    );
    assert_eq!(
        headers.location.as_ref().unwrap().path.as_deref(),
        Some("usr/include/python3.11/Python.h")
    );
    for f in &tools {
        let loc = f.location.as_ref().unwrap();
        assert_eq!(loc.layer.as_deref(), Some(layer(1).as_str()));
        assert_eq!(loc.layer_index, Some(1));
    }
    let git = v
        .violations
        .iter()
        .find(|f| f.code == "build-leftover")
        .unwrap();
    assert_eq!(
        git.location.as_ref().unwrap().path.as_deref(),
        Some("app/.git")
    );
}

#[test]
fn user_toor_mapped_to_uid_0_is_root() {
    let v = verdict("toor_uid0");
    assert_eq!(codes(&v.violations), BTreeSet::from(["root-user"]));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    let f = &v.violations[0];
    assert!(
        f.message.contains("USER toor maps to uid 0"),
        "{}",
        f.message
    );
    assert_eq!(
        f.location,
        Some(Location {
            layer: Some(layer(1)),
            layer_index: Some(1),
            path: Some("etc/passwd".into()),
            field: Some("config.User".into()),
        })
    );
}

#[test]
fn user_appuser_is_allowed_with_the_kubelet_warning() {
    let v = verdict("appuser_1001");
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(codes(&v.warnings), BTreeSet::from(["non-numeric-user"]));
    assert!(
        v.warnings[0].message.contains("USER 1001:1001"),
        "{}",
        v.warnings[0].message
    );
}

#[test]
fn deleted_secret_still_denies_at_the_layer_that_added_it() {
    let v = verdict("secret_deleted");
    assert_eq!(codes(&v.violations), BTreeSet::from(["secret-in-image"]));
    let f = &v.violations[0];
    assert!(
        f.message.contains("a later layer deletes it"),
        "{}",
        f.message
    );
    assert_eq!(
        f.location,
        Some(Location {
            layer: Some(layer(1)),
            layer_index: Some(1),
            path: Some("root/.ssh/id_rsa".into()),
            field: None,
        })
    );
    assert!(
        !f.message.contains("b3Blb"),
        "the secret itself is not repeated"
    );
}

#[test]
fn node_app_with_typescript_and_source_maps_is_denied() {
    let v = verdict("node_typescript");
    assert_eq!(
        codes(&v.violations),
        BTreeSet::from(["build-toolchain", "build-leftover", "unpinned-base"])
    );
    let maps: Vec<_> = v
        .violations
        .iter()
        .filter(|f| f.code == "build-leftover")
        .collect();
    assert_eq!(maps.len(), 1, "two .map files are one finding");
    assert!(maps[0].message.contains("and 1 more path(s)"));
    assert_eq!(
        codes(&v.warnings),
        BTreeSet::from(["build-leftover"]),
        "source tree warns"
    );
    let base = v
        .violations
        .iter()
        .find(|f| f.code == "unpinned-base")
        .unwrap();
    assert!(
        base.message.contains("node:20-bookworm-slim"),
        "{}",
        base.message
    );
}

#[test]
fn image_over_the_size_limit_is_denied_at_its_largest_layer() {
    let v = verdict("too_large");
    assert_eq!(codes(&v.violations), BTreeSet::from(["image-too-large"]));
    assert_eq!(
        codes(&v.warnings),
        BTreeSet::from(["base-image-unknown", "no-healthcheck", "wasted-space"])
    );
    let f = &v.violations[0];
    assert!(
        f.message.contains("over the limit of 1 GiB"),
        "{}",
        f.message
    );
    assert!(f.message.contains("texlive-full"), "{}", f.message);
    assert_eq!(f.location.as_ref().unwrap().layer_index, Some(1));
}

#[test]
fn no_base_evidence_is_a_warning_or_a_deny_by_data() {
    let v = verdict("no_base_evidence");
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(
        codes(&v.warnings),
        BTreeSet::from(["base-image-unknown", "no-healthcheck"])
    );

    let strict = PolicyBundle::builtin()
        .unwrap()
        .with_data(serde_json::json!({"gantry": {"base_image": {"require_base_evidence": true}}}))
        .unwrap();
    let policy = Policy::compile(&strict, &PolicyLimits::default()).unwrap();
    let v = policy.evaluate(&fixture("no_base_evidence"));
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(codes(&v.violations), BTreeSet::from(["base-image-unknown"]));
    assert_ne!(v.policy_digest, policy_digest_of_builtin());
}

fn policy_digest_of_builtin() -> String {
    PolicyBundle::builtin().unwrap().digest()
}

#[test]
fn unresolvable_user_warns() {
    let v = verdict("unresolvable_user");
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(
        codes(&v.warnings),
        BTreeSet::from(["non-numeric-user", "unresolvable-user"])
    );
}

#[test]
fn exceptions_from_a_data_override_waive_and_expire() {
    let waiver = |expires: &str| {
        serde_json::json!({"gantry": {"exceptions": [{
            "code": "root-user", "reason": "vendor image, OPS-42", "expires": expires,
            "image": "registry.example/team/*"
        }]}})
    };
    let bundle = PolicyBundle::builtin()
        .unwrap()
        .with_data(waiver("2027-01-31"))
        .unwrap();
    let v = Policy::compile(&bundle, &PolicyLimits::default())
        .unwrap()
        .evaluate(&fixture("toor_uid0"));
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.waived.len(), 1);
    assert_eq!(v.waived[0].reason, "vendor image, OPS-42");
    // The override merged: every other default is still there.
    assert_eq!(
        bundle.data()["gantry"]["size"]["max_uncompressed_bytes"],
        serde_json::json!(1073741824)
    );

    let bundle = PolicyBundle::builtin()
        .unwrap()
        .with_data(waiver("2026-01-31"))
        .unwrap();
    let v = Policy::compile(&bundle, &PolicyLimits::default())
        .unwrap()
        .evaluate(&fixture("toor_uid0"));
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(codes(&v.warnings), BTreeSet::from(["expired-exception"]));
}

#[test]
fn verdicts_are_deterministic_and_sorted() {
    let a = verdict("single_stage_root");
    let b = verdict("single_stage_root");
    assert_eq!(a, b);
    let mut sorted = a.violations.clone();
    sorted.sort();
    assert_eq!(a.violations, sorted);
}

#[test]
fn evaluates_concurrently_from_one_compiled_policy() {
    let policy = policy().clone();
    let input = fixture("single_stage_root");
    let expected = policy.evaluate(&input);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| (0..20).map(|_| policy.evaluate(&input)).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            for v in h.join().unwrap() {
                assert_eq!(v, expected);
            }
        }
    });
}

/// Prints how long an evaluation of the shipped bundle takes (no assertion on time: machines
/// differ; `cargo run --release --example verdict` gives release numbers).
#[test]
fn prints_evaluation_time() {
    let input = fixture("single_stage_root");
    let policy = policy();
    let _ = policy.evaluate(&input);
    let n = 20;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(policy.evaluate(&input));
    }
    println!(
        "shipped bundle: {:?} per evaluation (debug build, {n} runs)",
        started.elapsed() / n
    );
}
