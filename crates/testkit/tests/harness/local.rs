//! Layers, images, indexes and the three local formats.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use gantry_model::Digest;
use gantry_model::oci::{Compression, ImageConfig, ImageIndex, ImageManifest, media_type};
use gantry_testkit::{
    Artifact, DockerArchiveStyle, ImageBuilder, IndexBuilder, LayerBuilder, MediaTypes, REF_NAME,
    sha256,
};

fn sample_image(m: MediaTypes) -> gantry_testkit::BuiltImage {
    ImageBuilder::new()
        .media_types(m)
        .user("app")
        .env("PATH", "/usr/bin")
        .entrypoint(["/app"])
        .cmd(["--serve"])
        .workdir("/srv")
        .label(
            "org.opencontainers.image.source",
            "https://example.test/app",
        )
        .annotation(
            "org.opencontainers.image.base.name",
            "docker.io/library/alpine:3.20",
        )
        .exposed_port("8080/tcp")
        .layer(
            LayerBuilder::new(Compression::Gzip)
                .dir("etc")
                .file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.0\n")
                .file("etc/secret", "hunter2")
                .symlink("bin/sh", "/bin/busybox")
                .file_mode("bin/busybox", "ELF", 0o4755),
        )
        .empty_history("ENV PATH=/usr/bin")
        .layer(
            LayerBuilder::new(Compression::Zstd)
                .whiteout("etc/secret")
                .opaque("var/cache")
                .hardlink("bin/ash", "bin/busybox"),
        )
        .layer_with_history(
            LayerBuilder::new(Compression::None).file_owned(
                "srv/app",
                "#!/bin/sh\n",
                0o755,
                1000,
                1000,
            ),
            "COPY app /srv/app",
        )
        .build()
        .unwrap()
}

fn untar(bytes: &[u8]) -> BTreeMap<String, (tar::EntryType, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let kind = e.header().entry_type();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, (kind, data));
    }
    out
}

fn decompress(c: Compression, blob: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Compression::None => out.extend_from_slice(blob),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(blob)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
    }
    out
}

#[test]
fn same_recipe_same_digests() {
    let a = sample_image(MediaTypes::Oci);
    let b = sample_image(MediaTypes::Oci);
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.config, b.config);
    let d = sample_image(MediaTypes::Docker);
    assert_ne!(a.manifest_digest, d.manifest_digest);
}

#[test]
fn layers_decompress_to_their_diff_ids() {
    let image = sample_image(MediaTypes::Oci);
    let kinds: Vec<_> = image.layers.iter().map(|l| l.compression).collect();
    assert_eq!(
        kinds,
        [Compression::Gzip, Compression::Zstd, Compression::None]
    );
    let mts: Vec<_> = image.layers.iter().map(|l| l.media_type.as_str()).collect();
    assert_eq!(
        mts,
        [
            media_type::OCI_LAYER_GZIP,
            media_type::OCI_LAYER_ZSTD,
            media_type::OCI_LAYER_TAR
        ]
    );
    for l in &image.layers {
        let blob = l.blob().to_vec().unwrap();
        assert_eq!(sha256(&blob), l.digest);
        assert_eq!(blob.len() as u64, l.size);
        let tar = decompress(l.compression, &blob);
        assert_eq!(sha256(&tar), l.diff_id);
        assert_eq!(tar.len() as u64, l.uncompressed_size);
        assert_eq!(tar, l.tar_bytes().unwrap());
    }
    let first = untar(&image.layers[0].tar_bytes().unwrap());
    assert_eq!(first["etc/"].0, tar::EntryType::Directory);
    assert_eq!(first["etc/os-release"].1, b"ID=alpine\nVERSION_ID=3.20.0\n");
    assert_eq!(first["bin/sh"].0, tar::EntryType::Symlink);
    let second = untar(&image.layers[1].tar_bytes().unwrap());
    let names: Vec<_> = second.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["bin/ash", "etc/.wh.secret", "var/cache/.wh..wh..opq"]
    );
    assert_eq!(second["bin/ash"].0, tar::EntryType::Link);

    let config: ImageConfig = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config.config.user, "app");
    assert_eq!(
        config.rootfs.diff_ids,
        image
            .layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>()
    );
    let created_by: Vec<_> = config
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap(), h.empty_layer))
        .collect();
    assert_eq!(
        created_by,
        [
            ("RUN layer 1".to_string(), false),
            ("ENV PATH=/usr/bin".to_string(), true),
            ("RUN layer 2".to_string(), false),
            ("COPY app /srv/app".to_string(), false)
        ]
    );
    let manifest: ImageManifest = serde_json::from_slice(&image.manifest).unwrap();
    assert_eq!(manifest.config.digest, image.config_digest);
    assert_eq!(manifest.layers.len(), 3);
    assert_eq!(sha256(&image.manifest), image.manifest_digest);
}

