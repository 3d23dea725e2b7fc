//! `gantry sbom` and `gantry scan --sbom`: CycloneDX documents that validate against the
//! official schema (1.6 and 1.5), are byte-for-byte reproducible, and — on a real Debian
//! bookworm rootfs with real `pip install` and `npm install` trees — list exactly the packages
//! `dpkg-query`, `pip list` and `npm ls` report.
//!
//! Every document is validated against the official CycloneDX schema of its version, vendored
//! in gantry-testkit (`crates/testkit/schemas/`) and resolved offline. Needs (and fails, never
//! skips, without them) for the exactness images: root, debootstrap, pip, npm and the network
//! to Debian's mirror, PyPI and npm once:
//! `tests/fixtures/sbom/make-fixtures.sh` builds the trees, cached under
//! `target/gantry-fixtures/` (keyed by the script's hash) for every later run.
//!
//! `compare_with_trivy_and_syft` (ignored; `cargo test --test integration sbom::compare --
//! --ignored --nocapture`) prints how Gantry, Trivy and Syft differ on the same image.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, BuiltImage, ImageBuilder, LayerBuilder};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::util::{stderr, stdout};

/// `SOURCE_DATE_EPOCH` for reproducible documents: 2024-01-01T00:00:00Z.
const EPOCH: &str = "1704067200";

// ---------------------------------------------------------------------------------------
// Running gantry and the validator
// ---------------------------------------------------------------------------------------

/// Runs gantry in `cwd` with an isolated cache and `SOURCE_DATE_EPOCH` set.
fn run_gantry(cwd: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .current_dir(cwd)
        .env("GANTRY_CACHE_DIR", cache)
        .env("HOME", cache)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("gantry runs")
}

