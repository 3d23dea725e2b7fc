//! The harness against Debian's docker-registry: push, read back, auth, faults, cleanup.

use std::time::Duration;

use gantry_model::oci::{Compression, media_type};
use gantry_testkit::{
    Artifact, Auth, Error, Fault, FaultyRegistry, ImageBuilder, IndexBuilder, LayerBuilder,
    MediaTypes, RegistryClient, RegistryHarness,
};

fn image(m: MediaTypes, marker: &str) -> gantry_testkit::BuiltImage {
    ImageBuilder::new()
        .media_types(m)
        .layer(
            LayerBuilder::new(Compression::Gzip).file("etc/os-release", format!("ID={marker}\n")),
        )
        .layer(LayerBuilder::new(Compression::Zstd).whiteout("etc/shadow"))
        .layer(LayerBuilder::new(Compression::None).file("app", "bin"))
        .build()
        .unwrap()
}

#[test]
fn pushed_image_reads_back_with_the_same_digest() {
    let registry = RegistryHarness::start().unwrap();
    for (m, repo) in [
        (MediaTypes::Oci, "gantry/oci"),
        (MediaTypes::Docker, "gantry/docker"),
    ] {
        let img = image(m, repo);
        let pushed = img.push(&registry, repo, Some("v1"), None).unwrap();
        assert_eq!(pushed.digest, img.manifest_digest);
        assert_eq!(
            pushed.by_tag.as_deref(),
            Some(registry.reference(repo, "v1").as_str())
        );
        let client = registry.client();
        let got = client.get_manifest(repo, "v1").unwrap();
        assert_eq!(
            got.digest.as_ref(),
            Some(&img.manifest_digest),
            "{}",
            registry.log_tail()
        );
        assert_eq!(got.bytes, img.manifest);
        assert_eq!(got.media_type, img.manifest_media_type);
        for l in &img.layers {
            assert_eq!(
                client.get_blob(repo, &l.digest).unwrap(),
                l.blob().to_vec().unwrap()
            );
        }
        assert_eq!(
            client.get_blob(repo, &img.config_digest).unwrap(),
            img.config
        );
        // A second push finds every blob already there.
        img.push(&registry, repo, Some("v2"), None).unwrap();
    }
}

#[test]
fn pushed_index_reads_back_with_children_and_attestation() {
    let registry = RegistryHarness::start().unwrap();
    let amd = image(MediaTypes::Oci, "amd");
    let arm = ImageBuilder::new()
        .platform("linux/arm64/v8".parse().unwrap())
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/os-release", "ID=arm\n"))
        .build()
        .unwrap();
    let index = IndexBuilder::new()
        .image(amd)
        .image(arm)
        .attestation_for(0)
        .attestation_for(1)
        .build()
        .unwrap();
    let pushed = index
        .push(&registry, "gantry/multi", Some("latest"), None)
        .unwrap();
    assert_eq!(pushed.digest, index.digest);
    let client = registry.client();
    let got = client.get_manifest("gantry/multi", "latest").unwrap();
    assert_eq!(got.digest.as_ref(), Some(&index.digest));
    assert_eq!(got.media_type, media_type::OCI_INDEX);
    for child in index.children() {
        let c = client
            .get_manifest("gantry/multi", &child.manifest_digest.to_string())
            .unwrap();
        assert_eq!(c.bytes, child.manifest);
    }

    let docker = IndexBuilder::new()
        .media_types(MediaTypes::Docker)
        .image(image(MediaTypes::Docker, "d"))
        .build()
        .unwrap();
    docker
        .push(&registry, "gantry/list", Some("v1"), None)
        .unwrap();
    let got = client.get_manifest("gantry/list", "v1").unwrap();
    assert_eq!(got.media_type, media_type::DOCKER_MANIFEST_LIST);
    assert_eq!(got.digest.as_ref(), Some(&docker.digest));

    // Pushed by digest only: no tag.
    let by_digest = image(MediaTypes::Oci, "untagged")
        .push(&registry, "gantry/untagged", None, None)
        .unwrap();
    assert!(by_digest.by_tag.is_none());
    assert!(
        by_digest
            .by_digest
            .ends_with(&format!("gantry/untagged@{}", by_digest.digest))
    );
}

#[test]
fn malformed_manifest_is_refused_by_the_registry() {
    let registry = RegistryHarness::start().unwrap();
    let bad = ImageBuilder::new()
        .raw_manifest(b"{\"schemaVersion\": 2, \"layers\": 7}".to_vec())
        .build()
        .unwrap();
    match bad.push(&registry, "gantry/bad", Some("v1"), None) {
        Err(Error::Http { status, .. }) => assert_eq!(status, 400),
        other => panic!("expected a 400, got {other:?}"),
    }
}

