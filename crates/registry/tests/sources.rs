//! gantry-registry against real images: OCI layouts, oci-archives and docker-archives written by
//! gantry-testkit, and a real registry (Debian's docker-registry) started by its harness, plus a
//! few misbehaving servers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_model::oci::{Compression, DocumentKind, media_type};
use gantry_model::{Digest, Platform};
use gantry_registry::{
    AllowRule, Egress, FetchLimits, HostResolver, ImageSource, RegistryError, ResolvedImage,
    SourceOptions, SourceRef, open, resolve_all_platforms, resolve_one,
};
use gantry_testkit::{
    Artifact, Auth, BuiltImage, BuiltIndex, DockerArchiveStyle, Fault, FaultyRegistry,
    ImageBuilder, IndexBuilder, LayerBuilder, MediaTypes, RegistryHarness, sha256,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Helpers

fn image(marker: &str) -> BuiltImage {
    ImageBuilder::new()
        .layer(
            LayerBuilder::new(Compression::Gzip).file("etc/os-release", format!("ID={marker}\n")),
        )
        .layer(LayerBuilder::new(Compression::Zstd).whiteout("etc/shadow"))
        .layer(LayerBuilder::new(Compression::None).file("app", "bin"))
        .build()
        .unwrap()
}

fn image_for(platform: &str, marker: &str) -> BuiltImage {
    ImageBuilder::new()
        .platform(platform.parse().unwrap())
        .layer(
            LayerBuilder::new(Compression::Gzip).file("etc/os-release", format!("ID={marker}\n")),
        )
        .build()
        .unwrap()
}

fn two_platforms() -> BuiltIndex {
    IndexBuilder::new()
        .image(image_for("linux/amd64", "amd"))
        .image(image_for("linux/arm64/v8", "arm"))
        .attestation_for(0)
        .attestation_for(1)
        .build()
        .unwrap()
}

fn platform(s: &str) -> Platform {
    s.parse().unwrap()
}

/// The harness registries and stubs are on 127.0.0.1: list it, as a deployment lists its
/// private registries (the default policy refuses loopback).
fn opts() -> SourceOptions {
    SourceOptions {
        egress: Egress::allowlist(vec!["127.0.0.1".parse().unwrap()]),
        ..SourceOptions::default()
    }
}

fn short_limits() -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
        request_timeout_manifest: Duration::from_secs(3),
        ..FetchLimits::default()
    }
}

async fn open_str(
    s: &str,
    opts: &SourceOptions,
) -> Result<std::sync::Arc<dyn ImageSource>, RegistryError> {
    open(&s.parse::<SourceRef>()?, opts).await
}

async fn resolve_str(
    s: &str,
    opts: &SourceOptions,
    p: Option<&Platform>,
) -> Result<ResolvedImage, RegistryError> {
    let src = open_str(s, opts).await?;
    resolve_one(src.as_ref(), p).await
}

fn code<T>(r: Result<T, RegistryError>) -> &'static str {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

