//! Loading bundles: the embedded one, directories, data overrides, digests.

use gantry_policy::{Policy, PolicyBundle, PolicyError, PolicyLimits};
use serde_json::json;

fn policies_dir() -> std::path::PathBuf {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies")).to_path_buf()
}

#[test]
fn builtin_loads_and_compiles() {
    let bundle = PolicyBundle::builtin().unwrap();
    let paths: Vec<&str> = bundle.modules().iter().map(|m| m.path.as_str()).collect();
    for expected in [
        "gantry/verdict.rego",
        "gantry/lib.rego",
        "gantry/rules/non_root.rego",
        "gantry/rules/toolchain.rego",
        "gantry/rules/base_image.rego",
        "gantry/rules/size.rego",
        "gantry/rules/secrets.rego",
        "gantry/rules/hygiene.rego",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        bundle
            .test_modules()
            .iter()
            .all(|m| m.path.starts_with("tests/"))
    );
    assert!(!bundle.test_modules().is_empty());
    assert!(bundle.data()["gantry"]["size"]["max_uncompressed_bytes"].is_number());
    Policy::compile(&bundle, &PolicyLimits::default()).unwrap();
}

#[test]
fn builtin_is_the_policies_directory() {
    let builtin = PolicyBundle::builtin().unwrap();
    let dir = PolicyBundle::from_dir(policies_dir()).unwrap();
    assert_eq!(builtin.modules(), dir.modules());
    assert_eq!(builtin.test_modules(), dir.test_modules());
    assert_eq!(builtin.data(), dir.data());
    assert_eq!(builtin.digest(), dir.digest());
}

#[test]
fn digest_is_stable() {
    let a = PolicyBundle::builtin().unwrap().digest();
    let b = PolicyBundle::builtin().unwrap().digest();
    assert_eq!(a, b);
    assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
    let policy =
        Policy::compile(&PolicyBundle::builtin().unwrap(), &PolicyLimits::default()).unwrap();
    assert_eq!(policy.digest(), a);
}

#[test]
fn digest_changes_with_any_module_or_data_but_not_with_tests() {
    let base = PolicyBundle::builtin().unwrap();
    let more_data = base
        .clone()
        .with_data(json!({"gantry": {"size": {"max_layers": 50}}}))
        .unwrap();
    assert_ne!(base.digest(), more_data.digest());
    let more_rules = base
        .clone()
        .with_module("gantry/rules/extra.rego", "package gantry.rules.extra\n")
        .unwrap();
    assert_ne!(base.digest(), more_rules.digest());
    let more_tests = base
        .clone()
        .with_module("tests/extra_test.rego", "package extra_test\n")
        .unwrap();
    assert_eq!(base.digest(), more_tests.digest());
}

#[test]
fn from_dir_skips_tests_and_hidden_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("gantry/rules")).unwrap();
    std::fs::create_dir_all(p.join("tests/deep")).unwrap();
    std::fs::create_dir_all(p.join(".git")).unwrap();
    std::fs::write(p.join("gantry/rules/a.rego"), "package gantry.rules.a\n").unwrap();
    std::fs::write(p.join("gantry/rules/a_test.rego"), "package a_test\n").unwrap();
    std::fs::write(p.join("tests/deep/b.rego"), "package b_test\n").unwrap();
    std::fs::write(p.join(".git/c.rego"), "package c\n").unwrap();
    std::fs::write(p.join("gantry/notes.md"), "# notes\n").unwrap();
    std::fs::write(p.join("data.json"), r#"{"gantry": {"x": 1}}"#).unwrap();
    let b = PolicyBundle::from_dir(p).unwrap();
    let modules: Vec<_> = b.modules().iter().map(|m| m.path.as_str()).collect();
    let tests: Vec<_> = b.test_modules().iter().map(|m| m.path.as_str()).collect();
    assert_eq!(modules, ["gantry/rules/a.rego"]);
    assert_eq!(tests, ["gantry/rules/a_test.rego", "tests/deep/b.rego"]);
    assert_eq!(b.data(), &json!({"gantry": {"x": 1}}));
}

#[test]
fn data_files_merge_over_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.json");
    std::fs::write(
        &file,
        r#"{"gantry": {"size": {"max_uncompressed_bytes": 2147483648, "max_layers": null}, "exceptions": [{"code": "root-user"}]}}"#,
    )
    .unwrap();
    let b = PolicyBundle::builtin()
        .unwrap()
        .with_data_file(&file)
        .unwrap();
    let size = &b.data()["gantry"]["size"];
    assert_eq!(size["max_uncompressed_bytes"], json!(2147483648u64));
    assert!(size.get("max_layers").is_none(), "null removes a key");
    assert_eq!(
        size["max_wasted_bytes"],
        json!(20971520),
        "untouched keys stay"
    );
    assert_eq!(
        b.data()["gantry"]["exceptions"].as_array().unwrap().len(),
        1
    );
    assert!(b.data()["gantry"]["toolchain"]["deny_categories"].is_array());
}

#[test]
fn bad_data_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, "[1, 2]").unwrap();
    assert!(matches!(
        PolicyBundle::builtin().unwrap().with_data_file(&file),
        Err(PolicyError::Data { .. })
    ));
    std::fs::write(&file, "{not json").unwrap();
    assert!(matches!(
        PolicyBundle::builtin().unwrap().with_data_file(&file),
        Err(PolicyError::Data { .. })
    ));
    assert!(matches!(
        PolicyBundle::builtin()
            .unwrap()
            .with_data_file(dir.path().join("missing.json")),
        Err(PolicyError::Io { .. })
    ));
}

#[test]
fn duplicate_module_paths_are_refused() {
    let b = PolicyBundle::builtin().unwrap();
    assert!(matches!(
        b.with_module("gantry/verdict.rego", "package gantry\n"),
        Err(PolicyError::DuplicateModule { .. })
    ));
}

#[test]
fn policy_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Policy>();
}

#[test]
fn load_is_builtin_or_dir_with_data_merged() {
    let builtin = PolicyBundle::load(None, None).unwrap();
    assert_eq!(builtin, PolicyBundle::builtin().unwrap());
    let dir = PolicyBundle::load(Some(&policies_dir()), None).unwrap();
    assert_eq!(dir.digest(), builtin.digest());

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("site.json");
    std::fs::write(&file, r#"{"gantry": {"size": {"max_layers": 7}}}"#).unwrap();
    let merged = PolicyBundle::load(None, Some(&file)).unwrap();
    assert_eq!(merged.data()["gantry"]["size"]["max_layers"], json!(7));
    assert_ne!(merged.digest(), builtin.digest());
    let policy = Policy::load(None, Some(&file), &PolicyLimits::default()).unwrap();
    assert_eq!(policy.digest(), merged.digest());

    assert!(matches!(
        PolicyBundle::load(Some(&tmp.path().join("missing")), None),
        Err(PolicyError::Io { .. })
    ));
    assert!(matches!(
        Policy::load(
            None,
            Some(&tmp.path().join("missing.json")),
            &PolicyLimits::default()
        ),
        Err(PolicyError::Io { .. })
    ));
    // A directory without the entry point loads but does not compile.
    std::fs::write(tmp.path().join("x.rego"), "package other\nallow := true\n").unwrap();
    assert!(PolicyBundle::load(Some(tmp.path()), None).is_ok());
    assert!(matches!(
        Policy::load(Some(tmp.path()), None, &PolicyLimits::default()),
        Err(PolicyError::Compile { .. })
    ));
}
