//! Gantry's own image (gantry-imagebuild, the code behind `scripts/image.sh`), dogfooded:
//! built twice from the binary under test to the same digest, run from its unpacked root
//! file system with `chroot` (which proves the shared-library closure is complete), judged by
//! `gantry scan` (allowed by the built-in policies, its SBOM listing the Debian packages its
//! files come from), and pushed to the real registry with the same digest.
//!
//! The binary is the test build's `gantry` with its debug info stripped (`objcopy
//! --strip-debug`, as a release image would ship it; 380 MB of DWARF would only slow the
//! gzip). `chroot` needs root: elsewhere that one step is skipped with a message saying so,
//! and everything else still runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_imagebuild::{BINARY_PATH, Image, PushOptions, Recipe, build, push};
use gantry_testkit::RegistryHarness;
use serde_json::Value;

use crate::util::{gantry, stderr, stdout};

/// 2024-01-01T00:00:00Z.
const EPOCH: i64 = 1_704_067_200;

fn stripped_binary(dir: &Path) -> PathBuf {
    let out = dir.join("gantry");
    let status = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(env!("CARGO_BIN_EXE_gantry"))
        .arg(&out)
        .status()
        .expect("objcopy (binutils) runs");
    assert!(status.success(), "objcopy --strip-debug failed");
    out
}