#[test]
fn hostile_entries_are_written_as_asked() {
    let long = format!("usr/{}/file", "d".repeat(150));
    let layer = LayerBuilder::new(Compression::None)
        .raw_path_file("../evil", "x")
        .raw_path_file("/etc/abs", "y")
        .pax_long_path(&long, "pax")
        .gnu_long_path(&format!("{long}2"), "gnu")
        .zeros("big", 3 * 1024 * 1024)
        .many_files("many", 1000)
        .char_device("dev/null", 1, 3)
        .fifo("run/pipe")
        .build()
        .unwrap();
    let tar = layer.tar_bytes().unwrap();
    // The tar crate refuses `..` when unpacking but lists it; names come back verbatim.
    let entries = untar(&tar);
    assert!(entries.contains_key("../evil"));
    assert!(entries.contains_key("/etc/abs"));
    assert_eq!(entries[&long].1, b"pax");
    assert_eq!(entries[&format!("{long}2")].1, b"gnu");
    assert_eq!(entries["big"].1.len(), 3 * 1024 * 1024);
    assert!(entries.contains_key("many/999"));
    assert_eq!(entries["dev/null"].0, tar::EntryType::Char);
    assert_eq!(entries["run/pipe"].0, tar::EntryType::Fifo);
    assert_eq!(entries.len(), 7 + 1000);

    let huge = LayerBuilder::new(Compression::Gzip)
        .file("a", "1")
        .huge_pax_header(8 << 30)
        .file("never", "written")
        .build()
        .unwrap();
    let tar = decompress(Compression::Gzip, &huge.blob().to_vec().unwrap());
    let mut a = tar::Archive::new(tar.as_slice());
    let results: Vec<_> = a.entries().unwrap().collect();
    assert!(
        results.iter().any(Result::is_err),
        "a PAX header claiming 8 GiB must not parse"
    );

    let bomb = LayerBuilder::new(Compression::Zstd)
        .zeros("bomb", 64 << 20)
        .build()
        .unwrap();
    assert!(
        bomb.size < 1 << 20,
        "compressed bomb is small: {}",
        bomb.size
    );
    assert!(bomb.uncompressed_size > 64 << 20);
}

#[test]
fn damaged_blobs_keep_their_digest_but_fail_to_decompress() {
    let base = LayerBuilder::new(Compression::Gzip).file("etc/data", "0123456789".repeat(1000));
    let intact = base.clone().build().unwrap();
    let truncated = base.clone().truncate_blob(intact.size / 2).build().unwrap();
    assert_eq!(truncated.size, intact.size / 2);
    assert_eq!(truncated.diff_id, intact.diff_id);
    assert_eq!(
        sha256(&truncated.blob().to_vec().unwrap()),
        truncated.digest
    );
    let mut out = Vec::new();
    assert!(
        flate2::read::GzDecoder::new(truncated.blob().to_vec().unwrap().as_slice())
            .read_to_end(&mut out)
            .is_err()
    );

    let corrupt = base.clone().corrupt_blob().build().unwrap();
    assert_eq!(corrupt.size, intact.size);
    assert_ne!(corrupt.digest, intact.digest);
    let mut out = Vec::new();
    let r = flate2::read::GzDecoder::new(corrupt.blob().to_vec().unwrap().as_slice())
        .read_to_end(&mut out);
    assert!(r.is_err() || sha256(&out) != intact.diff_id);

    let garbage = base.trailing_garbage(b"GARBAGE").build().unwrap();
    assert_eq!(garbage.size, intact.size + 7);
    assert!(garbage.blob().to_vec().unwrap().ends_with(b"GARBAGE"));
}

