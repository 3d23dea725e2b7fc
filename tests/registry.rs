use std::fs;

use gantry_model::Platform;
use gantry_model::oci::Compression;
use gantry_testkit::{
    Artifact, Auth, Fault, FaultyRegistry, ImageBuilder, IndexBuilder, LayerBuilder,
    RegistryHarness,
};

use crate::util::{demo_image, expect_error, gantry_env, inspect_json, stderr, stdout};

#[test]
fn inspect_by_tag_digest_and_both() {
    let registry = RegistryHarness::start().unwrap();
    let image = demo_image();
    let pushed = image
        .push(&registry, "team/demo", Some("v1"), None)
        .unwrap();
    assert_eq!(pushed.digest, image.manifest_digest);
    let cache = tempfile::tempdir().unwrap();

    let by_tag = inspect_json(cache.path(), &registry.reference("team/demo", "v1"), &[]);
    assert_eq!(
        by_tag["manifest"]["digest"],
        image.manifest_digest.to_string()
    );
    assert_eq!(by_tag["config"]["user"], "app");
    assert_eq!(
        by_tag["layers"][2]["whiteouts"],
        serde_json::json!(["app/.env", "app/build"])
    );

    let by_digest = format!("{}/team/demo@{}", registry.host(), image.manifest_digest);
    let r = inspect_json(cache.path(), &by_digest, &[]);
    assert_eq!(r["manifest"]["digest"], image.manifest_digest.to_string());

    let both = format!("{}/team/demo:v1@{}", registry.host(), image.manifest_digest);
    let r = inspect_json(cache.path(), &both, &["--no-cache"]);
    assert_eq!(r["config"]["digest"], image.config_digest.to_string());
    assert_eq!(r["layers"][0]["source"], "walked");
}

