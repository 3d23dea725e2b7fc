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
