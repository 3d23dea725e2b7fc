//! `gantry scan`: the issue-3 proof images, judged through the real binary, from a real
//! registry and from local layouts and archives.

use std::path::Path;

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, BuiltImage, ImageBuilder, LayerBuilder, RegistryHarness};

use crate::util::{gantry, stderr, stdout};

const PINNED_BASE: &str = "gcr.io/distroless/static-debian12:nonroot@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn pinned(b: ImageBuilder) -> ImageBuilder {
    b.annotation("org.opencontainers.image.base.name", PINNED_BASE)
}

fn passwd_layer(extra: &str) -> LayerBuilder {
    LayerBuilder::new(Compression::Gzip)
        .dir("etc")
        .file("etc/passwd", format!("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n{extra}"))
        .file("etc/group", "root:x:0:\nnogroup:x:65534:\n")
}

fn dpkg_entry(name: &str, version: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
    )
}

/// Single stage: python3, make, g++, git, running as root (no USER).
fn single_stage_root() -> BuiltImage {
    let status: String = [
        ("g++-12", "12.2.0-14"),
        ("make", "4.3-4.1"),
        ("git", "1:2.39.5-0+deb12u1"),
        ("python3", "3.11.2-1+b1"),
        ("libc6-dev", "2.36-9+deb12u9"),
    ]
    .iter()
    .map(|(n, v)| dpkg_entry(n, v))
    .collect();
    ImageBuilder::new()
        .layer(passwd_layer("").file("var/lib/dpkg/status", status))
        .layer(
            LayerBuilder::new(Compression::Zstd)
                .file_mode("usr/bin/python3", b"\x7fELF py", 0o755)
                .file_mode("usr/bin/make", b"\x7fELF make", 0o755)
                .file_mode("usr/bin/g++-12", b"\x7fELF g++", 0o755)
                .symlink("usr/bin/g++", "g++-12")
                .file_mode("usr/bin/git", b"\x7fELF git", 0o755)
                .file("app/main.py", "print('hi')\n"),
        )
        .cmd(["python3", "/app/main.py"])
        .build()
        .unwrap()
}

/// Distroless style: one static binary, USER 65534:65534, base pinned by digest.
fn distroless_static() -> BuiltImage {
    pinned(ImageBuilder::new())
        .user("65534:65534")
        .layer(passwd_layer(""))
        .layer(LayerBuilder::new(Compression::Gzip).file_owned(
            "app/server",
            b"\x7fELF static",
            0o755,
            65534,
            65534,
        ))
        .entrypoint(["/app/server"])
        .build()
        .unwrap()
}

fn named_user(user: &str, passwd_line: &str) -> BuiltImage {
    pinned(ImageBuilder::new())
        .user(user)
        .layer(passwd_layer(passwd_line))
        .layer(LayerBuilder::new(Compression::Gzip).file("app/run", "#!/app/run"))
        .build()
        .unwrap()
}

fn secret_added_then_deleted() -> BuiltImage {
    pinned(ImageBuilder::new())
        .user("65534")
        .layer(passwd_layer(""))
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip).file(
                "root/.ssh/id_rsa",
                format!(
                    "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
                    "MIIEowIBAAKCAQEA7bq98nC3sV0xjH5kYf1Vr2wq9bX4mQ3k6tZ0pLr8Jd2sQxY1".repeat(3)
                ),
            ),
            "COPY id_rsa /root/.ssh/id_rsa # buildkit",
        )
        .layer_with_history(
            LayerBuilder::new(Compression::Gzip).whiteout("root/.ssh/id_rsa"),
            "RUN rm /root/.ssh/id_rsa # buildkit",
        )
        .build()
        .unwrap()
}

