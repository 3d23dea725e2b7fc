use std::fs;
use std::path::{Path, PathBuf};

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, ImageBuilder, LayerBuilder};

use crate::util::{demo_fixture, inspect_json};

fn sources(report: &serde_json::Value) -> Vec<String> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["source"].as_str().unwrap().to_string())
        .collect()
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn second_scan_reads_no_layer_and_reports_the_same() {
    let cache = tempfile::tempdir().unwrap();
    let fixture = format!("oci:{}", demo_fixture().display());
    let mut first = inspect_json(cache.path(), &fixture, &[]);
    assert_eq!(sources(&first), vec!["walked"; 3]);
    let mut second = inspect_json(cache.path(), &fixture, &[]);
    assert_eq!(sources(&second), vec!["cached"; 3]);
    // Apart from where results came from, the reports are identical.
    for r in [&mut first, &mut second] {
        for l in r["layers"].as_array_mut().unwrap() {
            l["source"] = serde_json::Value::Null;
        }
    }
    assert_eq!(first, second);
    assert_eq!(cache_files(cache.path()).len(), 3);
}

#[test]
fn shared_base_layer_is_not_read_again_for_another_image() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = || {
        LayerBuilder::new(Compression::Gzip)
            .file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.3\n")
    };
    let a = ImageBuilder::new()
        .layer(base())
        .layer(LayerBuilder::new(Compression::Gzip).file("app/a", "a"))
        .build()
        .unwrap();
    let b = ImageBuilder::new()
        .layer(base())
        .layer(LayerBuilder::new(Compression::Zstd).file("app/b", "b"))
        .build()
        .unwrap();
    assert_eq!(a.layers[0].digest, b.layers[0].digest);
    a.write_oci_layout(&dir.path().join("a"), None).unwrap();
    b.write_oci_layout(&dir.path().join("b"), None).unwrap();
    let ra = inspect_json(
        cache.path(),
        &format!("oci:{}", dir.path().join("a").display()),
        &[],
    );
    assert_eq!(sources(&ra), vec!["walked", "walked"]);
    let rb = inspect_json(
        cache.path(),
        &format!("oci:{}", dir.path().join("b").display()),
        &[],
    );
    assert_eq!(sources(&rb), vec!["cached", "walked"]);
    assert_eq!(rb["os"]["id"], "alpine");
}

#[test]
fn corrupt_cache_entries_are_walked_again() {
    let cache = tempfile::tempdir().unwrap();
    let fixture = format!("oci:{}", demo_fixture().display());
    let first = inspect_json(cache.path(), &fixture, &[]);
    let files = cache_files(cache.path());
    assert_eq!(files.len(), 3);
    fs::write(&files[0], b"{\"format\":1,\"trunc").unwrap();
    fs::write(&files[1], b"").unwrap();
    fs::write(&files[2], vec![0xffu8; 100]).unwrap();
    let again = inspect_json(cache.path(), &fixture, &[]);
    assert_eq!(sources(&again), vec!["walked"; 3]);
    assert_eq!(again["totals"], first["totals"]);
    let third = inspect_json(cache.path(), &fixture, &[]);
    assert_eq!(sources(&third), vec!["cached"; 3]);
}

#[test]
fn no_cache_walks_and_writes_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let fixture = format!("oci:{}", demo_fixture().display());
    let r = inspect_json(cache.path(), &fixture, &["--no-cache"]);
    assert_eq!(sources(&r), vec!["walked"; 3]);
    assert!(cache_files(cache.path()).is_empty());
}