/// `gantry sbom IMAGE --spec SPEC -o FILE`; returns the file's text.
fn sbom_text(cwd: &Path, cache: &Path, image: &str, spec: &str, file: &Path) -> String {
    let file_arg = file.to_str().unwrap();
    let args = ["sbom", image, "--spec", spec, "-o", file_arg];
    let out = run_gantry(cwd, cache, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "gantry {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    fs::read_to_string(file).unwrap()
}

/// Validates every file against the vendored official CycloneDX schema of its `specVersion`.
fn validate(files: &[&Path]) {
    let schemas = gantry_testkit::CycloneDx::get().unwrap();
    for file in files {
        let doc = json(&fs::read_to_string(file).unwrap());
        if let Err(e) = schemas.validate(&doc) {
            panic!("{} is not valid CycloneDX: {e}", file.display());
        }
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"))
}

fn components(bom: &Value) -> &[Value] {
    bom["components"].as_array().map_or(&[], |v| v.as_slice())
}

/// The full package name a package manager prints: npm `@scope/name`, maven `group:name`.
fn full_name(c: &Value) -> String {
    let name = c["name"].as_str().unwrap_or_default();
    match (c["group"].as_str(), purl_type(c).as_str()) {
        (Some(g), "npm") => format!("{g}/{name}"),
        (Some(g), "maven") => format!("{g}:{name}"),
        _ => name.to_string(),
    }
}

fn purl_type(c: &Value) -> String {
    c["purl"]
        .as_str()
        .and_then(|p| p.strip_prefix("pkg:"))
        .and_then(|p| p.split('/').next())
        .unwrap_or("")
        .to_string()
}

/// (type, name, version) of the components of one purl type.
fn tnv(bom: &Value, kind: &str) -> BTreeSet<(String, String, String)> {
    components(bom)
        .iter()
        .filter(|c| purl_type(c) == kind)
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                full_name(c),
                c["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn libraries(pairs: BTreeSet<(String, String)>) -> BTreeSet<(String, String, String)> {
    pairs
        .into_iter()
        .map(|(n, v)| ("library".to_string(), n, v))
        .collect()
}

/// Both sets, and what each has that the other lacks, for an assertion message.
fn diff<T: Ord + std::fmt::Debug>(expected: &BTreeSet<T>, actual: &BTreeSet<T>) -> String {
    format!(
        "missing from the SBOM: {:#?}\nnot reported by the package manager: {:#?}",
        expected.difference(actual).collect::<Vec<_>>(),
        actual.difference(expected).collect::<Vec<_>>()
    )
}

fn depends_on(bom: &Value, bom_ref: &str) -> BTreeSet<String> {
    bom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == bom_ref)
        .map(|d| {
            d["dependsOn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Small synthetic images
// ---------------------------------------------------------------------------------------

const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";

fn dpkg(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nVersion: {version}\n{extra}Description: {name}\n\n"
    )
}

fn copyright(license: &str) -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: someone\nLicense: {license}\n"
    )
}

/// deb + apk + Python + npm in three layers, with dependencies and licenses.
fn mixed_image() -> BuiltImage {
    let status = [
        dpkg(
            "libc6",
            "2.36-9+deb12u9",
            "Source: glibc\nMulti-Arch: same\n",
        ),
        dpkg(
            "bash",
            "5.2.15-2+b7",
            "Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)\nPre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)\n",
        ),
        dpkg("base-files", "12.4+deb12u9", ""),
    ]
    .concat();
    let base = LayerBuilder::new(Compression::Gzip)
        .dir("etc")
        .file("usr/lib/os-release", OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("var/lib/dpkg/status", status)
        .file("var/lib/dpkg/info/bash.list", "/.\n/bin\n/bin/bash\n")
        .file(
            "var/lib/dpkg/info/libc6:amd64.list",
            "/.\n/lib/x86_64-linux-gnu/libc.so.6\n",
        )
        .file("usr/share/doc/bash/copyright", copyright("GPL-3+"))
        .file("usr/share/doc/libc6/copyright", copyright("LGPL-2.1+"))
        .file_mode("bin/bash", b"\x7fELF bash", 0o755);
    let apk = LayerBuilder::new(Compression::Zstd).file(
        "lib/apk/db/installed",
        "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
         C:Q1def=\nP:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\nD:so:libc.musl-x86_64.so.1 musl\nF:bin\nR:busybox\n\n",
    );
    let metadata = |name: &str, version: &str, license: &str, requires: &[&str]| {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: {license}\n"
        );
        for r in requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m
    };
    let package_json = |name: &str, version: &str, deps: &[(&str, &str)]| {
        let deps: serde_json::Map<String, Value> = deps
            .iter()
            .map(|(n, v)| (n.to_string(), Value::String(v.to_string())))
            .collect();
        serde_json::json!({"name": name, "version": version, "license": "MIT", "dependencies": deps})
            .to_string()
    };
    let site = "usr/local/lib/python3.11/site-packages";
    let apps = LayerBuilder::new(Compression::Gzip)
        .file(
            &format!("{site}/requests-2.32.3.dist-info/METADATA"),
            metadata(
                "requests",
                "2.32.3",
                "Apache-2.0",
                &[
                    "urllib3<3,>=1.21.1",
                    "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
                ],
            ),
        )
        .file(
            &format!("{site}/urllib3-2.2.3.dist-info/METADATA"),
            metadata("urllib3", "2.2.3", "MIT", &[]),
        )
        .file(
            "app/package.json",
            package_json("app", "1.0.0", &[("express", "^4")]),
        )
        .file(
            "app/node_modules/express/package.json",
            package_json("express", "4.21.2", &[("debug", "2.6.9"), ("ms", "2.1.3")]),
        )
        .file(
            "app/node_modules/debug/package.json",
            package_json("debug", "2.6.9", &[("ms", "2.0.0")]),
        )
        .file(
            "app/node_modules/ms/package.json",
            package_json("ms", "2.0.0", &[]),
        )
        .file(
            "app/node_modules/express/node_modules/ms/package.json",
            package_json("ms", "2.1.3", &[]),
        )
        .file(
            "app/node_modules/@types/node/package.json",
            package_json("@types/node", "22.10.2", &[]),
        );
    ImageBuilder::new()
        .label("org.opencontainers.image.title", "gantry-sbom-mixed")
        .layer_with_history(base, "ADD rootfs.tar.gz /")
        .layer_with_history(apk, "COPY apk /")
        .layer_with_history(apps, "COPY app /")
        .build()
        .unwrap()
}

/// Package metadata Gantry cannot read: it must show in the SBOM, not vanish.
fn unknowns_image() -> BuiltImage {
    ImageBuilder::new()
        .layer(
            LayerBuilder::new(Compression::Gzip)
                .file("usr/lib/os-release", OS_RELEASE)
                .file(
                    "var/lib/dpkg/status",
                    "Package: broken\nVersion: 1.0\nArchitecture: amd64\n\n",
                )
                .file(
                    "usr/lib/python3/dist-packages/broken-1.0.dist-info/METADATA",
                    "this is not a metadata file\n",
                )
                .file("app/node_modules/broken/package.json", "{ not json"),
        )
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Small images: validation, reproducibility, unknowns, `scan --sbom`
// ---------------------------------------------------------------------------------------

#[test]
fn empty_image_sbom_validates() {
    let dir = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new(Compression::Gzip))
        .build()
        .unwrap();
    image
        .write_oci_layout(&dir.path().join("empty"), None)
        .unwrap();
    let cache = dir.path().join("cache");
    let v16 = dir.path().join("empty-1.6.cdx.json");
    let v15 = dir.path().join("empty-1.5.cdx.json");
    let bom = json(&sbom_text(dir.path(), &cache, "oci:empty", "1.6", &v16));
    sbom_text(dir.path(), &cache, "oci:empty", "1.5", &v15);
    validate(&[&v16, &v15]);
    assert_eq!(bom["metadata"]["component"]["type"], "container");
    assert_eq!(bom["metadata"]["component"]["name"], "oci:empty");
    assert_eq!(
        bom["metadata"]["component"]["version"],
        image.manifest_digest.to_string()
    );
    assert_eq!(bom["metadata"]["timestamp"], "2024-01-01T00:00:00Z");
    assert!(components(&bom).is_empty(), "{bom:#}");
}

/// The committed golden document of the mixed image (regenerate with `GANTRY_BLESS=1`).
fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sbom")
        .join(name)
}

#[test]
fn mixed_image_sbom_is_valid_reproducible_and_golden() {
    let dir = tempfile::tempdir().unwrap();
    mixed_image()
        .write_oci_layout(&dir.path().join("mixed"), None)
        .unwrap();
    for spec in ["1.6", "1.5"] {
        let first = dir.path().join(format!("mixed-{spec}.cdx.json"));
        let again = dir.path().join(format!("mixed-{spec}-again.cdx.json"));
        // Cold cache, then warm: the same bytes either way.
        let text = sbom_text(
            dir.path(),
            &dir.path().join("cache"),
            "oci:mixed",
            spec,
            &first,
        );
        let text_again = sbom_text(
            dir.path(),
            &dir.path().join("cache"),
            "oci:mixed",
            spec,
            &again,
        );
        assert_eq!(text, text_again, "two runs differ");
        validate(&[&first]);
        let golden = golden(&format!("mixed-{spec}.cdx.json"));
        if std::env::var_os("GANTRY_BLESS").is_some() {
            fs::write(&golden, &text).unwrap();
        }
        let expected = fs::read_to_string(&golden).unwrap_or_default();
        assert!(
            text == expected,
            "{} differs from the output (GANTRY_BLESS=1 regenerates it after review):\n{text}",
            golden.display()
        );
    }
}

#[test]
fn mixed_image_sbom_lists_every_ecosystem() {
    let dir = tempfile::tempdir().unwrap();
    mixed_image()
        .write_oci_layout(&dir.path().join("mixed"), None)
        .unwrap();
    let file = dir.path().join("mixed.cdx.json");
    let bom = json(&sbom_text(
        dir.path(),
        &dir.path().join("cache"),
        "oci:mixed",
        "1.6",
        &file,
    ));
    let set = |v: &[(&str, &str)]| -> BTreeSet<(String, String, String)> {
        v.iter()
            .map(|(n, v)| ("library".to_string(), n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        tnv(&bom, "deb"),
        set(&[
            ("bash", "5.2.15-2+b7"),
            ("base-files", "12.4+deb12u9"),
            ("libc6", "2.36-9+deb12u9")
        ])
    );
    assert_eq!(
        tnv(&bom, "apk"),
        set(&[("busybox", "1.36.1-r29"), ("musl", "1.2.5-r0")])
    );
    assert_eq!(
        tnv(&bom, "pypi"),
        set(&[("requests", "2.32.3"), ("urllib3", "2.2.3")])
    );
    assert_eq!(
        tnv(&bom, "npm"),
        set(&[
            ("@types/node", "22.10.2"),
            ("debug", "2.6.9"),
            ("express", "4.21.2"),
            ("ms", "2.0.0"),
            ("ms", "2.1.3")
        ])
    );
    let by_purl = |p: &str| {
        components(&bom)
            .iter()
            .find(|c| c["purl"] == p)
            .unwrap_or_else(|| panic!("no {p} in {bom:#}"))
    };
    let bash = "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12";
    let libc = "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12";
    assert_eq!(
        by_purl(bash)["evidence"]["occurrences"][0]["location"],
        "/var/lib/dpkg/status"
    );
    assert!(depends_on(&bom, bash).contains(libc), "bash → libc6");
    assert_eq!(
        depends_on(&bom, "pkg:npm/express@4.21.2"),
        BTreeSet::from([
            "pkg:npm/debug@2.6.9".to_string(),
            "pkg:npm/ms@2.1.3".to_string()
        ]),
        "express gets its own node_modules/ms"
    );
    assert_eq!(
        depends_on(&bom, "pkg:npm/debug@2.6.9"),
        BTreeSet::from(["pkg:npm/ms@2.0.0".to_string()])
    );
    assert_eq!(
        depends_on(&bom, "pkg:pypi/requests@2.32.3"),
        BTreeSet::from(["pkg:pypi/urllib3@2.2.3".to_string()])
    );
    assert_eq!(by_purl("pkg:npm/%40types/node@22.10.2")["group"], "@types");
    assert_eq!(
        by_purl("pkg:pypi/requests@2.32.3")["licenses"],
        serde_json::json!([{"license": {"id": "Apache-2.0"}}])
    );
    let os = components(&bom)
        .iter()
        .find(|c| c["type"] == "operating-system")
        .expect("an operating-system component");
    assert_eq!(
        (os["name"].as_str(), os["version"].as_str()),
        (Some("debian"), Some("12"))
    );
}

#[test]
fn unknown_package_metadata_is_in_the_sbom() {
    let dir = tempfile::tempdir().unwrap();
    unknowns_image()
        .write_oci_layout(&dir.path().join("unknowns"), None)
        .unwrap();
    let mut files = Vec::new();
    for spec in ["1.6", "1.5"] {
        let file = dir.path().join(format!("unknowns-{spec}.cdx.json"));
        let bom = json(&sbom_text(
            dir.path(),
            &dir.path().join("cache"),
            "oci:unknowns",
            spec,
            &file,
        ));
        let unknown: BTreeSet<&str> = components(&bom)
            .iter()
            .filter(|c| c["type"] == "file")
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for path in [
            "/var/lib/dpkg/status",
            "/usr/lib/python3/dist-packages/broken-1.0.dist-info/METADATA",
            "/app/node_modules/broken/package.json",
        ] {
            assert!(unknown.contains(path), "{path} is not reported: {bom:#}");
        }
        files.push(file);
    }
    validate(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
}

#[test]
fn scan_writes_the_same_sbom() {
    let dir = tempfile::tempdir().unwrap();
    mixed_image()
        .write_oci_layout(&dir.path().join("mixed"), None)
        .unwrap();
    let cache = dir.path().join("cache");
    let from_sbom = sbom_text(
        dir.path(),
        &cache,
        "oci:mixed",
        "1.5",
        &dir.path().join("a.json"),
    );
    let out = run_gantry(
        dir.path(),
        &cache,
        &[
            "scan",
            "oci:mixed",
            "--sbom",
            "b.json",
            "--sbom-spec",
            "1.5",
            "--format",
            "json",
        ],
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "gantry scan failed:\n{}",
        stderr(&out)
    );
    let from_scan = fs::read_to_string(dir.path().join("b.json")).unwrap();
    assert_eq!(
        from_sbom, from_scan,
        "gantry sbom and gantry scan --sbom differ"
    );
}

// ---------------------------------------------------------------------------------------
// Exactness on real package metadata
// ---------------------------------------------------------------------------------------

/// Bumped when the image recipe below changes (the trees are keyed by the script's hash).
const RECIPE_VERSION: &str = "1";

/// The cached fixture directory: `target/gantry-fixtures/sbom-<hash>/`.
fn fixture_dir() -> PathBuf {
    let script = fixture_script();
    let hash = Sha256::digest(fs::read(&script).unwrap());
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    target.join("gantry-fixtures").join(format!(
        "sbom-{}-{RECIPE_VERSION}",
        &hex::encode(hash)[..12]
    ))
}

fn fixture_script() -> PathBuf {
    golden("make-fixtures.sh")
}

/// A lock between test processes (cargo test runs one binary, nextest many): a directory
/// holding the owner's pid, taken over when that process is gone.
struct DirLock(PathBuf);

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn lock(path: &Path) -> DirLock {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    loop {
        match fs::create_dir(path) {
            Ok(()) => {
                fs::write(path.join("pid"), std::process::id().to_string()).unwrap();
                return DirLock(path.to_path_buf());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(path.join("pid"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                let stale = match owner {
                    Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
                    // Taken but no pid yet: stale only if that lasts.
                    None => fs::metadata(path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60)),
                };
                if stale {
                    let _ = fs::remove_dir_all(path);
                    continue;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {}",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("creating lock {}: {e}", path.display()),
        }
    }
}

/// The fixture trees (rootfs, python, node), built once by make-fixtures.sh.
fn trees() -> &'static Path {
    static TREES: OnceLock<PathBuf> = OnceLock::new();
    TREES.get_or_init(|| {
        let dir = fixture_dir();
        if !dir.join(".done").exists() {
            let _lock = lock(&dir.with_extension("lock"));
            if !dir.join(".done").exists() {
                let started = Instant::now();
                let out = Command::new("bash")
                    .arg(fixture_script())
                    .arg(&dir)
                    .output()
                    .expect("bash runs");
                assert!(
                    out.status.success(),
                    "building the SBOM fixtures failed (tests/fixtures/sbom/make-fixtures.sh needs root, \
                     debootstrap, pip, npm and the network to Debian's mirror, PyPI and npm):\n{}",
                    stderr(&out)
                );
                eprintln!("sbom fixtures built in {:.0?}", started.elapsed());
            }
        }
        dir
    })
}

/// The exactness image: the bookworm rootfs, then the pip layer, then the npm layer.
fn app_image() -> BuiltImage {
    let trees = trees();
    ImageBuilder::new()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip)
                .from_dir(&trees.join("rootfs"))
                .unwrap(),
            "debootstrap --variant=minbase bookworm",
        )
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip)
                .from_dir(&trees.join("python"))
                .unwrap(),
            "pip install --target /opt/pyapp requests; pip install --prefix /usr/local flask",
        )
        .layer_with_history(
            LayerBuilder::new(Compression::Zstd)
                .from_dir(&trees.join("node"))
                .unwrap(),
            "npm install express",
        )
        .build()
        .unwrap()
}

/// The exactness image as an OCI layout (built once, cached with the trees).
fn app_layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let dir = trees().join("images/app");
        if !dir.join(".done").exists() {
            let _lock = lock(&trees().join("images.lock"));
            if !dir.join(".done").exists() {
                let _ = fs::remove_dir_all(&dir);
                app_image().write_oci_layout(&dir, None).unwrap();
                fs::write(dir.join(".done"), "").unwrap();
            }
        }
        dir
    })
}