#[test]
fn malformed_image_knobs() {
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("a", "1"))
        .layer(LayerBuilder::new(Compression::Gzip).file("b", "2"))
        .layer_media_type_override(1, "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
        .wrong_diff_id(0)
        .config_override(serde_json::json!({"rootfs": {"type": "zfs"}, "config": {"User": null}}))
        .build()
        .unwrap();
    let manifest: ImageManifest = serde_json::from_slice(&image.manifest).unwrap();
    assert_eq!(
        manifest.layers[1].media_type,
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config["rootfs"]["type"], "zfs");
    assert!(config["config"].get("User").is_none());
    assert_ne!(
        config["rootfs"]["diff_ids"][0],
        image.layers[0].diff_id.to_string()
    );
    assert_eq!(
        config["rootfs"]["diff_ids"][1],
        image.layers[1].diff_id.to_string()
    );

    let raw = ImageBuilder::new()
        .raw_manifest(b"{not json".to_vec())
        .build()
        .unwrap();
    assert_eq!(raw.manifest, b"{not json");
    assert_eq!(raw.manifest_digest, sha256(b"{not json"));
    assert!(ImageBuilder::new().wrong_diff_id(3).build().is_err());
}

/// Every file under `blobs/sha256/` is named by the digest of its bytes.
fn check_blob_names(files: &BTreeMap<String, Vec<u8>>) {
    let mut n = 0;
    for (path, bytes) in files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(sha256(bytes).hex(), hex, "{path}");
            n += 1;
        }
    }
    assert!(n > 0);
}

fn read_dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn read_tar_files(file: &Path) -> BTreeMap<String, Vec<u8>> {
    untar(&std::fs::read(file).unwrap())
        .into_iter()
        .filter(|(_, (k, _))| *k == tar::EntryType::Regular)
        .map(|(p, (_, d))| (p, d))
        .collect()
}

fn check_layout(files: &BTreeMap<String, Vec<u8>>, root: &Digest, root_mt: &str, tag: &str) {
    assert_eq!(files["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: ImageIndex = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index.manifests.len(), 1);
    let entry = &index.manifests[0];
    assert_eq!(&entry.digest, root);
    assert_eq!(entry.media_type, root_mt);
    assert_eq!(entry.annotations.as_ref().unwrap()[REF_NAME], tag);
    assert_eq!(
        files[&format!("blobs/sha256/{}", root.hex())].len() as u64,
        entry.size
    );
    check_blob_names(files);
}

#[test]
fn oci_layout_and_archive_of_an_image() {
    let image = sample_image(MediaTypes::Oci);
    let tmp = tempfile::tempdir().unwrap();
    image
        .write_oci_layout(&tmp.path().join("layout"), Some("v1"))
        .unwrap();
    let files = read_dir_files(&tmp.path().join("layout"));
    check_layout(
        &files,
        &image.manifest_digest,
        media_type::OCI_MANIFEST,
        "v1",
    );
    // manifest + config + 3 layers, plus oci-layout and index.json
    assert_eq!(files.len(), 7);

    image
        .write_oci_archive(&tmp.path().join("image.tar"), Some("v1"))
        .unwrap();
    let from_tar = read_tar_files(&tmp.path().join("image.tar"));
    assert_eq!(from_tar, files);
    image
        .write_oci_archive(&tmp.path().join("again.tar"), Some("v1"))
        .unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("image.tar")).unwrap(),
        std::fs::read(tmp.path().join("again.tar")).unwrap()
    );
}