fn node_with_typescript() -> BuiltImage {
    pinned(ImageBuilder::new())
        .user("65534")
        .layer(passwd_layer(""))
        .layer(
            LayerBuilder::new(Compression::Zstd)
                .file("app/package.json", r#"{"name":"web","version":"1.0.0"}"#)
                .file("app/node_modules/typescript/package.json", r#"{"name":"typescript","version":"5.6.3"}"#)
                .file("app/node_modules/typescript/lib/tsc.js", "// tsc")
                .symlink("app/node_modules/.bin/tsc", "../typescript/bin/tsc")
                .file("app/dist/app.js", "console.log(1)\n//# sourceMappingURL=app.js.map\n")
                .file("app/dist/app.js.map", r#"{"version":3,"file":"app.js","sources":["../src/app.ts"],"mappings":"AAAA"}"#),
        )
        .build()
        .unwrap()
}

fn no_base_evidence() -> BuiltImage {
    ImageBuilder::new()
        .user("65534:65534")
        .layer(LayerBuilder::new(Compression::Gzip).file_owned(
            "app/server",
            b"\x7fELF static",
            0o755,
            65534,
            65534,
        ))
        .build()
        .unwrap()
}

/// Runs `gantry scan --format json` and returns (exit code, report).
fn scan_json(cache: &Path, image: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["scan", image, "--format", "json"];
    args.extend_from_slice(extra);
    let out = gantry(cache, &args);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "gantry {args:?} exited {code}:\n{}",
        stderr(&out)
    );
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}", stdout(&out)));
    (code, report)
}

fn codes(report: &serde_json::Value, list: &str) -> Vec<String> {
    report["verdict"][list]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(report: &'a serde_json::Value, code: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// Writes `image` as an OCI layout and returns the `oci:` reference.
fn layout(dir: &Path, image: &BuiltImage) -> String {
    image.write_oci_layout(dir, Some("t")).unwrap();
    format!("oci:{}:t", dir.display())
}

#[test]
fn single_stage_root_image_with_toolchain_is_denied() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = single_stage_root();
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &image), &[]);
    assert_eq!(code, 1);
    assert_eq!(r["verdict"]["decision"], "deny");
    assert_eq!(r["image"]["digest"], image.manifest_digest.to_string());
    let violations = codes(&r, "violations");
    assert!(
        violations.contains(&"root-user".to_string()),
        "{violations:?}"
    );
    assert!(
        violations.contains(&"build-toolchain".to_string()),
        "{violations:?}"
    );
    let root = finding(&r, "root-user");
    assert_eq!(root[0]["location"]["field"], "config.User");
    let tool_paths: Vec<_> = finding(&r, "build-toolchain")
        .iter()
        .filter_map(|f| f["location"]["path"].as_str())
        .collect();
    for p in ["usr/bin/make", "usr/bin/g++-12"] {
        assert!(tool_paths.contains(&p), "{p} not in {tool_paths:?}");
    }
    // Every finding points at a layer by digest and index, or at a config field.
    for f in r["findings"].as_array().unwrap() {
        let loc = &f["location"];
        assert!(
            loc["field"].is_string() || (loc["layer"].is_string() && loc["layer_index"].is_u64()),
            "{f}"
        );
    }
    assert_eq!(r["facts"]["user"]["root"], true);
    assert!(
        r["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "g++-12")
    );
}

#[test]
fn distroless_nonroot_with_pinned_base_is_allowed() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &distroless_static()), &[]);
    assert_eq!(code, 0, "{}", r["verdict"]);
    assert_eq!(r["verdict"]["decision"], "allow");
    assert!(codes(&r, "violations").is_empty());
    assert_eq!(r["facts"]["user"]["uid"], 65534);
    assert_eq!(r["facts"]["user"]["numeric"], true);
    assert_eq!(r["facts"]["base"]["pinned"], true);
    assert_eq!(r["facts"]["base"]["evidence"], "annotation");
}

#[test]
fn user_names_resolve_through_the_image_passwd() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let appuser = named_user("appuser", "appuser:x:1001:1001::/home/appuser:/bin/sh\n");
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &appuser), &[]);
    assert_eq!(code, 0, "{}", r["verdict"]);
    assert_eq!(r["facts"]["user"]["uid"], 1001);
    assert!(codes(&r, "warnings").contains(&"non-numeric-user".to_string()));

    let dir = tempfile::tempdir().unwrap();
    let toor = named_user("toor", "toor:x:0:0::/root:/bin/sh\n");
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &toor), &[]);
    assert_eq!(code, 1);
    assert!(codes(&r, "violations").contains(&"root-user".to_string()));
    let root = finding(&r, "root-user");
    assert!(
        root[0]["message"].as_str().unwrap().contains("toor"),
        "{}",
        root[0]
    );
    assert_eq!(root[0]["location"]["path"], "etc/passwd");

    let dir = tempfile::tempdir().unwrap();
    let ghost = named_user("ghost", "");
    let (_, r) = scan_json(cache.path(), &layout(dir.path(), &ghost), &[]);
    assert!(
        codes(&r, "warnings").contains(&"unresolvable-user".to_string()),
        "{}",
        r["verdict"]
    );
    assert_eq!(r["facts"]["user"]["resolved"], false);
}

#[test]
fn secret_deleted_by_a_later_layer_still_denies_with_its_layer() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = secret_added_then_deleted();
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &image), &[]);
    assert_eq!(code, 1);
    let secrets = finding(&r, "secret-in-image");
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert_eq!(
        secrets[0]["location"]["layer"],
        image.layers[1].digest.to_string()
    );
    assert_eq!(secrets[0]["location"]["layer_index"], 1);
    assert_eq!(secrets[0]["location"]["path"], "root/.ssh/id_rsa");
    assert_eq!(r["facts"]["secrets"][0]["deleted"], true);
    // The secret itself never appears in the report.
    assert!(
        !serde_json::to_string(&r)
            .unwrap()
            .contains("MIIEowIBAAKCAQEA7bq98nC3")
    );
}