/// The exactness image's SBOM in one spec version (computed once per test process) and the
/// file it was written to.
fn app_sbom(spec: &'static str) -> &'static (Value, PathBuf) {
    static V16: OnceLock<(Value, PathBuf)> = OnceLock::new();
    static V15: OnceLock<(Value, PathBuf)> = OnceLock::new();
    let cell = if spec == "1.5" { &V15 } else { &V16 };
    cell.get_or_init(|| {
        let layout = app_layout();
        let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sbom-app-{}-{spec}", std::process::id()));
        fs::create_dir_all(&out_dir).unwrap();
        let file = out_dir.join(format!("app-{spec}.cdx.json"));
        let image = format!("oci:{}", layout.display());
        let started = Instant::now();
        let text = sbom_text(&out_dir, &out_dir.join("cache"), &image, spec, &file);
        eprintln!(
            "gantry sbom (cold cache) on the bookworm app image: {:.1?}",
            started.elapsed()
        );
        (json(&text), file)
    })
}

#[test]
fn bookworm_debs_match_dpkg_query() {
    let admindir = trees().join("rootfs/var/lib/dpkg");
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args(["-W", "-f", "${db:Status-Status} ${Package} ${Version}\\n"])
        .output()
        .expect("dpkg-query runs (apt-get install dpkg)");
    assert!(out.status.success(), "dpkg-query: {}", stderr(&out));
    let expected: BTreeSet<(String, String)> = stdout(&out)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            match (f.next(), f.next(), f.next()) {
                (Some("installed"), Some(n), Some(v)) => Some((n.to_string(), v.to_string())),
                _ => None,
            }
        })
        .collect();
    assert!(
        expected.len() > 50,
        "a minbase rootfs has ~90 packages: {expected:?}"
    );
    let (bom, _) = app_sbom("1.6");
    let expected = libraries(expected);
    let actual = tnv(bom, "deb");
    assert!(expected == actual, "{}", diff(&expected, &actual));
}

