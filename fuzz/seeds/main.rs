//! Writes the seed inputs of every target into `fuzz/corpus/<target>/seed-*` (docs/fuzzing.md):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz build seeds && fuzz/target/x86_64-unknown-linux-gnu/release/seeds`.
//!
//! Seeds are the project's own: layers written with the tar crate as `gantry-testkit`'s
//! `LayerBuilder` writes them (PAX and GNU long names, a huge PAX header, whiteouts, links),
//! package databases and executables written with the analyzer tests' `craft` helpers
//! (included below from `crates/analyze/tests/it/craft.rs`), the demo image under
//! `tests/fixtures/demo/`, the recorded webhook payloads of `crates/server/tests/payloads/` and
//! the AdmissionReview of `tests/fixtures/admission/`. Then it walks every `package_db` seed
//! and prints what each one's walk produced by analyzer: the check that every reader is reached.

// Built with the fuzz targets' coverage instrumentation, whose hooks libFuzzer defines.
use libfuzzer_sys as _;

use std::path::{Path, PathBuf};

#[allow(dead_code, clippy::all)]
#[path = "../../crates/analyze/tests/it/craft.rs"]
mod craft;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn prefixed(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = first.to_vec();
    v.extend_from_slice(rest);
    v
}

/// A tar of `(path, kind, link or content, mode)` entries; long paths get GNU long-name
/// entries from the tar crate, `pax` ones a PAX `path` record.
fn layer(entries: &[(&str, tar::EntryType, &[u8], u32)], pax: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_mtime(0);
        if kind.is_symlink() || kind.is_hard_link() {
            h.set_size(0);
            b.append_link(&mut h, path, std::str::from_utf8(data).unwrap())
                .unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, *data).unwrap();
        }
    }
    for (path, data) in pax {
        b.append_pax_extensions([("path", path.as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_path("placeholder").unwrap();
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A PAX extension header claiming `size` bytes, with none following (the walker must refuse
/// it before reading the body).
fn huge_pax(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeaders/x").unwrap();
    h.set_size(size);
    h.set_cksum();
    let mut v = h.as_bytes().to_vec();
    v.resize(v.len() + 1024, 0);
    v
}

fn layer_seeds() {
    use tar::EntryType::{Directory, Fifo, Link, Regular, Symlink};
    let long_a = format!("a/{}/file", "p".repeat(150));
    let long_b = format!("b/{}/file", "g".repeat(150));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "files",
            layer(
                &[
                    ("etc", Directory, b"", 0o755),
                    (
                        "etc/os-release",
                        Regular,
                        b"ID=debian\nVERSION_ID=12\n",
                        0o644,
                    ),
                    (
                        "etc/passwd",
                        Regular,
                        b"root:x:0:0:root:/root:/bin/sh\n",
                        0o644,
                    ),
                    ("usr/bin/tool", Regular, b"#!/bin/sh\n", 0o4755),
                    ("bin", Symlink, b"usr/bin", 0o777),
                    ("usr/bin/tool2", Link, b"usr/bin/tool", 0o755),
                ],
                &[],
            ),
        ),
        (
            "whiteouts",
            layer(
                &[
                    ("etc/.wh.passwd", Regular, b"", 0o644),
                    ("var/cache/.wh..wh..opq", Regular, b"", 0o644),
                    ("run/f", Fifo, b"", 0o644),
                ],
                &[],
            ),
        ),
        (
            "long-names",
            layer(&[(&long_b, Regular, b"gnu", 0o644)], &[(&long_a, b"pax")]),
        ),
        ("huge-pax", huge_pax(1 << 40)),
        (
            "secrets",
            layer(
                &[(
                    "app/.env",
                    Regular,
                    b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
                    0o644,
                )],
                &[],
            ),
        ),
    ];
    for (name, body) in &cases {
        for (mode, suffix) in [(0u8, "tar"), (1, "gz"), (2, "zst")] {
            write(
                "layer_tar",
                &format!("{name}.{suffix}"),
                &prefixed(&[mode], body),
            );
        }
    }
    // Compressed streams as stored: the demo image's layers (one gzip, one zstd).
    let blobs = root().join("tests/fixtures/demo/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        match bytes.get(..4) {
            Some([0x1f, 0x8b, ..]) => write("layer_tar", "demo.gz-stream", &prefixed(&[3], &bytes)),
            Some([0x28, 0xb5, 0x2f, 0xfd]) => {
                write("layer_tar", "demo.zst-stream", &prefixed(&[4], &bytes))
            }
            _ => {}
        }
    }
}

const DPKG_STATUS: &str = "Package: libc6\nStatus: install ok installed\nPriority: optional\n\
Section: libs\nInstalled-Size: 12000\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\
Architecture: amd64\nMulti-Arch: same\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\n\
Depends: libgcc-s1\nDescription: GNU C Library: Shared libraries\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n";

const APK_INSTALLED: &str = "C:Q1abcdefghijklmnopqrstuvwxyz0123=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\
S:383152\nI:622592\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\n\
L:MIT\no:musl\nm:Timo Teräs <timo.teras@iki.fi>\nt:1697472387\nc:6d4f6a1f\nD:so:libc.musl-x86_64.so.1\n\
F:lib\nR:ld-musl-x86_64.so.1\n\n";

const METADATA: &str = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\
Summary: Python HTTP for Humans.\nLicense: Apache 2.0\nRequires-Dist: idna (<4,>=2.5)\n\n";

fn go_binary() -> Vec<u8> {
    use craft::Section;
    craft::elf64(
        vec![
            Section::new(".text", craft::filler(4096, 1)),
            Section::new(
                ".go.buildinfo",
                craft::go_buildinfo(
                    "go1.22.5",
                    "path\texample.com/app\nmod\texample.com/app\tv1.0.0\t\n\
                     dep\tgolang.org/x/sys\tv0.20.0\th1:abc=\nbuild\t-compiler=gc\n",
                ),
            ),
        ],
        vec![Section::new(
            ".comment",
            b"Go cmd/compile go1.22.5\0".to_vec(),
        )],
    )
}

fn rust_binary() -> Vec<u8> {
    use craft::Section;
    let deps = r#"{"packages":[{"name":"memchr","version":"2.7.1","source":"crates.io"},{"name":"app","version":"0.1.0","source":"local","dependencies":[0],"root":true}],"format":1}"#;
    craft::elf64(
        vec![Section::new(".text", craft::filler(4096, 2))],
        vec![
            Section::new(".comment", b"rustc version 1.75.0\0".to_vec()),
            Section {
                align: 1,
                ..Section::new(".dep-v0", craft::zlib(deps.as_bytes()))
            },
        ],
    )
}

fn rpmdb() -> Vec<u8> {
    use craft::Val::{I32, Str};
    craft::rpmdb_sqlite(&[craft::rpm_header(&[
        (1000, Str("openssl-libs")),
        (1001, Str("3.0.7")),
        (1002, Str("27.el9")),
        (1003, I32(vec![1])),
        (1014, Str("ASL 2.0")),
        (1022, Str("x86_64")),
        (1044, Str("openssl-3.0.7-27.el9.src.rpm")),
    ])])
}

/// The seed content for each of `gantry_fuzz::PACKAGE_PATHS`, then `JAR_MEMBERS`.
fn package_content(path: &str) -> Vec<u8> {
    let s = |t: &str| t.as_bytes().to_vec();
    match path {
        "var/lib/dpkg/status" | "var/lib/dpkg/status.d/fuzz" => s(DPKG_STATUS),
        "var/lib/dpkg/info/fuzz.list" => s("/.\n/usr\n/usr/bin/fuzz\n"),
        "usr/share/doc/fuzz/copyright" => s(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
             Files: *\nCopyright: 2024 Example\nLicense: GPL-2+\n",
        ),
        "lib/apk/db/installed" => s(APK_INSTALLED),
        "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" => rpmdb(),
        "var/lib/rpm/Packages" => {
            // BerkeleyDB hash magic at offset 12.
            let mut b = vec![0u8; 64];
            b[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
            b
        }
        "usr/lib/sysimage/rpm/Packages.db" => s("RpmP\u{1}\0\0\0"),
        "var/lib/rpm/rpmdb.sqlite-wal" => vec![0x37, 0x7f, 0x06, 0x82, 0, 0x2d, 0xe2, 0x18],
        p if p.ends_with("METADATA") || p.ends_with("PKG-INFO") || p.ends_with(".egg-info") => {
            s(METADATA)
        }
        p if p.ends_with("package-lock.json") => s(
            r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0","dependencies":{"left-pad":"^1.3.0"}},"node_modules/left-pad":{"version":"1.3.0","resolved":"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz","license":"WTFPL","dev":true}}}"#,
        ),
        p if p.ends_with("package.json") => s(
            r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL","dependencies":{"a":"1"},"devDependencies":{"b":"2"}}"#,
        ),
        "usr/local/bin/fuzz" => go_binary(),
        "app/lib/fuzz.jar" => craft::zip(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nImplementation-Title: fuzz\r\nImplementation-Version: 1.2\r\n", false),
            (
                "META-INF/maven/org.example/fuzz/pom.properties",
                b"groupId=org.example\nartifactId=fuzz\nversion=1.2\n",
                true,
            ),
        ]),
        "etc/os-release" | "usr/lib/os-release" => s(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        ),
        "etc/passwd" => s("root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n"),
        "etc/group" => s("root:x:0:\napp:x:1000:app\n"),
        "app/.env" => s("GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"),
        "root/.docker/config.json" => s(r#"{"auths":{"registry.example.com":{"auth":"dXNlcjpodW50ZXIy"}}}"#),
        "app/static/main.js.map" => s(
            r#"{"version":3,"sources":["webpack:///src/index.ts"],"sourcesContent":["const x = 1;"],"mappings":"AAAA"}"#,
        ),
        "META-INF/MANIFEST.MF" => s("Manifest-Version: 1.0\r\nImplementation-Title: fuzz\r\nImplementation-Version: 1.2\r\n"),
        p if p.ends_with("pom.properties") => s("groupId=org.example\nartifactId=fuzz\nversion=1.2\n"),
        other => panic!("no seed for {other}"),
    }
}

fn package_seeds() {
    let places: Vec<&str> = gantry_fuzz::PACKAGE_PATHS
        .iter()
        .chain(gantry_fuzz::JAR_MEMBERS)
        .copied()
        .collect();
    for (i, path) in places.iter().enumerate() {
        let content = package_content(path);
        let mut inputs = vec![(format!("{i:02}"), prefixed(&[i as u8], &content))];
        if *path == "usr/local/bin/fuzz" {
            // Both executables at that path: Go build info and cargo-auditable.
            inputs.push((format!("{i:02}-rust"), prefixed(&[i as u8], &rust_binary())));
        }
        for (name, input) in inputs {
            write("package_db", &name, &input);
            reach(path, &input);
        }
    }
}

/// Prints what the walk of one `package_db` input produced, by analyzer.
fn reach(path: &str, input: &[u8]) {
    {
        // The reach check: what each seed's walk produced, by analyzer.
        let layer = gantry_fuzz::package_layer(&input).unwrap();
        let report = gantry_fuzz::report_of(&layer).unwrap();
        let mut reached: Vec<String> = report
            .packages
            .iter()
            .map(|p| format!("package {:?} {}", p.ecosystem, p.name))
            .collect();
        reached.extend(
            report
                .unknowns
                .iter()
                .map(|u| format!("unknown {}: {}", u.analyzer, u.reason)),
        );
        reached.extend(report.os_release.iter().map(|_| "os-release".to_string()));
        reached.extend(report.passwd.iter().map(|_| "passwd".to_string()));
        reached.extend(report.groups.iter().map(|_| "group".to_string()));
        reached.extend(
            report
                .file_lists
                .iter()
                .map(|_| "dpkg file list".to_string()),
        );
        reached.extend(
            report
                .copyrights
                .iter()
                .map(|_| "dpkg copyright".to_string()),
        );
        reached.extend(report.secrets.iter().map(|s| format!("secret {}", s.rule)));
        reached.extend(report.source_maps.iter().map(|_| "source map".to_string()));
        reached.extend(
            report
                .npm_projects
                .iter()
                .map(|_| "npm project".to_string()),
        );
        reached.extend(
            report
                .npm_lockfiles
                .iter()
                .map(|_| "npm lockfile".to_string()),
        );
        reached.extend(report.go_mains.iter().map(|_| "go main".to_string()));
        println!(
            "{:2} {path}: {}",
            input[0],
            if reached.is_empty() {
                "NOTHING".to_string()
            } else {
                reached.join("; ")
            }
        );
    }
}

fn document_seeds() {
    let demo = root().join("tests/fixtures/demo");
    let index = std::fs::read(demo.join("index.json")).unwrap();
    let mut manifest = Vec::new();
    let mut config = Vec::new();
    for entry in std::fs::read_dir(demo.join("blobs/sha256")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if bytes.windows(9).any(|w| w == b"\"layers\":") {
            manifest = bytes;
        } else if bytes.windows(8).any(|w| w == b"\"rootfs\"") {
            config = bytes;
        }
    }
    let join = |parts: &[&[u8]]| parts.join(&[gantry_fuzz::PIECE_SEPARATOR][..]);
    write(
        "image_documents",
        "demo-index",
        &prefixed(&[2], &join(&[&index, &manifest, &config])),
    );
    write(
        "image_documents",
        "demo-manifest",
        &prefixed(&[0], &join(&[&manifest, &config])),
    );
    let payloads = root().join("tests/fixtures/payloads");
    let att_index = std::fs::read(payloads.join("buildkit-attestation-index.json")).unwrap();
    let att_manifest = std::fs::read(payloads.join("buildkit-attestation-manifest.json")).unwrap();
    write(
        "image_documents",
        "buildkit-attestation",
        &prefixed(
            &[1],
            &join(&[&att_index, &manifest, &att_manifest, &config]),
        ),
    );
}

fn webhook_seeds() {
    use gantry_server::webhook::Source;
    let dir = root().join("crates/server/tests/payloads");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.extension().is_none_or(|e| e != "json") || name.contains("request-headers") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let source = Source::ALL
            .iter()
            .position(|s| name.starts_with(s.as_str()))
            .unwrap_or(0);
        write("webhook", &name, &prefixed(&[source as u8, 1], &body));
    }
    let generic = Source::ALL
        .iter()
        .position(|s| *s == Source::Generic)
        .unwrap();
    write(
        "webhook",
        "generic",
        &prefixed(&[generic as u8, 1], br#"{"images":["registry.example.com/team/app:v1","busybox@sha256:658a413d7dabf291bea8f257522990c82edd956d8944acc7ebaf562bd9baed3d"]}"#),
    );
}

fn admission_seeds() {
    let review =
        std::fs::read(root().join("tests/fixtures/admission/admissionreview-pod-create.json"))
            .unwrap();
    write("admission", "pod-create", &prefixed(b"10s\n", &review));
    let text = String::from_utf8(review).unwrap();
    // The same pod as a Deployment's template (the other pod-spec path).
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) {
        let spec = v["request"]["object"]["spec"].take();
        v["request"]["kind"] =
            serde_json::json!({"group":"apps","version":"v1","kind":"Deployment"});
        v["request"]["object"] = serde_json::json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"selector":{},"template":{"spec":spec}}});
        write(
            "admission",
            "deployment-create",
            &prefixed(b"30s\n", v.to_string().as_bytes()),
        );
    }
}

fn image_ref_seeds() {
    for (i, r) in [
        "busybox",
        "docker.io/library/busybox:1.36",
        "localhost:5000/team/app@sha256:658a413d7dabf291bea8f257522990c82edd956d8944acc7ebaf562bd9baed3d",
        "[::1]:5000/a/b:c",
        "oci:./layout:latest",
        "docker-archive:image.tar",
        "linux/arm64/v8",
    ]
    .iter()
    .enumerate()
    {
        write("image_ref", &format!("{i}"), r.as_bytes());
    }
}

fn main() {
    layer_seeds();
    package_seeds();
    document_seeds();
    webhook_seeds();
    admission_seeds();
    image_ref_seeds();
}
