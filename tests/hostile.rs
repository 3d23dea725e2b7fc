use std::fs;
use std::path::Path;

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, ImageBuilder, LayerBuilder};

use crate::util::expect_error;

/// Writes a one-layer image to an OCI layout and returns the `oci:` reference.
fn layout_with(dir: &Path, layer: LayerBuilder) -> String {
    ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("ok", "fine"))
        .layer(layer)
        .build()
        .unwrap()
        .write_oci_layout(dir, None)
        .unwrap();
    format!("oci:{}", dir.display())
}

fn run(layer: LayerBuilder) -> String {
    run_with(layer, &[])
}

#[test]
fn path_traversal_is_refused() {
    for path in ["../escape", "a/../../escape", "/etc/absolute"] {
        let err = run(LayerBuilder::new(Compression::Gzip).raw_path_file(path, "x"));
        assert!(err.contains("layer 1"), "{err}");
        assert!(err.contains(path), "{path}: {err}");
    }
    let err = run(LayerBuilder::new(Compression::Gzip)
        .file("a", "a")
        .hardlink("b", "../../etc/shadow"));
    assert!(err.contains("../../etc/shadow"), "{err}");
}

#[test]
fn huge_pax_header_is_refused_before_reading_it() {
    let err = run(LayerBuilder::new(Compression::Zstd).huge_pax_header(8 << 30));
    assert!(err.contains("8589934592") || err.contains("8 GiB"), "{err}");
}

/// 64 KiB that no compressor shrinks much, so a cut at 700 bytes lands mid-stream.
fn noise() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn truncated_and_corrupt_blobs_are_clear_errors() {
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let layer = LayerBuilder::new(compression)
            .file("big", noise())
            .truncate_blob(700);
        let err = run(layer);
        assert!(err.contains("layer 1"), "{compression:?}: {err}");
        assert!(
            err.to_lowercase().contains("truncated"),
            "{compression:?}: {err}"
        );
    }
    let err = run(LayerBuilder::new(Compression::Gzip)
        .file("big", noise())
        .corrupt_blob());
    assert!(err.contains("layer 1"), "{err}");
}

#[test]
fn blob_digest_mismatch_names_the_layer_and_both_digests() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/hostname", "a"))
        .build()
        .unwrap();
    image.write_oci_layout(dir.path(), None).unwrap();
    // Same size, other content: only the digest check can notice.
    let digest = &image.layers[0].digest;
    let other = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/hostname", "b"))
        .build()
        .unwrap();
    let blob_path = dir.path().join("blobs/sha256").join(digest.hex());
    let replacement = other.layers[0].blob().to_vec().unwrap();
    assert_eq!(replacement.len() as u64, image.layers[0].size);
    fs::write(&blob_path, &replacement).unwrap();
    let err = expect_error(
        cache.path(),
        &["inspect", &format!("oci:{}", dir.path().display())],
    );
    assert!(err.contains(&digest.to_string()), "{err}");
    assert!(err.contains(&other.layers[0].digest.to_string()), "{err}");
}

#[test]
fn config_diff_id_mismatch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("a", "a"))
        .wrong_diff_id(0)
        .build()
        .unwrap()
        .write_oci_layout(dir.path(), None)
        .unwrap();
    let err = expect_error(
        cache.path(),
        &["inspect", &format!("oci:{}", dir.path().display())],
    );
    assert!(err.to_lowercase().contains("diff"), "{err}");
}

#[test]
fn malformed_manifest_and_config_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("a", "a"))
        .raw_manifest(b"{\"schemaVersion\": 2, \"config\": ".to_vec())
        .build()
        .unwrap()
        .write_oci_layout(dir.path(), None)
        .unwrap();
    let err = expect_error(
        cache.path(),
        &["inspect", &format!("oci:{}", dir.path().display())],
    );
    assert!(
        err.to_lowercase().contains("json") || err.to_lowercase().contains("manifest"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip).file("a", "a"))
        .raw_config(b"[1, 2".to_vec())
        .build()
        .unwrap()
        .write_oci_layout(dir.path(), None)
        .unwrap();
    let err = expect_error(
        cache.path(),
        &["inspect", &format!("oci:{}", dir.path().display())],
    );
    assert!(err.to_lowercase().contains("config"), "{err}");
}

fn run_with(layer: LayerBuilder, limits: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reference = layout_with(dir.path(), layer);
    let mut args = vec!["inspect", reference.as_str()];
    for l in limits {
        args.extend(["--limit", l]);
    }
    expect_error(cache.path(), &args)
}