fn assert_anonymous_refused(registry: &RegistryHarness, scheme: &str) {
    let anon = registry.anonymous_client();
    let resp = anon
        .request("GET", "/v2/gantry/private/manifests/v1", &[])
        .unwrap();
    assert_eq!(resp.status, 401);
    let challenge = resp
        .header("www-authenticate")
        .unwrap_or_default()
        .to_string();
    assert!(challenge.starts_with(scheme), "{challenge}");
    assert!(anon.get_manifest("gantry/private", "v1").is_err());
}

#[test]
fn basic_auth_refuses_anonymous_and_accepts_the_user() {
    let registry = RegistryHarness::start_with(Auth::basic("alice", "s3cret")).unwrap();
    let img = image(MediaTypes::Oci, "basic");
    img.push(
        &registry,
        "gantry/private",
        Some("v1"),
        registry.credentials(),
    )
    .unwrap();
    assert_anonymous_refused(&registry, "Basic realm=");
    let got = registry
        .client()
        .get_manifest("gantry/private", "v1")
        .unwrap();
    assert_eq!(got.digest.as_ref(), Some(&img.manifest_digest));
    match img.push(
        &registry,
        "gantry/private",
        Some("v2"),
        Some(("alice", "wrong")),
    ) {
        Err(Error::Http { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(
        img.push(&registry, "gantry/private", Some("v3"), None)
            .is_err()
    );
}

#[test]
fn token_auth_refuses_anonymous_and_accepts_the_user() {
    let registry = RegistryHarness::start_with(Auth::token("bob", "t0ken")).unwrap();
    let img = image(MediaTypes::Oci, "token");
    img.push(
        &registry,
        "gantry/private",
        Some("v1"),
        registry.credentials(),
    )
    .unwrap_or_else(|e| panic!("{e}: {e:?}\n{}", registry.log_tail()));
    assert_anonymous_refused(&registry, "Bearer realm=\"http://127.0.0.1:");
    let challenge = registry
        .anonymous_client()
        .request("GET", "/v2/gantry/private/manifests/v1", &[])
        .unwrap()
        .header("www-authenticate")
        .unwrap()
        .to_string();
    assert!(challenge.contains("service=\"gantry-test\""), "{challenge}");
    assert!(
        challenge.contains("scope=\"repository:gantry/private:pull\""),
        "{challenge}"
    );
    let got = registry
        .client()
        .get_manifest("gantry/private", "v1")
        .unwrap();
    assert_eq!(got.digest.as_ref(), Some(&img.manifest_digest));
    // Wrong password: the token server says 401, so the registry's 401 stands.
    let wrong = RegistryClient::new(&registry, Some(("bob", "nope")));
    assert!(matches!(
        wrong.get_manifest("gantry/private", "v1"),
        Err(Error::Http { status: 401, .. })
    ));
    assert!(
        img.push(
            &registry,
            "gantry/private",
            Some("v2"),
            Some(("bob", "nope"))
        )
        .is_err()
    );
}

#[test]
fn dropping_the_harness_stops_the_registry() {
    let registry = RegistryHarness::start().unwrap();
    let addr = registry.addr();
    let dir = registry.dir().to_path_buf();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    registry.stop();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    assert!(!dir.exists());
}

#[test]
fn faulty_registry_answers_badly() {
    for code in [500, 404, 401] {
        let faulty = FaultyRegistry::start(Fault::Status(code)).unwrap();
        let client = RegistryClient::new(&faulty, Some(("u", "p")));
        match client.get_manifest("a/b", "v1") {
            Err(Error::Http { status, .. }) => assert_eq!(status, code),
            other => panic!("expected {code}, got {other:?}"),
        }
        assert_eq!(
            faulty.requests(),
            1,
            "a 401 without challenge is not retried"
        );
    }
    let closed = FaultyRegistry::start(Fault::Close).unwrap();
    assert!(matches!(
        RegistryClient::new(&closed, None).get_manifest("a/b", "v1"),
        Err(Error::Transport { .. })
    ));

    for fault in [
        Fault::Hang,
        Fault::Slow {
            interval: Duration::from_millis(200),
        },
    ] {
        let slow = FaultyRegistry::start(fault).unwrap();
        let client = RegistryClient::with_timeout(&slow, None, Duration::from_millis(500));
        let started = std::time::Instant::now();
        assert!(matches!(
            client.get_manifest("a/b", "v1"),
            Err(Error::Transport { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn notifications_reach_the_configured_endpoint() {
    let receiver = FaultyRegistry::start(Fault::Status(202)).unwrap();
    let registry = RegistryHarness::start_with_options(gantry_testkit::RegistryOptions {
        notify_url: Some(format!("{}/webhooks/distribution", receiver.url())),
        ..Default::default()
    })
    .unwrap();
    image(MediaTypes::Oci, "notify")
        .push(&registry, "gantry/notify", Some("v1"), None)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while receiver.requests() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        receiver.requests() > 0,
        "no event delivered\n{}",
        registry.log_tail()
    );
}