async fn read_blob(src: &dyn ImageSource, desc: &gantry_model::oci::Descriptor) -> Vec<u8> {
    let mut out = Vec::new();
    src.blob(desc)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

/// Checks a resolved image against the built one, streaming every layer.
async fn assert_same_image(src: &dyn ImageSource, got: &ResolvedImage, want: &BuiltImage) {
    assert_eq!(got.manifest_digest, want.manifest_digest);
    assert_eq!(got.manifest_media_type, want.manifest_media_type);
    assert_eq!(got.config_digest, want.config_digest);
    assert_eq!(got.config_bytes, want.config);
    assert_eq!(got.platform, want.platform);
    assert_eq!(got.manifest.layers.len(), want.layers.len());
    for (desc, layer) in got.manifest.layers.iter().zip(&want.layers) {
        assert_eq!(desc.digest, layer.digest);
        let bytes = read_blob(src, desc).await;
        assert_eq!(bytes, layer.blob().to_vec().unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// OCI layout and oci-archive

#[tokio::test]
async fn oci_layout_by_tag_and_alone() {
    let img = image("layout");
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), Some("v1")).unwrap();
    let d = dir.path().display();
    for s in [format!("oci:{d}:v1"), format!("oci:{d}")] {
        let src = open_str(&s, &opts()).await.unwrap();
        assert_eq!(src.describe(), s);
        assert!(src.reference().is_none());
        let got = resolve_one(src.as_ref(), None).await.unwrap();
        assert_same_image(src.as_ref(), &got, &img).await;
        assert_eq!(got.source, s);
        assert!(got.index.is_none());
    }
}

#[tokio::test]
async fn oci_layout_missing_tag_names_the_tags() {
    let dir = tempfile::tempdir().unwrap();
    image("t").write_oci_layout(dir.path(), Some("v1")).unwrap();
    let err = resolve_str(&format!("oci:{}:v2", dir.path().display()), &opts(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { what: "tag", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("v1"), "{err}");
}

#[tokio::test]
async fn oci_layout_with_several_images_needs_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let a = image("a");
    let b = image("b");
    a.write_oci_layout(dir.path(), Some("a")).unwrap();
    let a_index = std::fs::read(dir.path().join("index.json")).unwrap();
    b.write_oci_layout(dir.path(), Some("b")).unwrap();
    let b_index = std::fs::read(dir.path().join("index.json")).unwrap();
    // Merge the two index.json files into one with both entries.
    let mut merged: serde_json::Value = serde_json::from_slice(&a_index).unwrap();
    let b_value: serde_json::Value = serde_json::from_slice(&b_index).unwrap();
    let entry = b_value["manifests"][0].clone();
    merged["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&merged).unwrap(),
    )
    .unwrap();

    let d = dir.path().display();
    let err = resolve_str(&format!("oci:{d}"), &opts(), None)
        .await
        .unwrap_err();
    match &err {
        RegistryError::Ambiguous { available, .. } => assert_eq!(available, &["a", "b"]),
        other => panic!("{other}"),
    }
    let got = resolve_str(&format!("oci:{d}:b"), &opts(), None)
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, b.manifest_digest);
}

#[tokio::test]
async fn oci_archive_is_read_in_place() {
    let img = image("archive");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("img.tar");
    img.write_oci_archive(&file, Some("latest")).unwrap();
    for s in [
        format!("oci-archive:{}:latest", file.display()),
        format!("oci-archive:{}", file.display()),
    ] {
        let src = open_str(&s, &opts()).await.unwrap();
        let got = resolve_one(src.as_ref(), None).await.unwrap();
        assert_same_image(src.as_ref(), &got, &img).await;
    }
    // A directory is not an archive, an archive not a directory.
    assert_eq!(
        code(open_str(&format!("oci:{}", file.display()), &opts()).await),
        "malformed-image"
    );
    assert_eq!(
        code(open_str(&format!("oci-archive:{}", dir.path().display()), &opts()).await),
        "io-error"
    );
}

#[tokio::test]
async fn oci_layout_index_picks_the_platform() {
    let index = two_platforms();
    let dir = tempfile::tempdir().unwrap();
    index.write_oci_layout(dir.path(), Some("multi")).unwrap();
    let file = dir.path().join("multi.tar");
    index.write_oci_archive(&file, Some("multi")).unwrap();
    for s in [
        format!("oci:{}:multi", dir.path().display()),
        format!("oci-archive:{}:multi", file.display()),
    ] {
        let src = open_str(&s, &opts()).await.unwrap();
        assert_eq!(src.root().await.unwrap().kind, DocumentKind::Index);

        let arm = resolve_one(src.as_ref(), Some(&platform("linux/arm64")))
            .await
            .unwrap();
        assert_same_image(src.as_ref(), &arm, &index.images[1]).await;
        assert_eq!(arm.platform, platform("linux/arm64/v8"));
        let info = arm.index.as_ref().unwrap();
        assert_eq!(info.digest, index.digest);
        assert_eq!(
            info.platforms,
            vec![platform("linux/amd64"), platform("linux/arm64/v8")]
        );

        let amd = resolve_one(src.as_ref(), Some(&platform("linux/amd64")))
            .await
            .unwrap();
        assert_eq!(amd.manifest_digest, index.images[0].manifest_digest);

        let err = resolve_one(src.as_ref(), Some(&platform("linux/s390x")))
            .await
            .unwrap_err();
        match &err {
            RegistryError::NoMatchingPlatform { wanted, available } => {
                assert_eq!(wanted, &platform("linux/s390x"));
                assert_eq!(
                    available,
                    &[platform("linux/amd64"), platform("linux/arm64/v8")]
                );
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("linux/arm64/v8"), "{err}");

        // Attestations are not images.
        let all = resolve_all_platforms(src.as_ref()).await.unwrap();
        let digests: Vec<&Digest> = all.iter().map(|i| &i.manifest_digest).collect();
        assert_eq!(
            digests,
            vec![
                &index.images[0].manifest_digest,
                &index.images[1].manifest_digest
            ]
        );
    }
}

#[tokio::test]
async fn nested_indexes_are_followed() {
    let inner = two_platforms();
    let dir = tempfile::tempdir().unwrap();
    inner.write_oci_layout(dir.path(), None).unwrap();
    // An outer index whose only entry is the inner index (no platform).
    let outer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": [{"mediaType": media_type::OCI_INDEX, "digest": inner.digest.to_string(), "size": inner.index.len()}],
    });
    let outer_bytes = serde_json::to_vec(&outer).unwrap();
    let outer_digest = sha256(&outer_bytes);
    std::fs::write(
        dir.path().join("blobs/sha256").join(outer_digest.hex()),
        &outer_bytes,
    )
    .unwrap();
    let index_json = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type::OCI_INDEX, "digest": outer_digest.to_string(), "size": outer_bytes.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "nested"}}],
    });
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&index_json).unwrap(),
    )
    .unwrap();
    let s = format!("oci:{}:nested", dir.path().display());
    let got = resolve_str(&s, &opts(), Some(&platform("linux/arm64")))
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, inner.images[1].manifest_digest);
    let info = got.index.unwrap();
    assert_eq!(info.digest, outer_digest);
    assert_eq!(info.platforms.len(), 2);
    let src = open_str(&s, &opts()).await.unwrap();
    assert_eq!(resolve_all_platforms(src.as_ref()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn untagged_multi_platform_index_json_is_the_index() {
    // Some tools write a multi-platform image's manifests straight into index.json.
    let index = two_platforms();
    let dir = tempfile::tempdir().unwrap();
    index.write_oci_layout(dir.path(), None).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&index.index).unwrap();
    let images_only: Vec<_> = body["manifests"].as_array().unwrap()[..2].to_vec();
    let flat = serde_json::json!({"schemaVersion": 2, "manifests": images_only});
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&flat).unwrap(),
    )
    .unwrap();
    let got = resolve_str(
        &format!("oci:{}", dir.path().display()),
        &opts(),
        Some(&platform("linux/arm64")),
    )
    .await
    .unwrap();
    assert_eq!(got.manifest_digest, index.images[1].manifest_digest);
}

