//! The base image as each builder records it, judged by the built-in policy: images made the
//! way Buildah/Podman, ko, BuildKit, label-only builds and Docker's legacy builder make them
//! (real layers, manifests and indexes from gantry-testkit, read back from an OCI layout).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use gantry_gate::{Context, Gate, ImageReport};
use gantry_model::oci::Compression;
use gantry_policy::{Policy, PolicyBundle, PolicyLimits};
use gantry_registry::{SourceOptions, SourceRef};
use gantry_scan::{ScanOptions, Scanner};
use gantry_testkit::{Artifact, ImageBuilder, IndexBuilder, LayerBuilder, MediaTypes};

const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
const D: &str = "sha256:9b0d42c3d95e8f5b1e0f1e4cfa7b3a8d28a9a3d4a3c4ce1b1f0f5a1d2c3b4a59";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";

fn app() -> ImageBuilder {
    ImageBuilder::new()
        .user("65534:65534")
        .layer(
            LayerBuilder::new(Compression::Gzip)
                .dir("etc")
                .file(
                    "etc/passwd",
                    "root:x:0:0::/root:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n",
                )
                .file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        )
        .layer(LayerBuilder::new(Compression::Gzip).file_mode("app/server", b"\x7fELF app", 0o755))
        .entrypoint(["/app/server"])
}

async fn judge_artifact(artifact: &dyn Artifact, data: Option<serde_json::Value>) -> ImageReport {
    let dir = tempfile::tempdir().unwrap();
    artifact.write_oci_layout(dir.path(), Some("t")).unwrap();
    let reference = format!("oci:{}:t", dir.path().display());
    let source_ref: SourceRef = reference.parse().unwrap();
    let source = gantry_registry::open(&source_ref, &SourceOptions::default())
        .await
        .unwrap();
    let image = gantry_registry::resolve_one(source.as_ref(), None)
        .await
        .unwrap();
    let mut bundle = PolicyBundle::builtin().unwrap();
    if let Some(data) = data {
        bundle = bundle.with_data(data).unwrap();
    }
    let policy = Arc::new(Policy::compile(&bundle, &PolicyLimits::default()).unwrap());
    let gate = Gate::new(Scanner::new(ScanOptions::default(), None).unwrap(), policy);
    let context = Context {
        now: "2026-11-22T15:00:00Z".into(),
        mode: "cli".into(),
        base: None,
    };
    gate.check(&source, &reference, &image, context)
        .await
        .unwrap()
        .report
}

async fn judge(image: ImageBuilder) -> ImageReport {
    judge_artifact(&image.build().unwrap(), None).await
}

fn base(r: &ImageReport) -> serde_json::Value {
    serde_json::to_value(&r.input.facts.base).unwrap()
}

fn codes(findings: &[gantry_model::Finding]) -> Vec<String> {
    findings.iter().map(|f| f.code.clone()).collect()
}

fn message<'a>(r: &'a ImageReport, code: &str) -> &'a str {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .map(|f| f.message.as_str())
        .unwrap_or_else(|| panic!("no {code} in {:?}", r.findings))
}

// Buildah/Podman: base.name is the name the base is stored under and base.digest the digest,
// the same for `FROM debian@sha256:D` and `FROM debian:12` — so the tag decides: 12 floats.
#[tokio::test]
async fn buildah_bare_major_record_floats_and_denies() {
    let r = judge(
        app()
            .annotation(BASE_NAME, "docker.io/library/debian:12")
            .annotation(BASE_DIGEST, D),
    )
    .await;
    let b = base(&r);
    assert_eq!(b["pin"], "floating");
    assert_eq!(b["repository"], "docker.io/library/debian");
    assert_eq!(
        (b["tag"].as_str(), b["digest"].as_str()),
        (Some("12"), Some(D))
    );
    assert_eq!(r.verdict.decision, gantry_model::Decision::Deny);
    assert!(message(&r, "unpinned-base").contains("bare major"));
}

// Buildah with a version tag: "version, with the resolved digest recorded" — allowed with a
// warning, denied when base_image.require_digest.
#[tokio::test]
async fn buildah_version_record_warns_or_denies_when_a_digest_is_required() {
    let image = app()
        .annotation(BASE_NAME, "docker.io/library/debian:12.12")
        .annotation(BASE_DIGEST, D)
        .build()
        .unwrap();
    let r = judge_artifact(&image, None).await;
    assert_eq!(base(&r)["pin"], "version");
    assert_eq!(
        r.verdict.decision,
        gantry_model::Decision::Allow,
        "{:?}",
        r.findings
    );
    assert!(codes(&r.verdict.warnings).contains(&"unpinned-base".to_string()));
    assert!(message(&r, "unpinned-base").contains("pinned by a version tag, not a digest"));
    let strict = serde_json::json!({"gantry": {"base_image": {"require_digest": true}}});
    let r = judge_artifact(&image, Some(strict)).await;
    assert!(codes(&r.verdict.violations).contains(&"unpinned-base".to_string()));
}

