use std::fs;
use std::path::Path;

use gantry_model::Platform;
use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, ImageBuilder, IndexBuilder, LayerBuilder, MediaTypes};

use crate::util::{demo_fixture, demo_image, expect_error, gantry, inspect_json, stderr, stdout};

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The committed demo image must be exactly what the recipe builds. Regenerate with
/// `GANTRY_BLESS=1 cargo test --test integration demo_fixture`.
#[test]
fn demo_fixture_is_up_to_date() {
    let image = demo_image();
    if std::env::var_os("GANTRY_BLESS").is_some() {
        let _ = fs::remove_dir_all(demo_fixture());
        image
            .write_oci_layout(&demo_fixture(), Some("latest"))
            .unwrap();
    }
    let fresh = tempfile::tempdir().unwrap();
    image
        .write_oci_layout(fresh.path(), Some("latest"))
        .unwrap();
    assert!(
        files_under(fresh.path()) == files_under(&demo_fixture()),
        "tests/fixtures/demo is stale: run GANTRY_BLESS=1 cargo test --test integration demo_fixture"
    );
}

#[test]
fn inspect_demo_reports_manifest_config_layers_and_whiteouts() {
    let cache = tempfile::tempdir().unwrap();
    let image = demo_image();
    let fixture = format!("oci:{}:latest", demo_fixture().display());
    let r = inspect_json(cache.path(), &fixture, &[]);

    assert_eq!(r["manifest"]["digest"], image.manifest_digest.to_string());
    assert_eq!(
        r["manifest"]["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        r["manifest"]["annotations"]["org.opencontainers.image.base.name"],
        "docker.io/library/debian:bookworm-slim"
    );
    assert_eq!(r["config"]["digest"], image.config_digest.to_string());
    assert_eq!(r["config"]["user"], "app");
    assert_eq!(
        r["config"]["entrypoint"],
        serde_json::json!(["/app/server"])
    );
    assert_eq!(
        r["config"]["cmd"],
        serde_json::json!(["--config", "/app/config.yaml"])
    );
    assert_eq!(r["config"]["working_dir"], "/app");
    assert_eq!(
        r["config"]["exposed_ports"],
        serde_json::json!(["8080/tcp"])
    );
    assert_eq!(
        r["config"]["labels"]["org.opencontainers.image.title"],
        "gantry-demo"
    );
    assert_eq!(r["config"]["history"].as_array().unwrap().len(), 4);
    assert_eq!(r["os"]["id"], "debian");
    assert_eq!(r["os"]["version_id"], "12");
    assert_eq!(r["platform"], "linux/amd64");
    assert_eq!(r["complete"], true);

    let layers = r["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (l, built) in layers.iter().zip(&image.layers) {
        assert_eq!(l["digest"], built.digest.to_string());
        assert_eq!(l["diff_id"], built.diff_id.to_string());
        assert_eq!(l["media_type"], built.media_type);
        assert_eq!(l["compressed_size"], built.size);
        assert_eq!(l["source"], "walked");
    }
    assert_eq!(
        layers[0]["media_type"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layers[1]["media_type"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // The testkit writes exactly the entries of the recipe (no implied parent directories).
    assert_eq!(layers[0]["files"], 7);
    assert_eq!(layers[1]["files"], 4);
    assert_eq!(
        layers[2]["whiteouts"],
        serde_json::json!(["app/.env", "app/build"])
    );
    assert_eq!(layers[2]["files"], 0);
    assert_eq!(layers[0]["created_by"], "ADD rootfs.tar.gz / # buildkit");
    assert_eq!(
        layers[1]["created_by"],
        "COPY --chown=app:app app /app # buildkit"
    );
    assert_eq!(
        layers[2]["created_by"],
        "RUN rm -rf /app/.env /app/build # buildkit"
    );

    let t = &r["totals"];
    assert_eq!(t["layers"], 3);
    // .env and build/main.o are hidden in the final filesystem but still ship in layer 1.
    assert_eq!(t["deleted_entries"], 2);
    assert_eq!(t["overwritten_entries"], 0);
    assert_eq!(t["final_paths"], 9);
    assert_eq!(
        t["hidden_bytes"],
        4096 + "API_TOKEN=not-a-real-token\n".len() as u64
    );
    let sum: u64 = image.layers.iter().map(|l| l.size).sum();
    assert_eq!(t["compressed_size"], sum);
}

#[test]
fn inspect_table_is_readable() {
    let cache = tempfile::tempdir().unwrap();
    let fixture = format!("oci:{}", demo_fixture().display());
    let out = gantry(cache.path(), &["inspect", &fixture]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "Manifest     sha256:",
        "User         app",
        "OS           Debian GNU/Linux 12 (bookworm)",
        "Entrypoint   [\"/app/server\"]",
        "COPY --chown=app:app app /app # buildkit",
        "tar+zstd",
        "Whiteouts in layer 2",
        "  app/.env",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn archives_give_the_same_image_as_the_layout() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = demo_image();
    let oci_tar = dir.path().join("demo-oci.tar");
    let docker_tar = dir.path().join("demo-docker.tar");
    image.write_oci_archive(&oci_tar, Some("v1")).unwrap();
    image
        .write_docker_archive(&docker_tar, Some("team/demo:v1"))
        .unwrap();

    let from_oci = inspect_json(
        cache.path(),
        &format!("oci-archive:{}:v1", oci_tar.display()),
        &["--no-cache"],
    );
    assert_eq!(
        from_oci["manifest"]["digest"],
        image.manifest_digest.to_string()
    );

    for reference in [
        format!("docker-archive:{}", docker_tar.display()),
        format!("docker-archive:{}:team/demo:v1", docker_tar.display()),
    ] {
        let from_docker = inspect_json(cache.path(), &reference, &["--no-cache"]);
        // A docker-archive has no registry manifest; the config (the image ID) and the
        // uncompressed layers are the same image.
        assert_eq!(
            from_docker["config"]["digest"],
            image.config_digest.to_string()
        );
        let diff_ids: Vec<_> = from_docker["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["diff_id"].clone())
            .collect();
        let want: Vec<_> = image
            .layers
            .iter()
            .map(|l| serde_json::json!(l.diff_id.to_string()))
            .collect();
        assert_eq!(diff_ids, want);
        assert_eq!(
            from_docker["layers"][2]["whiteouts"],
            serde_json::json!(["app/.env", "app/build"])
        );
        assert_eq!(from_docker["os"]["id"], "debian");
    }

    let err = expect_error(
        cache.path(),
        &[
            "inspect",
            &format!("docker-archive:{}:team/other:v9", docker_tar.display()),
        ],
    );
    assert!(err.contains("team/other"), "{err}");
}

fn two_platform_index() -> gantry_testkit::BuiltIndex {
    let mk = |arch: &str, variant: Option<&str>| {
        ImageBuilder::new()
            .media_types(MediaTypes::Docker)
            .platform(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            })
            .user("65534:65534")
            .layer(LayerBuilder::new(Compression::Gzip).file(&format!("etc/arch-{arch}"), arch))
            .build()
            .unwrap()
    };
    IndexBuilder::new()
        .media_types(MediaTypes::Docker)
        .image(mk("amd64", None))
        .image(mk("arm64", Some("v8")))
        .attestation_for(0)
        .build()
        .unwrap()
}

#[test]
fn index_picks_platform_or_walks_all() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let index = two_platform_index();
    index.write_oci_layout(dir.path(), Some("multi")).unwrap();
    let reference = format!("oci:{}:multi", dir.path().display());

    let arm = inspect_json(cache.path(), &reference, &["--platform", "linux/arm64"]);
    assert_eq!(arm["platform"], "linux/arm64/v8");
    assert_eq!(
        arm["index"]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
    assert_eq!(
        arm["manifest"]["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    let all = inspect_json(cache.path(), &reference, &["--all-platforms"]);
    let platforms: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["platform"].clone())
        .collect();
    assert_eq!(
        platforms,
        vec![
            serde_json::json!("linux/amd64"),
            serde_json::json!("linux/arm64/v8")
        ]
    );

    let err = expect_error(
        cache.path(),
        &["inspect", &reference, "--platform", "linux/s390x"],
    );
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
}

#[test]
fn unknown_layer_media_type_is_reported_not_guessed() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("a", "a"))
        .layer(LayerBuilder::new(Compression::Gzip).file("b", "b"))
        .layer_media_type_override(1, "application/vnd.example.weird+gzip")
        .build()
        .unwrap()
        .write_oci_layout(dir.path(), None)
        .unwrap();
    let r = inspect_json(cache.path(), &format!("oci:{}", dir.path().display()), &[]);
    assert_eq!(r["complete"], false);
    assert_eq!(r["layers"][1]["source"], "skipped");
    assert!(
        r["layers"][1]["skipped"]
            .as_str()
            .unwrap()
            .contains("application/vnd.example.weird+gzip")
    );
    assert_eq!(r["layers"][0]["source"], "walked");
}

#[test]
fn usage_errors_exit_2() {
    let cache = tempfile::tempdir().unwrap();
    for args in [
        vec!["inspect"],
        vec!["inspect", "Uppercase/Repo"],
        vec!["inspect", "alpine", "--platform", "linux"],
        vec!["inspect", "alpine", "--format", "xml"],
    ] {
        let out = gantry(cache.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let err = expect_error(cache.path(), &["inspect", "oci:/nonexistent/layout"]);
    assert!(err.contains("/nonexistent/layout"), "{err}");
}