#[tokio::test]
async fn damaged_layouts_fail_precisely() {
    let d = |dir: &tempfile::TempDir| format!("oci:{}", dir.path().display());

    // A manifest blob whose bytes were changed.
    let img = image("damaged");
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), None).unwrap();
    let path = dir
        .path()
        .join("blobs/sha256")
        .join(img.manifest_digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] = b' ';
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        code(resolve_str(&d(&dir), &opts(), None).await),
        "digest-mismatch"
    );

    // A manifest that is not JSON.
    let bad = ImageBuilder::new()
        .raw_manifest(b"{\"schemaVersion\": 2,".to_vec())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    bad.write_oci_layout(dir.path(), None).unwrap();
    assert_eq!(
        code(resolve_str(&d(&dir), &opts(), None).await),
        "invalid-json"
    );

    // Layers and diff IDs of different lengths; rootfs of another type.
    for patch in [
        serde_json::json!({"rootfs": {"diff_ids": []}}),
        serde_json::json!({"rootfs": {"type": "zfs"}}),
    ] {
        let bad = ImageBuilder::new()
            .layer(LayerBuilder::new(Compression::Gzip).file("a", "b"))
            .config_override(patch)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        bad.write_oci_layout(dir.path(), None).unwrap();
        let err = resolve_str(&d(&dir), &opts(), None).await.unwrap_err();
        assert_eq!(err.code(), "malformed-image", "{err}");
        assert!(
            err.to_string().contains("diff_ids") || err.to_string().contains("zfs"),
            "{err}"
        );
    }

    // A manifest over the limit.
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), None).unwrap();
    let small = SourceOptions {
        limits: FetchLimits {
            max_manifest_bytes: 100,
            ..FetchLimits::default()
        },
        ..opts()
    };
    let err = resolve_str(&d(&dir), &small, None).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 100, .. }),
        "{err}"
    );

    // A missing blob.
    std::fs::remove_file(
        dir.path()
            .join("blobs/sha256")
            .join(img.config_digest.hex()),
    )
    .unwrap();
    let err = resolve_str(&d(&dir), &opts(), None).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { what: "blob", .. }),
        "{err}"
    );

    // A layer blob symlinked out of the layout.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), None).unwrap();
    let layer = dir
        .path()
        .join("blobs/sha256")
        .join(img.layers[0].digest.hex());
    std::fs::rename(&layer, outside.path().join("l")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("l"), &layer).unwrap();
    let src = open_str(&d(&dir), &opts()).await.unwrap();
    let got = resolve_one(src.as_ref(), None).await.unwrap();
    assert_eq!(
        code(src.blob(&got.manifest.layers[0]).await),
        "malformed-image"
    );

    // Not a layout at all.
    let empty = tempfile::tempdir().unwrap();
    let err = open_str(&d(&empty), &opts()).await.unwrap_err();
    assert!(err.to_string().contains("oci-layout"), "{err}");
    assert_eq!(
        code(open_str("oci:/nonexistent/gantry", &opts()).await),
        "io-error"
    );
}