fn recipe(binary: &Path, epoch: i64) -> Recipe {
    let mut r = Recipe::new(binary, "0.1.0", "0123456789ab", epoch);
    r.source = Some("https://example.invalid/gantry".to_string());
    r
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// Unpacks the image's one layer with GNU tar (an independent reader) into `root`.
fn unpack(image: &Image, layout: &Path, root: &Path) {
    let layer = &image.built.layers[0];
    let file = layout.join("layer.tar.gz");
    std::fs::write(&file, blob(layout, &layer.digest.to_string())).unwrap();
    std::fs::create_dir_all(root).unwrap();
    let status = Command::new("tar")
        .args(["-xzf"])
        .arg(&file)
        .arg("-C")
        .arg(root)
        .args(["--same-owner", "--numeric-owner"])
        .status()
        .unwrap();
    assert!(status.success(), "tar could not unpack the layer");
}

#[test]
fn gantrys_own_image_is_reproducible_runs_and_is_allowed_by_gantry() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let binary = stripped_binary(w);

    // Reproducible: the same inputs give the same digest; another epoch gives another.
    let image = build(&recipe(&binary, EPOCH)).unwrap();
    let again = build(&recipe(&binary, EPOCH)).unwrap();
    assert_eq!(image.digest(), again.digest());
    assert_eq!(image.built.layers[0].digest, again.built.layers[0].digest);
    let later = build(&recipe(&binary, EPOCH + 1)).unwrap();
    assert_ne!(
        image.digest(),
        later.digest(),
        "SOURCE_DATE_EPOCH is ignored"
    );
    let layout = w.join("layout");
    image.write_layout(&layout, Some("0.1.0")).unwrap();
    let layout_again = w.join("layout-again");
    again.write_layout(&layout_again, Some("0.1.0")).unwrap();
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        std::fs::read(layout_again.join("index.json")).unwrap()
    );

    // The config: non-root, no shell, the OCI labels (and the same as manifest annotations).
    let manifest = json_blob(&layout, &image.digest());
    let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([BINARY_PATH])
    );
    assert_eq!(config["created"], "2024-01-01T00:00:00Z");
    let labels = &config["config"]["Labels"];
    for (key, value) in [
        ("org.opencontainers.image.version", "0.1.0"),
        ("org.opencontainers.image.revision", "0123456789ab"),
        (
            "org.opencontainers.image.source",
            "https://example.invalid/gantry",
        ),
        ("org.opencontainers.image.licenses", "Apache-2.0"),
        ("org.opencontainers.image.created", "2024-01-01T00:00:00Z"),
    ] {
        assert_eq!(labels[key], value, "label {key}");
        assert_eq!(manifest["annotations"][key], value, "annotation {key}");
    }
    // FROM scratch: no base is claimed.
    assert!(
        !manifest["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("org.opencontainers.image.base")),
        "{manifest:#}"
    );
    assert!(!image.rootfs.has_shell(), "{:#?}", image.rootfs.paths());
    let paths = image.rootfs.paths();
    for wanted in [
        BINARY_PATH,
        "/etc/passwd",
        "/etc/group",
        gantry_imagebuild::CA_BUNDLE,
    ] {
        assert!(
            paths.iter().any(|p| p == wanted),
            "{wanted} missing: {paths:#?}"
        );
    }
    assert!(
        !image.rootfs.libraries.is_empty() || image.rootfs.packages.is_empty(),
        "a dynamic binary ships its libraries"
    );

    // Runs from its own root file system, as user 65532: only what the image holds is there.
    let root = w.join("rootfs");
    unpack(&image, &layout, &root);
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if is_root {
        let out = Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(&root)
            .args([BINARY_PATH, "--version"])
            // Only PATH, so that `chroot` itself is found; nothing else of the host leaks in.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gantry --version failed in the image's root file system:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).starts_with("gantry 0.1.0 (git "),
            "{}",
            stdout(&out)
        );
        // Nothing else to run: no shell.
        let sh = Command::new("chroot")
            .arg(&root)
            .arg("/bin/sh")
            .arg("-c")
            .arg("true")
            .output()
            .unwrap();
        assert!(!sh.status.success(), "a shell ran inside the image");
    } else {
        eprintln!("SKIPPED: running gantry --version under chroot needs root (this user is not)");
    }

    // Judged by Gantry itself: allowed by the built-in policies.
    let cache = w.join("cache");
    let sbom = w.join("sbom.cdx.json");
    let report = w.join("report.json");
    let out = gantry(
        &cache,
        &[
            "scan",
            &format!("oci:{}", layout.display()),
            "--format",
            "json",
            "-o",
            report.to_str().unwrap(),
            "--sbom",
            sbom.to_str().unwrap(),
        ],
    );
    let report: Value = match std::fs::read_to_string(&report) {
        Ok(text) => serde_json::from_str(&text).unwrap(),
        Err(e) => panic!("no report ({e}):\n{}{}", stdout(&out), stderr(&out)),
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "Gantry denies its own image:\n{}{}\n{report:#}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(report["verdict"]["decision"], "allow", "{report:#}");

    // Its SBOM lists what it contains: every Debian package whose files ship, at its version.
    let bom: Value = serde_json::from_str(&std::fs::read_to_string(&sbom).unwrap()).unwrap();
    gantry_testkit::CycloneDx::get()
        .unwrap()
        .validate(&bom)
        .unwrap();
    let components = bom["components"].as_array().cloned().unwrap_or_default();
    for pkg in &image.rootfs.packages {
        assert!(
            components
                .iter()
                .any(|c| c["name"] == pkg.name.as_str() && c["version"] == pkg.version.as_str()),
            "{} {} is not in the SBOM: {components:#?}",
            pkg.name,
            pkg.version
        );
    }
    if Path::new("/usr/bin/dpkg-query").exists() {
        let names: Vec<&str> = image
            .rootfs
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert!(names.contains(&"libc6"), "{names:?}");
        assert!(names.contains(&"ca-certificates"), "{names:?}");
    }
    assert_eq!(bom["metadata"]["component"]["version"], image.digest());

    // Pushed to the real registry: the same manifest digest, and Gantry judges it there too.
    let registry = RegistryHarness::start().unwrap();
    let reference = format!("{}/platform/gantry:0.1.0", registry.host());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = PushOptions {
        insecure_registries: vec![registry.host()],
        ..PushOptions::default()
    };
    let pushed = runtime
        .block_on(push(&image, &reference, &options))
        .unwrap();
    assert_eq!(pushed.digest, image.digest());
    assert_eq!(
        pushed.pinned,
        format!("{}/platform/gantry@{}", registry.host(), image.digest())
    );
    // A second push finds every blob there and only puts the manifest again.
    runtime
        .block_on(push(&image, &reference, &options))
        .unwrap();
    let out = gantry(&cache, &["scan", &pushed.pinned]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = gantry(&cache, &["inspect", &reference, "--format", "json"]);
    assert!(
        stdout(&out).contains(&image.digest()),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