// ko given a tag: base.name (go-containerregistry's fully qualified name) and base.digest.
// ko given a digest: base.digest alone — a digest.
#[tokio::test]
async fn ko_records_name_only_for_tags() {
    let r = judge(
        app()
            .annotation(BASE_NAME, "cgr.dev/chainguard/static:latest")
            .annotation(BASE_DIGEST, D),
    )
    .await;
    assert_eq!(base(&r)["pin"], "floating");
    let r = judge(
        app()
            .annotation(BASE_NAME, "index.docker.io/library/alpine:3.20")
            .annotation(BASE_DIGEST, D),
    )
    .await;
    assert_eq!(base(&r)["pin"], "version");
    assert_eq!(base(&r)["repository"], "docker.io/library/alpine");

    let r = judge(app().annotation(BASE_DIGEST, D)).await;
    let b = base(&r);
    assert_eq!(
        (b["pin"].as_str(), b["name"].as_str()),
        (Some("digest"), None)
    );
    assert_eq!(b["digest"], D);
    assert_eq!(
        r.verdict.decision,
        gantry_model::Decision::Allow,
        "{:?}",
        r.findings
    );
}

fn buildkit_index(
    image: ImageBuilder,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> gantry_testkit::BuiltIndex {
    IndexBuilder::new()
        .image(image.build().unwrap())
        .attestation_with(0, predicate_type, predicate)
        .build()
        .unwrap()
}

// BuildKit writes no annotation; its provenance (mode=min, SLSA v0.2 materials) names the
// base as a purl with a `digest` qualifier only when FROM had a digest.
#[tokio::test]
async fn buildkit_provenance_with_and_without_a_digest_in_from() {
    let hex = D.trim_start_matches("sha256:");
    let tagged = serde_json::json!({
        "buildType": "https://mobyproject.org/buildkit@v1",
        "materials": [{"uri": "pkg:docker/alpine@3.20?platform=linux%2Famd64", "digest": {"sha256": hex}}],
    });
    let r = judge_artifact(&buildkit_index(app(), SLSA_V02, tagged), None).await;
    let b = base(&r);
    assert_eq!(
        (b["pin"].as_str(), b["evidence"].as_str()),
        (Some("version"), Some("provenance"))
    );
    assert_eq!(b["digest"], D, "the resolved digest is recorded");

    let pinned = serde_json::json!({
        "buildType": "https://mobyproject.org/buildkit@v1",
        "materials": [{"uri": format!("pkg:docker/alpine@3.20?digest=sha256%3A{hex}&platform=linux%2Famd64"), "digest": {"sha256": hex}}],
    });
    let r = judge_artifact(&buildkit_index(app(), SLSA_V02, pinned), None).await;
    assert_eq!(base(&r)["pin"], "digest");
    assert_eq!(
        r.verdict.decision,
        gantry_model::Decision::Allow,
        "{:?}",
        r.findings
    );

    let latest = serde_json::json!({
        "buildDefinition": {"resolvedDependencies": [{"uri": "pkg:docker/alpine@latest?platform=linux%2Famd64", "digest": {"sha256": hex}}]},
    });
    let r = judge_artifact(&buildkit_index(app(), SLSA_V1, latest), None).await;
    assert_eq!(base(&r)["pin"], "floating");
}

// BuildKit mode=max (SLSA v1): the Dockerfile is in the provenance, so the final stage's FROM
// is known among the build's images, and whether it named a digest.
#[tokio::test]
async fn buildkit_mode_max_dockerfile_picks_the_final_stage() {
    let hex = D.trim_start_matches("sha256:");
    let dockerfile = format!(
        "# syntax=docker/dockerfile:1.7\nFROM golang:1.22 AS build\nRUN go build -o /out/app .\nFROM gcr.io/distroless/static-debian12:nonroot@{D}\nCOPY --from=build /out/app /app\n"
    );
    let predicate = serde_json::json!({
        "buildDefinition": {
            "externalParameters": {
                "configSource": {"path": "Dockerfile"},
                "request": {"frontend": "gateway.v0", "args": {"source": "docker/dockerfile:1.7"}},
            },
            "resolvedDependencies": [
                {"uri": "pkg:docker/docker/dockerfile@1.7?platform=linux%2Famd64", "digest": {"sha256": "a".repeat(64)}},
                {"uri": "pkg:docker/golang@1.22?platform=linux%2Famd64", "digest": {"sha256": "b".repeat(64)}},
                {"uri": format!("pkg:docker/gcr.io/distroless/static-debian12@nonroot?digest=sha256%3A{hex}&platform=linux%2Famd64"), "digest": {"sha256": hex}},
            ],
        },
        "runDetails": {"metadata": {"buildkit_metadata": {"source": {"infos": [
            {"filename": "Dockerfile", "language": "Dockerfile", "data": base64::engine::general_purpose::STANDARD.encode(&dockerfile)},
        ]}}}},
    });
    let r = judge_artifact(&buildkit_index(app(), SLSA_V1, predicate.clone()), None).await;
    let b = base(&r);
    assert_eq!(b["pin"], "digest", "{b}");
    assert_eq!(b["repository"], "gcr.io/distroless/static-debian12");
    assert_eq!(b["candidates"], serde_json::Value::Null);
    assert!(
        b["pin_reason"]
            .as_str()
            .unwrap()
            .contains("Dockerfile line 4"),
        "{b}"
    );
    let allowed =
        serde_json::json!({"gantry": {"base_image": {"allowed": ["gcr.io/distroless/"]}}});
    let r = judge_artifact(
        &buildkit_index(app(), SLSA_V1, predicate.clone()),
        Some(allowed),
    )
    .await;
    assert_eq!(
        r.verdict.decision,
        gantry_model::Decision::Allow,
        "{:?}",
        r.findings
    );

    // Without the Dockerfile (mode=min) the two stage images cannot be told apart; the
    // frontend image is left out of the candidates.
    let mut min = predicate;
    min["runDetails"] = serde_json::json!({});
    let r = judge_artifact(&buildkit_index(app(), SLSA_V1, min), None).await;
    let b = base(&r);
    assert_eq!(b["candidates"].as_array().unwrap().len(), 2, "{b}");
    assert_eq!(b["pin"], "version");
}

// Labels only (a Dockerfile LABEL, inherited by images built FROM this one): weaker
// evidence, classified the same way.
#[tokio::test]
async fn labels_only() {
    let r = judge(
        app()
            .label(BASE_NAME, "docker.io/library/node:18.17.1-alpine3.18")
            .label(BASE_DIGEST, D),
    )
    .await;
    let b = base(&r);
    assert_eq!(
        (b["pin"].as_str(), b["evidence"].as_str()),
        (Some("version"), Some("label"))
    );
    assert_eq!(
        b["location"]["field"],
        "config.Labels[\"org.opencontainers.image.base.name\"]"
    );
}

// Docker's legacy builder: a v2s2 manifest has no annotations, and nothing else is recorded.
#[tokio::test]
async fn docker_v2s2_without_annotations_is_unknown() {
    let r = judge(app().media_types(MediaTypes::Docker)).await;
    let b = base(&r);
    assert_eq!(
        (b["pin"].as_str(), b["evidence"].as_str()),
        (Some("unknown"), Some("none"))
    );
    assert_eq!(r.verdict.decision, gantry_model::Decision::Allow);
    assert!(codes(&r.verdict.warnings).contains(&"base-image-unknown".to_string()));
    let allowed =
        serde_json::json!({"gantry": {"base_image": {"allowed": ["docker.io/library/"]}}});
    let r = judge_artifact(
        &app().media_types(MediaTypes::Docker).build().unwrap(),
        Some(allowed),
    )
    .await;
    assert!(codes(&r.verdict.violations).contains(&"base-not-approved".to_string()));
}

// The form the serve and admission tests use keeps its class: a tag with a digest.
#[tokio::test]
async fn name_with_tag_and_digest_is_a_digest() {
    let r = judge(app().annotation(
        BASE_NAME,
        "gcr.io/distroless/static-debian12:nonroot@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ))
    .await;
    assert_eq!(base(&r)["pin"], "digest");
    assert_eq!(
        r.verdict.decision,
        gantry_model::Decision::Allow,
        "{:?}",
        r.findings
    );
    let other =
        serde_json::json!({"gantry": {"base_image": {"allowed": ["docker.io/library/debian"]}}});
    let image = app()
        .annotation(BASE_NAME, "gcr.io/distroless/static-debian12:nonroot@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        .build()
        .unwrap();
    let r = judge_artifact(&image, Some(other)).await;
    assert!(
        message(&r, "base-not-approved")
            .contains("gcr.io/distroless/static-debian12 is not allowed")
    );
}