fn pip_list(path: &Path) -> BTreeSet<(String, String)> {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "list",
            "--disable-pip-version-check",
            "--format",
            "json",
            "--path",
        ])
        .arg(path)
        .output()
        .expect("python3 -m pip runs");
    assert!(out.status.success(), "pip list: {}", stderr(&out));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn pip_trees_match_pip_list() {
    let python = trees().join("python");
    let lib = python.join("usr/local/lib");
    let prefix_site = fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages"))
        .find(|p| p.exists())
        .expect("usr/local/lib/python3.*/site-packages");
    let mut expected = pip_list(&python.join("opt/pyapp"));
    expected.extend(pip_list(&prefix_site));
    assert!(expected.len() >= 10, "{expected:?}");
    let (bom, _) = app_sbom("1.6");
    let expected = libraries(expected);
    let actual = tnv(bom, "pypi");
    assert!(expected == actual, "{}", diff(&expected, &actual));
    // Requires-Dist resolved within the image.
    let requests = components(bom)
        .iter()
        .find(|c| c["name"] == "requests")
        .unwrap();
    let deps: BTreeSet<String> = depends_on(bom, requests["bom-ref"].as_str().unwrap())
        .into_iter()
        .filter_map(|r| {
            components(bom)
                .iter()
                .find(|c| c["bom-ref"] == r.as_str())
                .map(|c| c["name"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        deps,
        ["certifi", "charset-normalizer", "idna", "urllib3"]
            .map(String::from)
            .into()
    );
}

/// `npm ls --all --json` as (name, version) → the (name, version) of its dependencies.
fn npm_ls(app: &Path) -> BTreeMap<(String, String), BTreeSet<(String, String)>> {
    let out = Command::new("npm")
        .args(["ls", "--all", "--json"])
        .current_dir(app)
        .output()
        .expect("npm runs");
    assert!(out.status.success(), "npm ls: {}", stderr(&out));
    let tree: Value = serde_json::from_slice(&out.stdout).unwrap();
    fn walk(
        node: &Value,
        out: &mut BTreeMap<(String, String), BTreeSet<(String, String)>>,
    ) -> BTreeSet<(String, String)> {
        let mut children = BTreeSet::new();
        if let Some(deps) = node["dependencies"].as_object() {
            for (name, dep) in deps {
                let Some(version) = dep["version"].as_str() else {
                    continue; // missing optional dependency
                };
                let key = (name.clone(), version.to_string());
                let grandchildren = walk(dep, out);
                // "deduped" entries repeat a package listed elsewhere with its children.
                let entry = out.entry(key.clone()).or_default();
                entry.extend(grandchildren);
                children.insert(key);
            }
        }
        children
    }
    let mut out = BTreeMap::new();
    walk(&tree, &mut out);
    out
}

#[test]
fn npm_tree_matches_npm_ls() {
    let tree = npm_ls(&trees().join("node/app"));
    assert!(tree.len() > 50, "express has ~70 packages: {tree:?}");
    let (bom, _) = app_sbom("1.6");
    let expected = libraries(tree.keys().cloned().collect());
    let actual = tnv(bom, "npm");
    assert!(expected == actual, "{}", diff(&expected, &actual));
    // The dependency graph is npm's: each package's edges lead to the versions npm resolved.
    let by_ref: BTreeMap<&str, (String, String)> = components(bom)
        .iter()
        .filter(|c| purl_type(c) == "npm")
        .map(|c| {
            (
                c["bom-ref"].as_str().unwrap(),
                (full_name(c), c["version"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    let mut graph: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for (r, key) in &by_ref {
        let deps = depends_on(bom, r)
            .iter()
            .filter_map(|d| by_ref.get(d.as_str()).cloned())
            .collect::<BTreeSet<_>>();
        graph.entry(key.clone()).or_default().extend(deps);
    }
    let mismatched: Vec<_> = tree
        .iter()
        .filter(|(k, deps)| graph.get(*k) != Some(*deps))
        .map(|(k, deps)| (k, deps, graph.get(k)))
        .collect();
    assert!(
        mismatched.is_empty(),
        "edges differ from npm ls: {mismatched:#?}"
    );
}

#[test]
fn bookworm_sbom_validates_in_both_versions() {
    let (v16, f16) = app_sbom("1.6");
    let (v15, f15) = app_sbom("1.5");
    validate(&[f16, f15]);
    // Identical inventories; only the spec-dependent parts differ.
    for kind in ["deb", "pypi", "npm"] {
        assert_eq!(tnv(v16, kind), tnv(v15, kind));
    }
    let os = components(v16)
        .iter()
        .find(|c| c["type"] == "operating-system")
        .unwrap();
    assert_eq!(os["name"], "debian");
    assert_eq!(os["version"], "12");
    // Every deb carries the layer it came from.
    let layer0 = v16["metadata"]["component"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gantry:image:layer:0:digest")
        .unwrap()["value"]
        .clone();
    for c in components(v16).iter().filter(|c| purl_type(c) == "deb") {
        assert!(
            c["properties"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "gantry:layer:digest" && p["value"] == layer0),
            "{c:#}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Trivy and Syft on the same image (ignored: prints the comparison for docs/sbom.md)
// ---------------------------------------------------------------------------------------

fn peer(name: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let p = PathBuf::from(home)
        .join(".cache/gantry-peers/bin")
        .join(name);
    assert!(
        p.exists(),
        "{name} is missing from ~/.cache/gantry-peers/bin (scripts/bench.sh says how to install it)"
    );
    p
}

/// (ecosystem, type, name, version) of every component of a CycloneDX document, nested
/// components included; the ecosystem is the purl type, or the component type without one.
fn inventory(bom: &Value) -> BTreeSet<(String, String, String, String)> {
    fn walk(list: &Value, out: &mut BTreeSet<(String, String, String, String)>) {
        for c in list.as_array().into_iter().flatten() {
            let eco = purl_type(c);
            let kind = c["type"].as_str().unwrap_or_default().to_string();
            out.insert((
                if eco.is_empty() { kind.clone() } else { eco },
                kind,
                full_name(c),
                c["version"].as_str().unwrap_or_default().to_string(),
            ));
            walk(&c["components"], out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&bom["components"], &mut out);
    out
}

#[test]
#[ignore = "compares with Trivy and Syft (optional tools, see scripts/bench.sh); prints the differences"]
fn compare_with_trivy_and_syft() {
    let archive = trees().join("images/app.docker.tar");
    if !archive.exists() {
        let _lock = lock(&trees().join("images.lock"));
        if !archive.exists() {
            app_image()
                .write_docker_archive(&archive, Some("gantry-fixture/app:1"))
                .unwrap();
        }
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let time = |what: &str, cmd: &mut Command| {
        let started = Instant::now();
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{what}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        eprintln!("{what}: {:.1?}", started.elapsed());
    };
    time(
        "trivy",
        Command::new(peer("trivy"))
            .args(["image", "--input"])
            .arg(&archive)
            .args([
                "--cache-backend",
                "memory",
                "--offline-scan",
                "--skip-db-update",
            ])
            .args([
                "--skip-java-db-update",
                "-q",
                "--list-all-pkgs",
                "--format",
                "cyclonedx",
            ])
            .arg("--cache-dir")
            .arg(w.join("trivy-cache"))
            .arg("-o")
            .arg(w.join("trivy.json")),
    );
    time(
        "syft",
        Command::new(peer("syft"))
            .arg("scan")
            .arg(format!("docker-archive:{}", archive.display()))
            .args(["-q", "-o"])
            .arg(format!(
                "cyclonedx-json@1.6={}",
                w.join("syft.json").display()
            ))
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false"),
    );
    let gantry = sbom_text(
        w,
        &w.join("cache"),
        &format!("docker-archive:{}", archive.display()),
        "1.6",
        &w.join("gantry.json"),
    );
    let read = |n: &str| json(&fs::read_to_string(w.join(n)).unwrap());
    let tools = [
        ("gantry", inventory(&json(&gantry))),
        ("trivy", inventory(&read("trivy.json"))),
        ("syft", inventory(&read("syft.json"))),
    ];
    let mut report = String::new();
    for (name, inv) in &tools {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (eco, ..) in inv {
            *per.entry(eco.as_str()).or_default() += 1;
        }
        report.push_str(&format!("{name}: {} components {per:?}\n", inv.len()));
    }
    // Differences on (type, name, version), per ecosystem, pairwise against Gantry.
    for (name, inv) in &tools[1..] {
        let ours: BTreeSet<_> = tools[0].1.iter().collect();
        let theirs: BTreeSet<_> = inv.iter().collect();
        report.push_str(&format!("\n== only in gantry (vs {name}):\n"));
        for x in ours.difference(&theirs) {
            report.push_str(&format!("  {x:?}\n"));
        }
        report.push_str(&format!("== only in {name}:\n"));
        for x in theirs.difference(&ours) {
            report.push_str(&format!("  {x:?}\n"));
        }
    }
    let out = trees().join("compare-report.txt");
    fs::write(&out, &report).unwrap();
    for n in ["trivy.json", "syft.json", "gantry.json"] {
        let _ = fs::copy(w.join(n), trees().join(format!("compare-{n}")));
    }
    eprintln!("{report}\n(written to {})", out.display());
}
