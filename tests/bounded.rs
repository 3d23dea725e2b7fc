//! Issue 11: a hostile image costs a bounded amount and is refused for good; what `gantry
//! serve` stores keeps no secret in clear. The real binary, Debian's registry, SQLite.

use std::time::Duration;

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, LayerBuilder, RegistryHarness};
use serde_json::json;

use crate::serve::{ServeSetup, good_builder};

fn dpkg_status(n: usize) -> String {
    (0..n)
        .map(|i| format!("Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"))
        .collect()
}

/// Finding 5: the 800,000-package layer was judged at ~9 GB, then its result was too big
/// for SQLite, which was classed as transient: five attempts. Now the scan stops at the
/// package cap, and the failure is permanent: one attempt, no verdict, a clear error.
#[test]
fn a_package_bomb_fails_once_and_is_not_retried() {
    let registry = RegistryHarness::start().unwrap();
    let pushed = good_builder("package-bomb")
        .layer(
            LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/status", dpkg_status(800_000)),
        )
        .build()
        .unwrap()
        .push(&registry, "bomb/dpkg", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config("[workers]\nbackoff = \"100ms\"\n")
        .start();
    let r = serve.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/bomb/dpkg:v1", registry.host()), "budget_seconds": 60}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "scan-failed", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("var/lib/dpkg/status") && message.contains("limit layer-packages=50000"),
        "{message}"
    );
    // Had it been retried, a second attempt would start within the 100 ms backoff.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(serve.metric("gantry_jobs{status=\"failed\"}"), 1.0);
    assert_eq!(
        serve.metric("gantry_scan_duration_seconds_count{outcome=\"error\"}"),
        1.0,
        "{}",
        serve.metrics()
    );
    let r = serve.get(&format!("/v1/images/{}/verdict", pushed.digest));
    assert_eq!(r.status, 404, "{}", r.body);
}

// ---- finding 9: secrets are not kept in clear ----

const TOKEN: &str = "tok_live_4f9c2a7e1b8d";
const NPM: &str = "npm_abcdefghijklmnopqrstuvwxyz0123456789";

fn github() -> String {
    format!("ghp_{}", "Z9".repeat(18))
}

/// Secrets in every config field a report carries: `Env`, an `ARG` recorded in the history,
/// a label, an annotation, a command argument.
fn leaky_image() -> gantry_testkit::BuiltImage {
    good_builder("leaky")
        .env("API_TOKEN", TOKEN)
        .env("LOG_LEVEL", "info")
        .label("org.example.deploy-token", "label-secret-value")
        .label("org.opencontainers.image.title", "leaky")
        .annotation("org.example.note", &format!("pushed with {}", github()))
        .cmd(["--registry-token", &github()])
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip).file("app/README", "hello"),
            &format!("|1 NPM_TOKEN={NPM} /bin/sh -c npm ci # buildkit"),
        )
        .build()
        .unwrap()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [TOKEN, NPM, &github(), "label-secret-value"] {
        assert!(
            !text.contains(secret),
            "{what} keeps {secret} in clear:\n{text}"
        );
    }
}