#[test]
fn node_build_leftovers_are_denied() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = scan_json(
        cache.path(),
        &layout(dir.path(), &node_with_typescript()),
        &[],
    );
    assert_eq!(code, 1);
    let categories: Vec<_> = r["facts"]["toolchain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["category"].as_str().unwrap().to_string())
        .collect();
    assert!(
        categories.contains(&"node-build".to_string()),
        "{categories:?}"
    );
    assert!(
        categories.contains(&"source-map".to_string()),
        "{categories:?}"
    );
    let tools: Vec<_> = finding(&r, "build-toolchain")
        .iter()
        .filter_map(|f| f["location"]["path"].as_str())
        .collect();
    assert!(
        tools.iter().any(|p| p.starts_with("app/node_modules/")),
        "{tools:?}"
    );
    let leftovers: Vec<_> = finding(&r, "build-leftover")
        .iter()
        .filter_map(|f| f["location"]["path"].as_str())
        .collect();
    assert_eq!(leftovers, vec!["app/dist/app.js.map"]);
}

#[test]
fn size_limit_from_user_data() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("limits.json");
    std::fs::write(
        &data,
        r#"{"gantry": {"size": {"max_uncompressed_bytes": 4096}}}"#,
    )
    .unwrap();
    let image = pinned(ImageBuilder::new())
        .user("65534")
        .layer(passwd_layer(""))
        .layer(LayerBuilder::new(Compression::Zstd).zeros("app/data.bin", 64 * 1024))
        .build()
        .unwrap();
    let reference = layout(&dir.path().join("img"), &image);
    let (code, r) = scan_json(
        cache.path(),
        &reference,
        &["--data", data.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert_eq!(codes(&r, "violations"), vec!["image-too-large".to_string()]);
    // The same image passes the shipped 1 GiB default.
    let (code, _) = scan_json(cache.path(), &reference, &[]);
    assert_eq!(code, 0);
}

#[test]
fn no_base_evidence_is_a_warning_not_a_deny() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &no_base_evidence()), &[]);
    assert_eq!(code, 0, "{}", r["verdict"]);
    assert_eq!(r["facts"]["base"]["evidence"], "none");
    assert_eq!(r["facts"]["base"]["pinned"], false);
    assert!(codes(&r, "warnings").contains(&"base-image-unknown".to_string()));
    // data can make it a deny
    let data = dir.path().join("strict.json");
    std::fs::write(
        &data,
        r#"{"gantry": {"base_image": {"require_base_evidence": true}}}"#,
    )
    .unwrap();
    let (code, r) = scan_json(
        cache.path(),
        &format!("oci:{}:t", dir.path().display()),
        &["--data", data.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(codes(&r, "violations").contains(&"base-image-unknown".to_string()));
}

#[test]
fn same_verdicts_from_registry_and_docker_archive() {
    let registry = RegistryHarness::start().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, image, want) in [
        ("root", single_stage_root(), 1),
        ("distroless", distroless_static(), 0),
        ("secret", secret_added_then_deleted(), 1),
    ] {
        image
            .push(&registry, &format!("proof/{name}"), Some("v1"), None)
            .unwrap();
        let (code, from_registry) = scan_json(
            cache.path(),
            &registry.reference(&format!("proof/{name}"), "v1"),
            &[],
        );
        assert_eq!(
            code, want,
            "{name} from the registry: {}",
            from_registry["verdict"]
        );
        assert_eq!(
            from_registry["image"]["digest"],
            image.manifest_digest.to_string()
        );

        let archive = dir.path().join(format!("{name}.tar"));
        image
            .write_docker_archive(&archive, Some(&format!("proof/{name}:v1")))
            .unwrap();
        let (code, from_archive) = scan_json(
            cache.path(),
            &format!("docker-archive:{}", archive.display()),
            &[],
        );
        assert_eq!(
            code, want,
            "{name} from docker-archive: {}",
            from_archive["verdict"]
        );
        assert_eq!(
            codes(&from_archive, "violations"),
            codes(&from_registry, "violations"),
            "{name}"
        );
    }
}

