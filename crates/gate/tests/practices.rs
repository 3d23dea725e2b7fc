//! The practice checks on whole images (real layers, config and history from gantry-testkit),
//! judged by the built-in policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use gantry_gate::{Context, Gate, ImageReport};
use gantry_model::oci::Compression;
use gantry_policy::{Policy, PolicyBundle, PolicyLimits};
use gantry_registry::{SourceOptions, SourceRef};
use gantry_scan::{ScanOptions, Scanner};
use gantry_testkit::{Artifact, ImageBuilder, LayerBuilder};

const PINNED: &str = "gcr.io/distroless/nodejs22-debian12:nonroot@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

async fn judge(image: ImageBuilder, mode: &str) -> ImageReport {
    let built = image.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    built.write_oci_layout(dir.path(), Some("t")).unwrap();
    let reference = format!("oci:{}:t", dir.path().display());
    let source_ref: SourceRef = reference.parse().unwrap();
    let source = gantry_registry::open(&source_ref, &SourceOptions::default())
        .await
        .unwrap();
    let resolved = gantry_registry::resolve_one(source.as_ref(), None)
        .await
        .unwrap();
    let policy = Arc::new(
        Policy::compile(&PolicyBundle::builtin().unwrap(), &PolicyLimits::default()).unwrap(),
    );
    let gate = Gate::new(Scanner::new(ScanOptions::default(), None).unwrap(), policy);
    let context = Context {
        now: "2026-11-22T15:00:00Z".into(),
        mode: mode.into(),
        base: None,
    };
    gate.check(&source, &reference, &resolved, context)
        .await
        .unwrap()
        .report
}

fn warning_codes(r: &ImageReport) -> Vec<String> {
    let mut c: Vec<String> = r.verdict.warnings.iter().map(|f| f.code.clone()).collect();
    c.dedup();
    c
}

fn base_layer() -> LayerBuilder {
    LayerBuilder::new(Compression::Gzip)
        .dir("etc")
        .file(
            "etc/passwd",
            "root:x:0:0::/root:/sbin/nologin\nnode:x:1000:1000::/home/node:/sbin/nologin\n",
        )
        .file("etc/group", "root:x:0:\nnode:x:1000:\n")
}

fn app_layer() -> LayerBuilder {
    LayerBuilder::new(Compression::Zstd)
        .file("app/server.js", "require('express')\n")
        .file(
            "app/package.json",
            r#"{"name":"web","dependencies":{"express":"^4"},"devDependencies":{"jest":"^29"}}"#,
        )
        .file(
            "app/package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/express":{"version":"4.21.0"},"node_modules/jest":{"version":"29.7.0","dev":true}}}"#,
        )
        .file("app/node_modules/express/package.json", r#"{"name":"express","version":"4.21.0"}"#)
        .file("app/node_modules/jest/package.json", r#"{"name":"jest","version":"29.7.0"}"#)
        .file(
            "usr/local/lib/python3.12/site-packages/pytest-8.3.2.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: pytest\nVersion: 8.3.2\n",
        )
}

/// A single image with every practice the checks look for: a Node PID 1 without an init,
/// no HEALTHCHECK, an ADD of a URL and of an archive, npm and Python dev dependencies.
fn sloppy() -> ImageBuilder {
    ImageBuilder::new()
        .annotation("org.opencontainers.image.base.name", PINNED)
        .user("1000:1000")
        .layer_with_history(base_layer(), "ADD rootfs.tar.gz / # buildkit")
        .layer_with_history(app_layer(), "COPY . /app # buildkit")
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip).file("opt/tool/bin/tool", "#!/bin/sh\n"),
            "ADD https://example.com/tool.tar.gz /opt/ # buildkit",
        )
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip).file("opt/vendor/lib.js", "//\n"),
            "ADD vendor.tgz /opt/vendor/ # buildkit",
        )
        .entrypoint(["node", "/app/server.js"])
}

#[tokio::test]
async fn every_practice_is_reported_on_an_image_that_ignores_them() {
    let r = judge(sloppy(), "cli").await;
    assert_eq!(
        r.verdict.decision,
        gantry_model::Decision::Allow,
        "{:#?}",
        r.verdict.violations
    );
    let codes = warning_codes(&r);
    for code in [
        "add-archive",
        "add-remote-url",
        "dev-dependency-shipped",
        "no-healthcheck",
        "no-init-process",
    ] {
        assert!(codes.contains(&code.to_string()), "{code} not in {codes:?}");
    }
    let archive: Vec<_> = r
        .verdict
        .warnings
        .iter()
        .filter(|f| f.code == "add-archive")
        .collect();
    // `ADD rootfs.tar.gz /` lays down a root filesystem: not reported.
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert_eq!(archive[0].location.as_ref().unwrap().layer_index, Some(3));
    let dev: Vec<_> = r
        .verdict
        .warnings
        .iter()
        .filter(|f| f.code == "dev-dependency-shipped")
        .collect();
    assert_eq!(dev.len(), 2, "npm (one per project) and pytest: {dev:?}");
    assert_eq!(r.input.facts.dev_dependencies[0].name, "jest");
    assert_eq!(r.input.config.healthcheck, None);

    // In admission mode HEALTHCHECK is not reported: Kubernetes ignores it.
    let r = judge(sloppy(), "admission").await;
    assert!(!warning_codes(&r).contains(&"no-healthcheck".to_string()));
}

#[tokio::test]
async fn an_image_that_follows_them_has_no_such_warnings() {
    let image = ImageBuilder::new()
        .annotation("org.opencontainers.image.base.name", PINNED)
        .user("1000:1000")
        .layer(base_layer())
        .layer(
            LayerBuilder::new(Compression::Zstd)
                .file("app/server.js", "//\n")
                .file(
                    "app/node_modules/express/package.json",
                    r#"{"name":"express","version":"4.21.0"}"#,
                ),
        )
        .healthcheck(["CMD", "/nodejs/bin/node", "/app/health.js"])
        .entrypoint(["/usr/bin/tini", "--", "node", "/app/server.js"]);
    let r = judge(image, "cli").await;
    assert_eq!(r.verdict.decision, gantry_model::Decision::Allow);
    assert!(r.verdict.warnings.is_empty(), "{:#?}", r.verdict.warnings);
    assert_eq!(
        r.input.config.healthcheck.as_deref(),
        Some(
            &[
                "CMD".to_string(),
                "/nodejs/bin/node".into(),
                "/app/health.js".into()
            ][..]
        )
    );
}