/// Finding 9: the report (`--format json`), the SARIF and `inspect` printed the config's
/// `Env` and history verbatim. Values are redacted; names, and the secret facts, stay.
#[test]
fn cli_reports_keep_the_names_of_secrets_but_not_their_values() {
    use crate::util::{gantry, stdout};
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    leaky_image().write_oci_layout(dir.path(), None).unwrap();
    let image = format!("oci:{}", dir.path().display());

    let out = gantry(cache.path(), &["scan", &image, "--format", "json"]);
    let json = stdout(&out);
    assert_no_secret("scan --format json", &json);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let env = report["config"]["env"].as_array().unwrap();
    assert!(env.contains(&json!("API_TOKEN=<redacted>")), "{env:?}");
    assert!(env.contains(&json!("LOG_LEVEL=info")), "{env:?}");
    assert_eq!(
        report["image"]["labels"]["org.example.deploy-token"],
        "<redacted>"
    );
    assert_eq!(
        report["image"]["labels"]["org.opencontainers.image.title"],
        "leaky"
    );
    let history = report["config"]["history"].to_string();
    assert!(history.contains("NPM_TOKEN=<redacted>"), "{history}");
    // The policy still sees that the secrets were there, and denies.
    let rules: Vec<&str> = report["facts"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["rule"].as_str())
        .collect();
    assert!(rules.contains(&"secret-variable"), "{rules:?}");
    assert!(rules.contains(&"npm-token"), "{rules:?}");
    assert_eq!(report["verdict"]["decision"], "deny");

    let out = gantry(cache.path(), &["scan", &image, "--format", "sarif"]);
    let sarif = stdout(&out);
    assert!(sarif.contains("\"version\": \"2.1.0\"") || sarif.contains("\"version\":\"2.1.0\""));
    assert_no_secret("scan --format sarif", &sarif);

    let sbom = dir.path().join("sbom.json");
    gantry(
        cache.path(),
        &["scan", &image, "--sbom", sbom.to_str().unwrap()],
    );
    assert_no_secret("the SBOM", &std::fs::read_to_string(&sbom).unwrap());

    for format in ["json", "table"] {
        let out = gantry(cache.path(), &["inspect", &image, "--format", format]);
        assert_eq!(out.status.code(), Some(0));
        assert_no_secret(&format!("inspect --format {format}"), &stdout(&out));
    }
}

/// Finding 9: `gantry serve` stored the raw config in `report_json` and served it.
#[test]
fn stored_reports_keep_no_secret_in_clear() {
    let registry = RegistryHarness::start().unwrap();
    let pushed = leaky_image()
        .push(&registry, "leaky/app", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path()).start();
    let r = serve.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/leaky/app:v1", registry.host())}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["decision"], "deny");
    assert_no_secret("POST /v1/scan", &r.body);
    for doc in ["report", "verdict", "sbom"] {
        let r = serve.get(&format!("/v1/images/{}/{doc}", pushed.digest));
        assert_eq!(r.status, 200, "{doc}: {}", r.body);
        assert_no_secret(doc, &r.body);
    }
    let report = serve
        .get(&format!("/v1/images/{}/report", pushed.digest))
        .json();
    assert!(
        report["config"]["env"]
            .as_array()
            .unwrap()
            .contains(&json!("API_TOKEN=<redacted>")),
        "{report}"
    );
    // Nor anywhere in the database file.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(home.path().join("data")).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    assert_no_secret("the data directory", &String::from_utf8_lossy(&stored));
}

// ---- finding 12: a policy cannot run past its limits ----

/// Finding 12: a policy directory whose verdict calls `numbers.range(1, 2e8)` ran 23 s and
/// built 4.7 GB. Now the call is refused before it builds anything: deny, `policy-error`.
#[test]
fn a_hostile_policy_directory_denies_with_a_policy_error() {
    use crate::util::{gantry, stdout};
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    good_builder("policy")
        .build()
        .unwrap()
        .write_oci_layout(&dir.path().join("img"), None)
        .unwrap();
    let policy = dir.path().join("hostile");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::write(
        policy.join("verdict.rego"),
        "package gantry\n\nimport rego.v1\n\n\
         verdict := {\"decision\": \"allow\", \"violations\": [], \"warnings\": [], \"waived\": []} \
         if count(numbers.range(1, 2e8)) > 0\n",
    )
    .unwrap();
    let image = format!("oci:{}", dir.path().join("img").display());
    let out = gantry(
        cache.path(),
        &[
            "scan",
            &image,
            "--format",
            "json",
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", crate::util::stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let v = &report["verdict"]["violations"][0];
    assert_eq!(v["code"], "policy-error", "{report}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("policy-builtin-elements"),
        "{v}"
    );
}