#[test]
fn table_and_sarif_outputs() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = layout(dir.path(), &single_stage_root());
    let out = gantry(cache.path(), &["scan", &reference]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("Verdict   DENY"), "{table}");
    assert!(table.contains("root-user"), "{table}");
    assert!(table.contains("/usr/bin/make"), "{table}");

    let sarif_path = dir.path().join("out.sarif");
    let out = gantry(
        cache.path(),
        &[
            "scan",
            &reference,
            "--format",
            "sarif",
            "-o",
            sarif_path.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sarif_path).unwrap()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(r["ruleId"].is_string());
        assert!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string(),
            "{r}"
        );
    }
}

#[test]
fn policy_errors_fail_closed_and_broken_bundles_are_errors() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = layout(&dir.path().join("img"), &distroless_static());

    // A policy whose evaluation fails at run time: deny (exit 1) with policy-error, never allow.
    let failing = dir.path().join("failing");
    std::fs::create_dir_all(&failing).unwrap();
    std::fs::write(
        failing.join("verdict.rego"),
        "package gantry\n\nimport rego.v1\n\nverdict := {\"decision\": \"allow\", \"violations\": [], \"warnings\": [], \"waived\": [], \"x\": 1 / 0}\n",
    )
    .unwrap();
    let (code, r) = scan_json(
        cache.path(),
        &reference,
        &["--policy", failing.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{}", r["verdict"]);
    assert_eq!(codes(&r, "violations"), vec!["policy-error".to_string()]);

    // A bundle that does not parse is an error before any image is read.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("x.rego"), "package gantry\nthis is not rego {").unwrap();
    let out = gantry(
        cache.path(),
        &["scan", &reference, "--policy", broken.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("x.rego"), "{}", stderr(&out));
}

/// Built the way Buildah records a base (stored name with a version tag, resolved digest),
/// with a HEALTHCHECK, a Node PID 1, an ADD of a URL, and npm development dependencies.
fn buildah_node_app() -> BuiltImage {
    ImageBuilder::new()
        .annotation(
            "org.opencontainers.image.base.name",
            "docker.io/library/node:22.11.0-bookworm-slim",
        )
        .annotation(
            "org.opencontainers.image.base.digest",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .user("1000:1000")
        .layer(passwd_layer("node:x:1000:1000::/home/node:/bin/sh\n"))
        .layer_with_history(
            LayerBuilder::new(Compression::Zstd)
                .file(
                    "app/package.json",
                    r#"{"name":"web","dependencies":{},"devDependencies":{"jest":"^29"}}"#,
                )
                .file(
                    "app/node_modules/jest/package.json",
                    r#"{"name":"jest","version":"29.7.0"}"#,
                ),
            "ADD https://example.com/app.tar.gz /app/ # buildkit",
        )
        .healthcheck(["CMD", "node", "/app/health.js"])
        .entrypoint(["node", "/app/server.js"])
        .build()
        .unwrap()
}

#[test]
fn buildah_style_version_base_is_allowed_with_warnings() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = scan_json(cache.path(), &layout(dir.path(), &buildah_node_app()), &[]);
    assert_eq!(code, 0, "{}", r["verdict"]);
    assert_eq!(r["facts"]["base"]["pin"], "version");
    assert_eq!(r["facts"]["base"]["repository"], "docker.io/library/node");
    let warnings = codes(&r, "warnings");
    for code in [
        "unpinned-base",
        "no-init-process",
        "add-remote-url",
        "dev-dependency-shipped",
    ] {
        assert!(warnings.contains(&code.to_string()), "{code}: {warnings:?}");
    }
    assert!(
        !warnings.contains(&"no-healthcheck".to_string()),
        "{warnings:?}"
    );
    assert_eq!(
        r["facts"]["dev_dependencies"][0]["evidence"],
        "dependency-graph"
    );
    // The same image where a digest is required.
    let data = dir.path().join("strict.json");
    std::fs::write(
        &data,
        r#"{"gantry": {"base_image": {"require_digest": true}}}"#,
    )
    .unwrap();
    let (code, r) = scan_json(
        cache.path(),
        &format!("oci:{}:t", dir.path().display()),
        &["--data", data.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert_eq!(codes(&r, "violations"), vec!["unpinned-base".to_string()]);
}

#[test]
fn real_scan_input_matches_the_documented_schema() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, image) in [
        single_stage_root(),
        secret_added_then_deleted(),
        node_with_typescript(),
        no_base_evidence(),
        buildah_node_app(),
        named_user("ghost:nogroup", ""),
    ]
    .iter()
    .enumerate()
    {
        let (_, mut report) = scan_json(
            cache.path(),
            &layout(&dir.path().join(i.to_string()), image),
            &[],
        );
        // The report is the input document plus findings and verdict.
        let obj = report.as_object_mut().unwrap();
        obj.remove("findings");
        obj.remove("verdict");
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/docs/policies/input.schema.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&report)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "image {i}: {errors:#?}");
    }
}