#[test]
fn oci_layout_of_an_index_with_attestation() {
    let amd = sample_image(MediaTypes::Oci);
    let arm = ImageBuilder::new()
        .platform("linux/arm64/v8".parse().unwrap())
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/os-release", "ID=debian\n"))
        .build()
        .unwrap();
    let index = IndexBuilder::new()
        .image(amd.clone())
        .image(arm.clone())
        .annotation("a", "b")
        .attestation_for(0)
        .build()
        .unwrap();
    let doc: ImageIndex = serde_json::from_slice(&index.index).unwrap();
    assert_eq!(doc.manifests.len(), 3);
    let platforms: Vec<_> = doc
        .platforms()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    let att = &doc.manifests[2];
    let ann = att.annotations.as_ref().unwrap();
    assert_eq!(ann["vnd.docker.reference.type"], "attestation-manifest");
    assert_eq!(
        ann["vnd.docker.reference.digest"],
        amd.manifest_digest.to_string()
    );
    assert_eq!(att.platform.as_ref().unwrap().os, "unknown");

    let tmp = tempfile::tempdir().unwrap();
    index.write_oci_layout(tmp.path(), Some("multi")).unwrap();
    let files = read_dir_files(tmp.path());
    check_layout(&files, &index.digest, media_type::OCI_INDEX, "multi");
    for child in index.children() {
        assert!(files.contains_key(&format!("blobs/sha256/{}", child.manifest_digest.hex())));
    }

    let docker = IndexBuilder::new()
        .media_types(MediaTypes::Docker)
        .image(sample_image(MediaTypes::Docker))
        .build()
        .unwrap();
    assert_eq!(docker.media_type, media_type::DOCKER_MANIFEST_LIST);
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[test]
fn docker_save_archives() {
    let image = sample_image(MediaTypes::Docker);
    let tmp = tempfile::tempdir().unwrap();
    let legacy = tmp.path().join("legacy.tar");
    image
        .write_docker_archive(&legacy, Some("gantry/app:v1"))
        .unwrap();
    let files = read_tar_files(&legacy);
    let entries: Vec<SaveEntry> = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        e.repo_tags.as_deref(),
        Some(&["gantry/app:v1".to_string()][..])
    );
    assert_eq!(e.config, format!("{}.json", image.config_digest.hex()));
    assert_eq!(files[&e.config], image.config);
    assert_eq!(e.layers.len(), image.layers.len());
    for (path, layer) in e.layers.iter().zip(&image.layers) {
        assert_eq!(path, &format!("{}/layer.tar", layer.diff_id.hex()));
        // docker save writes uncompressed tars: their digest is the diff ID.
        assert_eq!(sha256(&files[path]), layer.diff_id);
    }
    let repos: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert!(repos["gantry/app"]["v1"].is_string());

    let untagged = tmp.path().join("untagged.tar");
    image.write_docker_archive(&untagged, None).unwrap();
    let files = read_tar_files(&untagged);
    let entries: Vec<SaveEntry> = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert!(entries[0].repo_tags.is_none());
    assert!(!files.contains_key("repositories"));

    let modern = tmp.path().join("modern.tar");
    image
        .write_docker_archive_with(&modern, Some("app"), DockerArchiveStyle::OciBlobs)
        .unwrap();
    let files = read_tar_files(&modern);
    check_blob_names(&files);
    let entries: Vec<SaveEntry> = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        entries[0].repo_tags.as_deref(),
        Some(&["app:latest".to_string()][..])
    );
    assert_eq!(
        entries[0].config,
        format!("blobs/sha256/{}", image.config_digest.hex())
    );
    let index: ImageIndex = serde_json::from_slice(&files["index.json"]).unwrap();
    let ann = index.manifests[0].annotations.as_ref().unwrap();
    assert_eq!(
        ann["io.containerd.image.name"],
        "docker.io/library/app:latest"
    );
    assert_eq!(ann[REF_NAME], "latest");
    let manifest: ImageManifest = serde_json::from_slice(
        &files[&format!("blobs/sha256/{}", index.manifests[0].digest.hex())],
    )
    .unwrap();
    for (d, layer) in manifest.layers.iter().zip(&image.layers) {
        assert_eq!(d.media_type, media_type::OCI_LAYER_TAR);
        assert_eq!(d.digest, layer.diff_id);
        assert!(
            entries[0]
                .layers
                .contains(&format!("blobs/sha256/{}", layer.diff_id.hex()))
        );
    }
}