#[test]
fn index_in_registry_selects_platform() {
    let registry = RegistryHarness::start().unwrap();
    let mk = |arch: &str| {
        ImageBuilder::new()
            .platform(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: None,
            })
            .layer(LayerBuilder::new(Compression::Zstd).file("arch", arch))
            .build()
            .unwrap()
    };
    let index = IndexBuilder::new()
        .image(mk("amd64"))
        .image(mk("arm64"))
        .attestation_for(1)
        .build()
        .unwrap();
    index.push(&registry, "multi", Some("1.0"), None).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reference = registry.reference("multi", "1.0");
    let arm = inspect_json(cache.path(), &reference, &["--platform", "linux/arm64"]);
    assert_eq!(arm["platform"], "linux/arm64");
    assert_eq!(
        arm["manifest"]["digest"],
        index.images[1].manifest_digest.to_string()
    );
    assert_eq!(arm["index"]["digest"], index.digest.to_string());
    let all = inspect_json(cache.path(), &reference, &["--all-platforms"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[test]
fn missing_tag_and_repository_are_not_found() {
    let registry = RegistryHarness::start().unwrap();
    demo_image()
        .push(&registry, "team/demo", Some("v1"), None)
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    for reference in [
        registry.reference("team/demo", "nope"),
        registry.reference("team/absent", "v1"),
    ] {
        let err = expect_error(cache.path(), &["inspect", &reference]);
        assert!(err.to_lowercase().contains("not found"), "{err}");
    }
}

fn docker_config(
    dir: &std::path::Path,
    host: &str,
    user: &str,
    password: &str,
) -> std::path::PathBuf {
    use std::io::Write;

    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("config.json");
    let mut f = fs::File::create(&path).unwrap();
    write!(f, r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#).unwrap();
    path
}

#[test]
fn authenticated_registries_basic_and_token() {
    for auth in [Auth::basic("ci", "s3cret"), Auth::token("ci", "s3cret")] {
        let registry = RegistryHarness::start_with(auth.clone()).unwrap();
        let image = demo_image();
        image
            .push(&registry, "private/app", Some("v1"), Some(("ci", "s3cret")))
            .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let reference = registry.reference("private/app", "v1");

        // Anonymous: refused, with a message that says so.
        let err = expect_error(cache.path(), &["inspect", &reference]);
        assert!(
            err.contains("refused access to private/app"),
            "{auth:?}: {err}"
        );

        // Wrong password: refused.
        let out = gantry_env(
            cache.path(),
            &["inspect", &reference],
            &[
                ("GANTRY_REGISTRY_USERNAME", "ci"),
                ("GANTRY_REGISTRY_PASSWORD", "wrong"),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{auth:?}: {}", stdout(&out));

        // Credentials from the environment.
        let out = gantry_env(
            cache.path(),
            &["inspect", &reference, "--format", "json", "--no-cache"],
            &[
                ("GANTRY_REGISTRY_USERNAME", "ci"),
                ("GANTRY_REGISTRY_PASSWORD", "s3cret"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{auth:?}: {}", stderr(&out));

        // Credentials from a Docker config file ($DOCKER_CONFIG/config.json).
        let conf = tempfile::tempdir().unwrap();
        docker_config(conf.path(), &registry.host(), "ci", "s3cret");
        let out = gantry_env(
            cache.path(),
            &["inspect", &reference, "--format", "json", "--no-cache"],
            &[("DOCKER_CONFIG", conf.path().to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(0), "{auth:?}: {}", stderr(&out));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["manifest"]["digest"], image.manifest_digest.to_string());
    }
}

#[test]
fn broken_registries_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let server_error = FaultyRegistry::start(Fault::Status(500)).unwrap();
    let err = expect_error(
        cache.path(),
        &["inspect", &server_error.reference("a/b", "v1")],
    );
    assert!(err.contains("500"), "{err}");

    let unauthorized = FaultyRegistry::start(Fault::Status(401)).unwrap();
    let err = expect_error(
        cache.path(),
        &["inspect", &unauthorized.reference("a/b", "v1")],
    );
    assert!(err.contains("refused access to a/b"), "{err}");

    let closed = FaultyRegistry::start(Fault::Close).unwrap();
    expect_error(cache.path(), &["inspect", &closed.reference("a/b", "v1")]);
}

/// An image's own base-image annotation names a host on this machine: the CLI's base lookup
/// must not connect there (only the named image's registry is allowed whatever its address)
/// unless `--allow-registry` lists it.
#[test]
fn base_lookup_reaches_a_label_named_host_only_when_allowed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let registry = RegistryHarness::start().unwrap();
    // Stands in for a service on loopback: counts connections and hangs up at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                accepted.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
    }
    let image = ImageBuilder::new()
        .annotation(
            "org.opencontainers.image.base.name",
            &format!("127.0.0.1:{port}/base:1"),
        )
        .annotation(
            "org.opencontainers.image.base.digest",
            &gantry_testkit::sha256(b"base").to_string(),
        )
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/hostname", "x"))
        .build()
        .unwrap();
    image
        .push(&registry, "team/based", Some("v1"), None)
        .unwrap();
    let reference = registry.reference("team/based", "v1");
    let cache = tempfile::tempdir().unwrap();

    let out = crate::util::gantry(cache.path(), &["scan", &reference, "--format", "json"]);
    assert!(
        stdout(&out).contains(&image.manifest_digest.to_string()),
        "the image itself was scanned: {}",
        stderr(&out)
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "{}", stderr(&out));

    let allow = format!("127.0.0.1:{port}");
    let out = crate::util::gantry(
        cache.path(),
        &[
            "scan",
            &reference,
            "--format",
            "json",
            "--allow-registry",
            &allow,
        ],
    );
    assert!(
        stdout(&out).contains(&image.manifest_digest.to_string()),
        "{}",
        stderr(&out)
    );
    assert!(
        accepted.load(Ordering::SeqCst) > 0,
        "the listed host was asked"
    );

    let err = expect_error(
        cache.path(),
        &[
            "inspect",
            &reference,
            "--allow-registry",
            "https://x.example",
        ],
    );
    assert!(
        err.contains("--allow-registry") && err.contains("scheme"),
        "{err}"
    );
}