#[tokio::test]
async fn artifacts_are_not_images() {
    let helm = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("Chart.yaml", "name: x"))
        .build()
        .unwrap();
    // Rewrite the manifest with a Helm config media type.
    let mut manifest: serde_json::Value = serde_json::from_slice(&helm.manifest).unwrap();
    manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json".into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let art = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("Chart.yaml", "name: x"))
        .raw_manifest(bytes)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    art.write_oci_layout(dir.path(), None).unwrap();
    let err = resolve_str(&format!("oci:{}", dir.path().display()), &opts(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::UnsupportedMediaType { media_type } if media_type.contains("helm")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// docker-archive

#[tokio::test]
async fn docker_archives_of_both_styles() {
    let img = image("docker");
    for style in [DockerArchiveStyle::Legacy, DockerArchiveStyle::OciBlobs] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("save.tar");
        img.write_docker_archive_with(&file, Some("app:1.0"), style)
            .unwrap();
        let f = file.display();
        for s in [
            format!("docker-archive:{f}"),
            format!("docker-archive:{f}:app:1.0"),
            format!("docker-archive:{f}:docker.io/library/app:1.0"),
        ] {
            let src = open_str(&s, &opts()).await.unwrap();
            let got = resolve_one(src.as_ref(), None).await.unwrap();
            // The config is the image's; the manifest is synthesised (Docker schema 2).
            assert_eq!(got.config_digest, img.config_digest, "{style:?}");
            assert_eq!(got.config_bytes, img.config);
            assert_eq!(got.manifest_media_type, media_type::DOCKER_MANIFEST);
            assert_eq!(got.manifest.config.media_type, media_type::DOCKER_CONFIG);
            let root = src.root().await.unwrap();
            assert_eq!(got.manifest_digest, sha256(&root.bytes));
            // Layers are the uncompressed tars: digest = diff ID.
            for (desc, layer) in got.manifest.layers.iter().zip(&img.layers) {
                assert_eq!(desc.digest, layer.diff_id);
                assert_eq!(desc.media_type, media_type::DOCKER_LAYER_TAR);
                assert_eq!(desc.size, layer.uncompressed_size);
                let bytes = read_blob(src.as_ref(), desc).await;
                assert_eq!(sha256(&bytes), layer.diff_id);
            }
        }
        let err = resolve_str(&format!("docker-archive:{f}:app:2.0"), &opts(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::NotFound { what: "tag", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("app:1.0"), "{err}");
    }
}

/// Writes a `docker save` archive holding two images by hand (the testkit writes one).
fn two_image_archive(file: &Path, a: &BuiltImage, b: &BuiltImage) {
    let mut tar = tar::Builder::new(std::fs::File::create(file).unwrap());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    };
    let mut entries = Vec::new();
    for (img, tag) in [(a, "one:1"), (b, "two:2")] {
        let mut layers = Vec::new();
        for l in &img.layers {
            let mut raw = Vec::new();
            l.write_tar(&mut raw).unwrap();
            let path = format!("{}/layer.tar", l.diff_id.hex());
            add(&path, &raw);
            layers.push(path);
        }
        let config = format!("{}.json", img.config_digest.hex());
        add(&config, &img.config);
        entries.push(serde_json::json!({"Config": config, "RepoTags": [tag], "Layers": layers}));
    }
    add("manifest.json", &serde_json::to_vec(&entries).unwrap());
    tar.finish().unwrap();
}

#[tokio::test]
async fn docker_archive_with_two_images() {
    let a = image_for("linux/amd64", "one");
    let b = image_for("linux/amd64", "two");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.tar");
    two_image_archive(&file, &a, &b);
    let f = file.display();
    let err = open_str(&format!("docker-archive:{f}"), &opts())
        .await
        .unwrap_err();
    match &err {
        RegistryError::Ambiguous { available, .. } => assert_eq!(available, &["one:1", "two:2"]),
        other => panic!("{other}"),
    }
    let got = resolve_str(&format!("docker-archive:{f}:two:2"), &opts(), None)
        .await
        .unwrap();
    assert_eq!(got.config_digest, b.config_digest);
}

#[tokio::test]
async fn docker_archive_mistakes() {
    let img = image("oci");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oci.tar");
    img.write_oci_archive(&file, None).unwrap();
    let err = open_str(&format!("docker-archive:{}", file.display()), &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("oci-archive:"), "{err}");

    // `docker save | gzip` is refused with a hint, not read as garbage.
    let gz = dir.path().join("save.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut enc, b"not really a tar").unwrap();
    enc.finish().unwrap();
    let err = open_str(&format!("docker-archive:{}", gz.display()), &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gunzip"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Registry

fn registry_opts(limits: FetchLimits) -> SourceOptions {
    SourceOptions { limits, ..opts() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_registry_pull() {
    let registry = RegistryHarness::start().unwrap();
    let img = image("anon");
    let pushed = img
        .push(&registry, "gantry/anon", Some("v1"), None)
        .unwrap();
    let s = registry.reference("gantry/anon", "v1");
    let src = open_str(&s, &opts()).await.unwrap();
    assert_eq!(src.reference().map(|r| r.to_string()), Some(s.clone()));
    let got = resolve_one(src.as_ref(), None).await.unwrap();
    assert_same_image(src.as_ref(), &got, &img).await;
    assert_eq!(got.reference.as_ref().map(|r| r.to_string()), Some(s));
    // By digest too.
    let got = resolve_str(&pushed.by_digest, &opts(), None).await.unwrap();
    assert_eq!(got.manifest_digest, img.manifest_digest);
    // Docker media types.
    let docker = ImageBuilder::new()
        .media_types(MediaTypes::Docker)
        .layer(LayerBuilder::new(Compression::Gzip).file("a", "b"))
        .build()
        .unwrap();
    docker
        .push(&registry, "gantry/docker", Some("v1"), None)
        .unwrap();
    let got = resolve_str(&registry.reference("gantry/docker", "v1"), &opts(), None)
        .await
        .unwrap();
    assert_eq!(got.manifest_media_type, media_type::DOCKER_MANIFEST);
    assert_eq!(got.manifest_digest, docker.manifest_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_missing_things() {
    let registry = RegistryHarness::start().unwrap();
    let img = image("missing");
    img.push(&registry, "gantry/there", Some("v1"), None)
        .unwrap();
    let err = resolve_str(&registry.reference("gantry/there", "nope"), &opts(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { what: "tag", .. }),
        "{err}"
    );
    let err = resolve_str(&registry.reference("gantry/absent", "v1"), &opts(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    // A blob the registry does not have.
    let src = open_str(&registry.reference("gantry/there", "v1"), &opts())
        .await
        .unwrap();
    let mut desc = img.descriptor();
    desc.digest = sha256(b"no such blob");
    let err = src.blob(&desc).await.err().unwrap();
    assert!(
        matches!(err, RegistryError::NotFound { what: "blob", .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_index_picks_the_platform() {
    let registry = RegistryHarness::start().unwrap();
    let index = two_platforms();
    index
        .push(&registry, "gantry/multi", Some("latest"), None)
        .unwrap();
    let s = registry.reference("gantry/multi", "latest");
    let src = open_str(&s, &opts()).await.unwrap();
    let arm = resolve_one(src.as_ref(), Some(&platform("linux/arm64/v8")))
        .await
        .unwrap();
    assert_same_image(src.as_ref(), &arm, &index.images[1]).await;
    assert_eq!(arm.index.as_ref().unwrap().digest, index.digest);
    let host = resolve_one(src.as_ref(), None).await.unwrap();
    assert_eq!(host.platform.architecture, Platform::host().architecture);
    let err = resolve_one(src.as_ref(), Some(&platform("windows/amd64")))
        .await
        .unwrap_err();
    match err {
        RegistryError::NoMatchingPlatform { available, .. } => {
            assert_eq!(
                available,
                vec![platform("linux/amd64"), platform("linux/arm64/v8")]
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(resolve_all_platforms(src.as_ref()).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_manifest_over_the_limit() {
    let registry = RegistryHarness::start().unwrap();
    let img = image("big");
    img.push(&registry, "gantry/big", Some("v1"), None).unwrap();
    let limits = FetchLimits {
        max_manifest_bytes: 64,
        ..FetchLimits::default()
    };
    let err = resolve_str(
        &registry.reference("gantry/big", "v1"),
        &registry_opts(limits),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 64, .. }),
        "{err}"
    );
    let limits = FetchLimits {
        max_config_bytes: 10,
        ..FetchLimits::default()
    };
    let err = resolve_str(
        &registry.reference("gantry/big", "v1"),
        &registry_opts(limits),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 10, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_explicit_and_from_docker_config() {
    let registry = RegistryHarness::start_with(Auth::basic("alice", "s3cret")).unwrap();
    let img = image("basic");
    img.push(
        &registry,
        "gantry/private",
        Some("v1"),
        registry.credentials(),
    )
    .unwrap();
    let s = registry.reference("gantry/private", "v1");

    let explicit = SourceOptions {
        credentials: Some(("alice".into(), "s3cret".into())),
        ..opts()
    };
    let src = open_str(&s, &explicit).await.unwrap();
    let got = resolve_one(src.as_ref(), None).await.unwrap();
    assert_same_image(src.as_ref(), &got, &img).await;

    let dir = tempfile::tempdir().unwrap();
    let auth = base64_encode(b"alice:s3cret");
    let config = serde_json::json!({"auths": {registry.host(): {"auth": auth}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let from_config = SourceOptions {
        docker_config: Some(dir.path().to_path_buf()),
        ..opts()
    };
    let got = resolve_str(&s, &from_config, None).await.unwrap();
    assert_eq!(got.manifest_digest, img.manifest_digest);

    let wrong = SourceOptions {
        credentials: Some(("alice".into(), "wrong".into())),
        ..opts()
    };
    let err = resolve_str(&s, &wrong, None).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Unauthorized { registry: r, repository } if *r == registry.host() && repository == "gantry/private"),
        "{err}"
    );
    // No credentials at all (and no config: point at an empty one).
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("config.json"), "{}").unwrap();
    let anonymous = SourceOptions {
        docker_config: Some(empty.path().to_path_buf()),
        ..opts()
    };
    assert_eq!(
        code(resolve_str(&s, &anonymous, None).await),
        "unauthorized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth() {
    let registry = RegistryHarness::start_with(Auth::token("bob", "t0ken-pw")).unwrap();
    let index = two_platforms();
    index
        .push(&registry, "gantry/tok", Some("v1"), registry.credentials())
        .unwrap();
    let s = registry.reference("gantry/tok", "v1");
    let good = SourceOptions {
        credentials: Some(("bob".into(), "t0ken-pw".into())),
        ..opts()
    };
    let src = open_str(&s, &good).await.unwrap();
    let got = resolve_one(src.as_ref(), Some(&platform("linux/arm64")))
        .await
        .unwrap();
    assert_same_image(src.as_ref(), &got, &index.images[1]).await;

    let wrong = SourceOptions {
        credentials: Some(("bob".into(), "nope".into())),
        ..opts()
    };
    assert_eq!(code(open_str(&s, &wrong).await), "unauthorized");
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("config.json"), "{}").unwrap();
    let anonymous = SourceOptions {
        docker_config: Some(empty.path().join("config.json")),
        ..opts()
    };
    assert_eq!(
        code(resolve_str(&s, &anonymous, None).await),
        "unauthorized"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// Misbehaving registries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_registries() {
    let o = registry_opts(short_limits());
    for (fault, want) in [
        (Fault::Status(500), "registry-server-error"),
        (Fault::Status(503), "registry-server-error"),
        (Fault::Status(401), "unauthorized"),
        (Fault::Status(403), "unauthorized"),
        // 404 on everything, `/v2/` included, is no registry (a missing manifest on a real
        // registry is `not-found`: tested against the harness).
        (Fault::Status(404), "registry-protocol-error"),
        (Fault::Status(429), "rate-limited"),
        (
            Fault::Slow {
                interval: Duration::from_secs(2),
            },
            "timeout",
        ),
    ] {
        let faulty = FaultyRegistry::start(fault).unwrap();
        let err = resolve_str(&faulty.reference("gantry/x", "v1"), &o, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), want, "{fault:?}: {err}");
        if let RegistryError::Server { status, registry } = &err {
            assert_eq!(Fault::Status(*status), fault);
            assert_eq!(registry, &faulty.host());
        }
        if let RegistryError::Timeout { after, .. } = &err {
            assert_eq!(
                *after,
                Duration::from_millis(500),
                "the idle read timeout fired"
            );
        }
    }
    // A registry that never answers: the whole-request limit.
    let hang = FaultyRegistry::start(Fault::Hang).unwrap();
    let err = resolve_str(&hang.reference("gantry/x", "v1"), &o, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timeout", "{err}");
    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = resolve_str(&format!("127.0.0.1:{port}/gantry/x:v1"), &o, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connect-failed", "{err}");
}

/// A canned answer for one path of a [`stub`] registry.
#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Omit Content-Length (the body ends when the connection closes).
    no_length: bool,
}

fn canned(body: Vec<u8>, headers: Vec<(&'static str, String)>) -> Canned {
    Canned {
        status: 200,
        headers,
        body,
        no_length: false,
    }
}

/// A plain-HTTP server on loopback answering `GET /v2/` with 200 and the given paths with canned
/// answers (404 otherwise). TLS probes are hung up on at once.
async fn stub(routes: BTreeMap<String, Canned>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    if head.first() == Some(&0x16) || head.len() > 64 * 1024 {
                        return; // a TLS ClientHello, or garbage
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let answer = match routes.get(&path) {
                    Some(c) => c.clone(),
                    None if path == "/v2/" => canned(b"{}".to_vec(), vec![]),
                    None => Canned {
                        status: 404,
                        headers: vec![],
                        body: br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#
                            .to_vec(),
                        no_length: false,
                    },
                };
                let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
                for (k, v) in &answer.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                if !answer.no_length {
                    out.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
                }
                out.push_str("\r\n");
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.write_all(&answer.body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

fn manifest_headers(body: &[u8], digest: Option<&Digest>) -> Vec<(&'static str, String)> {
    let mut h = vec![("Content-Type", media_type::OCI_MANIFEST.to_string())];
    if let Some(d) = digest.cloned().or_else(|| Some(sha256(body))) {
        h.push(("Docker-Content-Digest", d.to_string()));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_registries() {
    let img = image("stub");
    let good = img.manifest.clone();
    let other = sha256(b"something else");
    let huge = vec![b' '; 10_000];
    let layer = img.layers[0].clone();
    let mut tampered = layer.blob().to_vec().unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let short = img.layers[1].clone();
    let routes = BTreeMap::from([
        // Docker-Content-Digest that does not match the body.
        (
            "/v2/a/manifests/wrong-header".to_string(),
            canned(good.clone(), manifest_headers(&good, Some(&other))),
        ),
        // The right body under a digest it does not hash to.
        (
            format!("/v2/a/manifests/{other}"),
            canned(good.clone(), manifest_headers(&good, Some(&other))),
        ),
        // Not JSON.
        (
            "/v2/a/manifests/garbage".to_string(),
            canned(
                b"{\"schemaVersion\":2,".to_vec(),
                vec![("Content-Type", media_type::OCI_MANIFEST.to_string())],
            ),
        ),
        // Announced too large.
        (
            "/v2/a/manifests/announced".to_string(),
            canned(huge.clone(), vec![]),
        ),
        // Too large without Content-Length.
        (
            "/v2/a/manifests/streamed".to_string(),
            Canned {
                no_length: true,
                ..canned(huge.clone(), vec![])
            },
        ),
        // Schema 1.
        (
            "/v2/a/manifests/schema1".to_string(),
            canned(
                br#"{"schemaVersion":1,"name":"a","tag":"x","fsLayers":[]}"#.to_vec(),
                vec![(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v1+prettyjws".to_string(),
                )],
            ),
        ),
        // A layer blob with other bytes than its digest says (same length).
        (
            format!("/v2/a/blobs/{}", layer.digest),
            canned(tampered.clone(), vec![]),
        ),
        // A layer blob shorter than its descriptor.
        (
            format!("/v2/a/blobs/{}", short.digest),
            canned(b"abc".to_vec(), vec![]),
        ),
        // No Docker-Content-Digest: the digest is computed.
        (
            "/v2/a/manifests/no-header".to_string(),
            canned(
                good.clone(),
                vec![("Content-Type", "application/json".to_string())],
            ),
        ),
    ]);
    let addr = stub(routes).await;
    let limits = FetchLimits {
        max_manifest_bytes: 5_000,
        ..short_limits()
    };
    let o = registry_opts(limits);
    let root = |tag: &str| {
        let s = format!("{addr}/a:{tag}");
        let o = o.clone();
        async move { open_str(&s, &o).await?.root().await }
    };
    let err = root("wrong-header").await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == other.to_string()),
        "{err}"
    );
    let by_digest = format!("{addr}/a@{other}");
    let err = open_str(&by_digest, &o)
        .await
        .unwrap()
        .root()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "digest-mismatch", "{err}");
    assert_eq!(code(root("garbage").await), "invalid-json");
    let err = root("announced").await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::TooLarge {
                size: 10_000,
                limit: 5_000,
                ..
            }
        ),
        "{err}"
    );
    let err = root("streamed").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 5_000, .. }),
        "{err}"
    );
    assert_eq!(code(root("schema1").await), "unsupported-media-type");
    let doc = root("no-header").await.unwrap();
    assert_eq!(doc.digest, img.manifest_digest);
    assert_eq!(doc.kind, DocumentKind::Manifest);
    assert_eq!(doc.media_type.as_deref(), Some(media_type::OCI_MANIFEST));
    assert_eq!(code(root("absent").await), "not-found");

    // Blobs come raw: the client does not hash them (the layer walker verifies the digest as
    // it reads — tests/hostile.rs `blob_digest_mismatch_names_the_layer_and_both_digests`), so
    // a tampered blob arrives as the registry sent it.
    let src = open_str(&format!("{addr}/a:no-header"), &o).await.unwrap();
    let manifest = src.root().await.unwrap().manifest.unwrap();
    let mut out = Vec::new();
    src.blob(&manifest.layers[0])
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, tampered);
    assert_ne!(sha256(&out), manifest.layers[0].digest);
    let err = src.blob(&manifest.layers[1]).await.err().unwrap();
    assert!(
        matches!(err, RegistryError::SizeMismatch { actual: 3, .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The outbound edge: allowlist, address checks, redirects, token realms

/// A loopback listener that counts the connections it accepts and records each request head,
/// answering every request with `reply`.
struct Recorder {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start(reply: Canned) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&accepted), Arc::clone(&heads));
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (seen, reply) = (Arc::clone(&seen), reply.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                        if head.first() == Some(&0x16) || head.len() > 64 * 1024 {
                            return;
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.write_all(&reply.body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Recorder {
            addr,
            accepted,
            heads,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn rules(list: &[&str]) -> Vec<AllowRule> {
    list.iter().map(|r| r.parse().unwrap()).collect()
}

fn with_egress(egress: Egress) -> SourceOptions {
    SourceOptions {
        egress,
        limits: short_limits(),
        ..SourceOptions::default()
    }
}

/// Resolves every name it knows to its address, counting lookups; unknown names fail.
#[derive(Debug, Default)]
struct FixedResolver {
    names: BTreeMap<String, IpAddr>,
    lookups: AtomicUsize,
}

impl HostResolver for FixedResolver {
    fn lookup(
        &self,
        host: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let found = self.names.get(host).copied();
        let host = host.to_string();
        Box::pin(async move {
            found
                .map(|ip| vec![ip])
                .ok_or_else(|| std::io::Error::other(format!("no such host {host}")))
        })
    }
}

fn resolving(names: &[(&str, &str)]) -> Arc<FixedResolver> {
    Arc::new(FixedResolver {
        names: names
            .iter()
            .map(|(n, ip)| (n.to_string(), ip.parse().unwrap()))
            .collect(),
        lookups: AtomicUsize::new(0),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_outside_the_allowlist_are_refused_before_connecting() {
    let listener = Recorder::start(canned(b"{}".to_vec(), vec![])).await;
    let o = with_egress(Egress::allowlist(rules(&["ghcr.io/my-org", "localhost:1"])));
    for reference in [
        format!("127.0.0.1:{}/my-org/app:1", listener.port()),
        format!("localhost:{}/my-org/app:1", listener.port()),
        "ghcr.io/my-organisation/app:1".to_string(),
    ] {
        let err = open_str(&reference, &o).await.unwrap_err();
        assert_eq!(err.code(), "registry-not-allowed", "{reference}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("[registry] allow") && text.contains("--allow-registry"),
            "{text}"
        );
        // The caller may see this one: it depends only on the name asked for.
        assert_eq!(err.public_code(), "registry-not-allowed");
    }
    assert_eq!(listener.connections(), 0, "nothing was connected to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_unless_listed() {
    let listener = Recorder::start(canned(b"{}".to_vec(), vec![])).await;
    let port = listener.port();
    // The default policy: public addresses only. A name that resolves to loopback, an IPv4
    // literal, an IPv6 literal, an IPv4-mapped IPv6 literal.
    let public = with_egress(Egress::public_only());
    for reference in [
        format!("localhost:{port}/a:1"),
        format!("127.0.0.1:{port}/a:1"),
        format!("[::1]:{port}/a:1"),
        format!("[::ffff:127.0.0.1]:{port}/a:1"),
    ] {
        let err = open_str(&reference, &public).await.unwrap_err();
        assert_eq!(err.code(), "address-not-allowed", "{reference}: {err}");
        assert!(err.to_string().contains("loopback"), "{err}");
        assert_eq!(err.public_code(), "registry-unavailable");
    }
    // An allowlist that lists other hosts refuses it as not listed.
    let other = with_egress(Egress::allowlist(rules(&["127.0.0.1:1"])));
    assert_eq!(
        code(open_str(&format!("127.0.0.1:{port}/a:1"), &other).await),
        "registry-not-allowed"
    );
    assert_eq!(listener.connections(), 0, "nothing was connected to");

    // Listed, it is reached (and spoken to over plain HTTP, as a loopback registry).
    let registry = RegistryHarness::start().unwrap();
    let img = image("listed");
    img.push(&registry, "gantry/listed", Some("v1"), None)
        .unwrap();
    let by_name = format!("localhost:{}/gantry/listed:v1", registry.addr().port());
    for egress in [
        Egress::allowlist(rules(&["localhost"])),
        Egress::permissive(Some(&by_name.parse().unwrap()), vec![]),
        Egress::permissive(None, rules(&["*"])),
    ] {
        let got = resolve_str(&by_name, &with_egress(egress), None)
            .await
            .unwrap();
        assert_eq!(got.manifest_digest, img.manifest_digest);
    }
    // The CLI's permissive policy trusts the named registry only: another loopback port is
    // refused (a base-image label could name it).
    let named: gantry_model::ImageRef = by_name.parse().unwrap();
    let cli = with_egress(Egress::permissive(Some(&named), vec![]));
    assert_eq!(
        code(open_str(&format!("localhost:{port}/a:1"), &cli).await),
        "address-not-allowed"
    );
    assert_eq!(
        code(
            open_str(
                &format!("127.0.0.1:{}/gantry/listed:v1", registry.addr().port()),
                &cli
            )
            .await
        ),
        "address-not-allowed"
    );
    assert_eq!(listener.connections(), 0);
}

/// DNS rebinding needs a check on one lookup and a connection on another. Here the only
/// lookup is the resolver's, inside the connection: whatever the name resolves to when
/// connecting is what is checked. So the test drives that path with names that resolve to
/// loopback (a public first answer would make the test connect off this machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_checked_on_the_address_they_connect_to() {
    let listener = Recorder::start(canned(b"{}".to_vec(), vec![])).await;
    let port = listener.port();
    let resolver = resolving(&[("registry.rebind.test", "127.0.0.1"), ("meta.test", "::1")]);
    let o = with_egress(Egress::public_only().with_resolver(resolver.clone()));
    for name in ["registry.rebind.test", "meta.test"] {
        let err = open_str(&format!("{name}:{port}/a:1"), &o)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "address-not-allowed", "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    assert!(
        resolver.lookups.load(Ordering::SeqCst) >= 2,
        "the resolver was asked"
    );
    assert_eq!(listener.connections(), 0, "nothing was connected to");

    // Listed, the name connects to exactly the address the resolver gave: the real registry.
    let registry = RegistryHarness::start().unwrap();
    let img = image("rebind");
    img.push(&registry, "gantry/rebind", Some("v1"), None)
        .unwrap();
    let o = SourceOptions {
        insecure_registries: vec!["registry.rebind.test".into()],
        ..with_egress(
            Egress::allowlist(rules(&["registry.rebind.test"])).with_resolver(resolver.clone()),
        )
    };
    let s = format!(
        "registry.rebind.test:{}/gantry/rebind:v1",
        registry.addr().port()
    );
    let got = resolve_str(&s, &o, None).await.unwrap();
    assert_eq!(got.manifest_digest, img.manifest_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_hops_are_checked() {
    let layer = |i: u32| LayerBuilder::new(Compression::Gzip).file("f", format!("{i}"));
    let img = ImageBuilder::new()
        .layer(layer(0))
        .layer(layer(1))
        .layer(layer(2))
        .layer(layer(3))
        .build()
        .unwrap();
    let layers = &img.layers;
    let target = Recorder::start(canned(layers[3].blob().to_vec().unwrap(), vec![])).await;
    let p = target.port();
    let hop = |location: String| Canned {
        status: 307,
        headers: vec![("Location", location)],
        body: vec![],
        no_length: false,
    };
    let mut routes = BTreeMap::from([(
        "/v2/a/manifests/v1".to_string(),
        canned(img.manifest.clone(), manifest_headers(&img.manifest, None)),
    )]);
    for (layer, location) in layers.iter().zip([
        // An unlisted port of the listed loopback host (an IP literal: no resolver involved).
        format!("https://127.0.0.1:{p}/blob"),
        // A name that resolves to loopback.
        format!("https://localhost:{p}/blob"),
        // Loopback as an IPv4-mapped IPv6 literal.
        format!("https://[::ffff:127.0.0.1]:{p}/blob"),
        // Plain HTTP to a host that is not allowed it.
        format!("http://127.0.0.1:{p}/blob"),
    ]) {
        routes.insert(format!("/v2/a/blobs/{}", layer.digest), hop(location));
    }
    let addr = stub(routes).await;
    let named: gantry_model::ImageRef = format!("{addr}/a:v1").parse().unwrap();
    let o = with_egress(Egress::permissive(Some(&named), vec![]));
    let src = open_str(&format!("{addr}/a:v1"), &o).await.unwrap();
    let manifest = src.root().await.unwrap().manifest.unwrap();
    for (i, layer) in manifest.layers.iter().enumerate() {
        let err = src.blob(layer).await.err().unwrap();
        assert_eq!(err.code(), "address-not-allowed", "layer {i}: {err}");
        assert_eq!(err.public_code(), "registry-unavailable");
    }
    assert_eq!(target.connections(), 0, "no hop was followed");

    // Listing the target lets the plain-HTTP hop to loopback through.
    let o = with_egress(Egress::permissive(
        Some(&named),
        rules(&[&format!("127.0.0.1:{p}")]),
    ));
    let src = open_str(&format!("{addr}/a:v1"), &o).await.unwrap();
    assert_eq!(
        read_blob(src.as_ref(), &manifest.layers[3]).await,
        layers[3].blob().to_vec().unwrap()
    );
    assert_eq!(target.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let img = image("creds");
    let layer = &img.layers[0];
    let storage = Recorder::start(canned(layer.blob().to_vec().unwrap(), vec![])).await;
    let registry_heads = Arc::new(Mutex::new(Vec::new()));
    // The registry: Basic challenge on /v2/, the manifest, and a blob that lives elsewhere.
    let routes = BTreeMap::from([
        (
            "/v2/".to_string(),
            Canned {
                status: 401,
                headers: vec![("WWW-Authenticate", r#"Basic realm="r""#.to_string())],
                body: vec![],
                no_length: false,
            },
        ),
        (
            "/v2/a/manifests/v1".to_string(),
            canned(img.manifest.clone(), manifest_headers(&img.manifest, None)),
        ),
        (
            format!("/v2/a/blobs/{}", layer.digest),
            Canned {
                status: 307,
                headers: vec![(
                    "Location",
                    format!("http://localhost:{}/storage/blob", storage.port()),
                )],
                body: vec![],
                no_length: false,
            },
        ),
    ]);
    let addr = stub_recording(routes, Arc::clone(&registry_heads)).await;
    let named: gantry_model::ImageRef = format!("{addr}/a:v1").parse().unwrap();
    let o = SourceOptions {
        credentials: Some(("alice".into(), "s3cret".into())),
        ..with_egress(Egress::permissive(
            Some(&named),
            rules(&[&format!("localhost:{}", storage.port())]),
        ))
    };
    let src = open_str(&format!("{addr}/a:v1"), &o).await.unwrap();
    let manifest = src.root().await.unwrap().manifest.unwrap();
    assert_eq!(
        read_blob(src.as_ref(), &manifest.layers[0]).await,
        layer.blob().to_vec().unwrap()
    );
    let auth = format!("authorization: basic {}", base64_encode(b"alice:s3cret")).to_lowercase();
    let sent = registry_heads.lock().unwrap().clone();
    assert!(
        sent.iter().any(|h| h.to_lowercase().contains(&auth)),
        "the registry got its credentials: {sent:?}"
    );
    let storage_heads = storage.heads();
    assert_eq!(storage_heads.len(), 1, "{storage_heads:?}");
    assert!(
        !storage_heads[0].to_lowercase().contains("authorization"),
        "credentials followed the redirect: {storage_heads:?}"
    );
}

/// Like [`stub`], recording each request head in `heads`.
async fn stub_recording(
    routes: BTreeMap<String, Canned>,
    heads: Arc<Mutex<Vec<String>>>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = stub(routes).await;
    // A relay that records heads and forwards bytes to the stub.
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let heads = Arc::clone(&heads);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    if head.first() == Some(&0x16) || head.len() > 64 * 1024 {
                        return;
                    }
                }
                heads
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = up.write_all(&head).await;
                let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
            });
        }
    });
    addr
}

/// A writer for a tracing subscriber that keeps what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

// current_thread: the subscriber set here is the thread's default, and every task of the test
// runs on this thread.
#[tokio::test]
async fn token_realms_are_checked_and_cross_host_ones_warned_once() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let img = image("realm");
    let token = Recorder::start(canned(
        br#"{"token":"t0k","expires_in":300}"#.to_vec(),
        vec![("Content-Type", "application/json".to_string())],
    ))
    .await;
    let bearer = |realm: String| Canned {
        status: 401,
        headers: vec![(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="svc""#),
        )],
        body: vec![],
        no_length: false,
    };
    let manifest = canned(img.manifest.clone(), manifest_headers(&img.manifest, None));
    // A realm on another host (localhost, not 127.0.0.1), listed.
    let cross = stub(BTreeMap::from([
        (
            "/v2/".to_string(),
            bearer(format!("http://localhost:{}/token", token.port())),
        ),
        ("/v2/a/manifests/v1".to_string(), manifest.clone()),
    ]))
    .await;
    let o = with_egress(Egress::allowlist(rules(&[
        "127.0.0.1",
        &format!("localhost:{}", token.port()),
    ])));
    for _ in 0..2 {
        let src = open_str(&format!("{cross}/a:v1"), &o).await.unwrap();
        src.root().await.unwrap();
    }
    assert_eq!(token.connections(), 2, "one token per source");
    assert!(
        token.heads()[0].contains("scope=repository%3Aa%3Apull")
            && token.heads()[0].contains("service=svc"),
        "{:?}",
        token.heads()
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("token requests"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "warned once per (registry, realm host): {text}"
    );
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("localhost"),
        "{text}"
    );

    // A realm whose name resolves to loopback and is not listed: refused before connecting.
    let hidden = stub(BTreeMap::from([(
        "/v2/".to_string(),
        bearer(format!("http://realm.test:{}/token", token.port())),
    )]))
    .await;
    let o = with_egress(
        Egress::allowlist(rules(&["127.0.0.1"]))
            .with_resolver(resolving(&[("realm.test", "127.0.0.1")])),
    );
    let err = open_str(&format!("{hidden}/a:v1"), &o).await.unwrap_err();
    assert_eq!(err.code(), "address-not-allowed", "{err}");
    assert!(err.to_string().contains("realm.test"), "{err}");
    assert_eq!(token.connections(), 2, "the hidden realm was not asked");
}