#[test]
fn decompression_bomb_is_stopped_early() {
    for compression in [Compression::Gzip, Compression::Zstd] {
        let bomb = LayerBuilder::new(compression).zeros("bomb", 64 << 20);
        let err = run_with(
            bomb,
            &["layer-ratio-floor-bytes=1MiB", "layer-compression-ratio=20"],
        );
        assert!(
            err.contains("layer 1") && err.contains("decompression bomb"),
            "{compression:?}: {err}"
        );
    }
    let err = run_with(
        LayerBuilder::new(Compression::Zstd).zeros("big", 8 << 20),
        &["layer-uncompressed-bytes=1MiB"],
    );
    assert!(err.contains("1048576") || err.contains("1 MiB"), "{err}");
}

#[test]
fn too_many_entries_and_long_paths_are_refused() {
    let err = run_with(
        LayerBuilder::new(Compression::Gzip).many_files("f/", 1000),
        &["layer-entries=100"],
    );
    assert!(err.contains("100"), "{err}");
    let long = format!("{}/file", "d".repeat(300));
    let err = run_with(
        LayerBuilder::new(Compression::Gzip).pax_long_path(&long, "x"),
        &["path-bytes=200"],
    );
    assert!(err.contains("200"), "{err}");
}

#[test]
fn manifest_over_its_cap_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let fixture = format!("oci:{}", crate::util::demo_fixture().display());
    let err = expect_error(
        cache.path(),
        &["inspect", &fixture, "--limit", "manifest-bytes=100"],
    );
    assert!(err.contains("100"), "{err}");
}

#[test]
fn hanging_registry_times_out() {
    use gantry_testkit::{Fault, FaultyRegistry};
    let cache = tempfile::tempdir().unwrap();
    let hang = FaultyRegistry::start(Fault::Hang).unwrap();
    let started = std::time::Instant::now();
    let err = expect_error(
        cache.path(),
        &[
            "inspect",
            &hang.reference("a/b", "v1"),
            "--limit",
            "request-timeout=2s",
            "--limit",
            "read-timeout=2s",
        ],
    );
    assert!(err.contains("did not answer within 2s"), "{err}");
    // Bounded: the limit, not a default minute, decided when to give up.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

fn dpkg_status(n: usize) -> String {
    (0..n)
        .map(|i| format!("Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"))
        .collect()
}

/// Issue 11, finding 5: 800,000 dpkg packages in a small gzip layer drove `gantry scan` to
/// 3.3 GB and an allow. Now the dpkg parser stops past the cap and the scan fails naming the
/// limit, the layer and the value — also when the layer comes from the cache.
#[test]
fn a_layer_of_800000_dpkg_packages_is_refused_by_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let layer =
        LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/status", dpkg_status(800_000));
    let image = layout_with(dir.path(), layer);
    let err = expect_error(cache.path(), &["scan", &image]);
    assert!(
        err.contains("layer 1 (sha256:")
            && err.contains("var/lib/dpkg/status")
            && err.contains("more than 50000 packages in one layer (limit layer-packages=50000)"),
        "{err}"
    );
}

/// A layer cached under a higher cap is still held to the caps of the scan that reads it.
#[test]
fn a_cached_layer_is_held_to_the_current_caps() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let layer =
        LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/status", dpkg_status(3_000));
    let image = layout_with(dir.path(), layer);
    let out = crate::util::gantry(cache.path(), &["scan", &image]);
    assert_ne!(out.status.code(), Some(2), "{}", crate::util::stderr(&out));
    let err = expect_error(
        cache.path(),
        &["scan", &image, "--limit", "layer-packages=2000"],
    );
    assert!(
        err.contains("layer 1 (sha256:")
            && err.contains("more than 2000 packages in one layer (limit layer-packages=2000)"),
        "{err}"
    );
    let err = expect_error(
        cache.path(),
        &["scan", &image, "--limit", "image-packages=2500"],
    );
    assert!(err.contains("limit image-packages=2500"), "{err}");
}

/// Issue 11, finding 13: one zstd layer made the decoder allocate a 128 MiB window.
#[test]
fn a_zstd_long_window_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let layer = LayerBuilder::new(Compression::Zstd)
        .zstd_window_log(27)
        .zeros("data/zeros", 4 << 20);
    let image = layout_with(dir.path(), layer);
    let err = expect_error(cache.path(), &["scan", &image, "--no-cache"]);
    assert!(
        err.contains("layer 1") && err.contains("zstd-window-log-max=23"),
        "{err}"
    );
    let out = crate::util::gantry(
        cache.path(),
        &[
            "scan",
            &image,
            "--no-cache",
            "--limit",
            "zstd-window-log-max=27",
        ],
    );
    assert_ne!(out.status.code(), Some(2), "{}", crate::util::stderr(&out));
}
