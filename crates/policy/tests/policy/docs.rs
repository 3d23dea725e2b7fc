//! Every finding code is documented and has one owner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gantry_policy::{POLICY_ERROR_CODE, PolicyBundle, is_kebab_case};

fn repo() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_path_buf()
}

/// `"code": "…"` literals in the shipped modules (comments skipped), by code → files.
fn emitted_codes() -> BTreeMap<String, BTreeSet<String>> {
    let mut codes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in PolicyBundle::builtin().unwrap().modules() {
        for line in m
            .source
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            let mut rest = line;
            while let Some(at) = rest.find("\"code\":") {
                rest = rest[at + "\"code\":".len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"')
                    && let Some(end) = literal.find('"')
                {
                    codes
                        .entry(literal[..end].to_string())
                        .or_default()
                        .insert(m.path.clone());
                }
            }
        }
    }
    codes
}

/// `## code` headings of docs/checks.md.
fn documented_codes() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("docs/checks.md")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_string())
        .collect()
}

#[test]
fn every_emitted_code_is_kebab_case_and_has_one_owner() {
    let codes = emitted_codes();
    assert!(codes.len() >= 19, "{codes:?}");
    for (code, files) in &codes {
        assert!(is_kebab_case(code), "{code}");
        assert_eq!(
            files.len(),
            1,
            "{code} is emitted by several modules: {files:?}"
        );
    }
}

#[test]
fn every_code_has_a_section_in_checks_md_and_every_section_a_code() {
    let mut emitted: BTreeSet<String> = emitted_codes().into_keys().collect();
    emitted.insert(POLICY_ERROR_CODE.to_string());
    let documented = documented_codes();
    let unique: BTreeSet<String> = documented.iter().cloned().collect();
    assert_eq!(unique.len(), documented.len(), "a section appears twice");
    let missing: Vec<_> = emitted.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "codes without a section in docs/checks.md: {missing:?}"
    );
    let stale: Vec<_> = unique.difference(&emitted).collect();
    assert!(
        stale.is_empty(),
        "sections for codes nothing emits: {stale:?}"
    );
}

#[test]
fn every_data_key_is_documented() {
    let data = PolicyBundle::builtin().unwrap().data().clone();
    let doc = std::fs::read_to_string(repo().join("docs/policies/data.md")).unwrap();
    let gantry = data["gantry"].as_object().unwrap();
    for (section, value) in gantry {
        assert!(
            doc.contains(&format!("`{section}`")),
            "data.md lacks `{section}`"
        );
        if let Some(obj) = value.as_object() {
            for key in obj.keys() {
                let dotted = format!("`{section}.{key}`");
                assert!(doc.contains(&dotted), "data.md lacks {dotted}");
            }
        }
    }
}

/// The rego blocks of a Markdown file whose first line is `package <name>`.
fn rego_block(markdown: &str, package: &str) -> String {
    let header = format!("```rego\npackage {package}\n");
    let start = markdown
        .find(&header)
        .unwrap_or_else(|| panic!("no block for {package}"))
        + "```rego\n".len();
    let end = start + markdown[start..].find("```").unwrap();
    markdown[start..end].to_string()
}

#[test]
fn the_readme_example_rule_and_its_tests_run() {
    let readme = std::fs::read_to_string(repo().join("docs/policies/README.md")).unwrap();
    let bundle = PolicyBundle::builtin()
        .unwrap()
        .with_module(
            "gantry/rules/startup.rego",
            rego_block(&readme, "gantry.rules.startup"),
        )
        .unwrap()
        .with_module(
            "tests/startup_test.rego",
            rego_block(&readme, "gantry_test.startup"),
        )
        .unwrap();
    let report = gantry_policy::run_tests(&bundle, &Default::default()).unwrap();
    assert!(report.all_passed(), "{}", report.render(false));
    let ours: Vec<_> = report
        .tests
        .iter()
        .filter(|t| t.name.starts_with("data.gantry_test.startup."))
        .collect();
    assert_eq!(ours.len(), 3);
}
