//! Facts for the practice checks, from real layers: npm development dependencies (lockfile
//! and dependency graph), and the CA-bundle and zone-database needs of Go and Rust binaries.

use gantry_model::oci::{Compression, ContainerConfig};
use gantry_testkit::LayerBuilder;

use crate::Image;
use crate::craft::{self, Section};

fn pkg(name: &str, version: &str, deps: &[&str]) -> String {
    let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\":\"*\"")).collect();
    format!(
        "{{\"name\":\"{name}\",\"version\":\"{version}\",\"dependencies\":{{{}}}}}",
        deps.join(",")
    )
}

fn dev_names(image: &Image) -> Vec<(String, String, String)> {
    image
        .facts_as("1000")
        .dev_dependencies
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                d.evidence.clone(),
                d.location.path.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn node_modules() -> LayerBuilder {
    LayerBuilder::new(Compression::Gzip)
        .file(
            "app/package.json",
            r#"{"name":"web","dependencies":{"express":"^4"},"devDependencies":{"typescript":"^5","eslint":"^9"}}"#,
        )
        .file("app/node_modules/express/package.json", pkg("express", "4.21.0", &["ms"]))
        .file("app/node_modules/ms/package.json", pkg("ms", "2.0.0", &[]))
        .file("app/node_modules/typescript/package.json", pkg("typescript", "5.6.3", &[]))
        .file("app/node_modules/eslint/package.json", pkg("eslint", "9.1.0", &["chalk", "ms"]))
        .file("app/node_modules/chalk/package.json", pkg("chalk", "4.1.2", &[]))
        // eslint's own copy of ms: only eslint (a dev dependency) resolves to it.
        .file("app/node_modules/eslint/node_modules/ms/package.json", pkg("ms", "2.1.3", &[]))
}

const LOCK: &str = r#"{"name":"web","lockfileVersion":3,"packages":{
  "":{"name":"web"},
  "node_modules/express":{"version":"4.21.0"},
  "node_modules/ms":{"version":"2.0.0"},
  "node_modules/typescript":{"version":"5.6.3","dev":true},
  "node_modules/eslint":{"version":"9.1.0","dev":true},
  "node_modules/chalk":{"version":"4.1.2","dev":true},
  "node_modules/eslint/node_modules/ms":{"version":"2.1.3","dev":true},
  "node_modules/left-pad":{"version":"1.3.0","dev":true}}}"#;

#[test]
fn npm_dev_dependencies_from_the_lockfile() {
    let image = Image::new(vec![node_modules().file("app/package-lock.json", LOCK)]);
    let got = dev_names(&image);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    // left-pad is in the lockfile but not installed: not reported.
    assert_eq!(names, vec!["chalk", "eslint", "ms", "typescript"]);
    assert!(got.iter().all(|(_, e, _)| e == "lockfile"));
    assert!(got.contains(&(
        "ms".into(),
        "lockfile".into(),
        "app/node_modules/eslint/node_modules/ms/package.json".into()
    )));
    let f = image.facts_as("1000");
    assert_eq!(f.dev_dependencies[0].source, "app/package-lock.json");
    assert_eq!(f.dev_dependencies[0].project, "app");
}

#[test]
fn npm_hidden_lockfile_counts_too() {
    let image = Image::new(vec![
        node_modules().file("app/node_modules/.package-lock.json", LOCK),
    ]);
    assert_eq!(dev_names(&image).len(), 4);
}

// Without a lockfile: reachable from devDependencies and not from dependencies, resolved as
// Node resolves (eslint's nested ms is dev-only, the top-level ms is express's).
#[test]
fn npm_dev_dependencies_from_the_dependency_graph() {
    let image = Image::new(vec![node_modules()]);
    let got = dev_names(&image);
    assert_eq!(
        got,
        vec![
            (
                "chalk".into(),
                "dependency-graph".into(),
                "app/node_modules/chalk/package.json".into()
            ),
            (
                "eslint".into(),
                "dependency-graph".into(),
                "app/node_modules/eslint/package.json".into()
            ),
            (
                "ms".into(),
                "dependency-graph".into(),
                "app/node_modules/eslint/node_modules/ms/package.json".into()
            ),
            (
                "typescript".into(),
                "dependency-graph".into(),
                "app/node_modules/typescript/package.json".into()
            ),
        ]
    );
}

// `npm ci --omit=dev` in a later layer: the dev packages are gone from the final filesystem.
#[test]
fn pruned_dev_dependencies_do_not_count() {
    let image = Image::new(vec![
        node_modules().file("app/package-lock.json", LOCK),
        LayerBuilder::new(Compression::Gzip)
            .whiteout("app/node_modules/typescript")
            .whiteout("app/node_modules/eslint")
            .whiteout("app/node_modules/chalk"),
    ]);
    assert!(dev_names(&image).is_empty(), "{:?}", dev_names(&image));
}

fn go_binary(symbols: &[&str]) -> Vec<u8> {
    let mut names = Vec::new();
    for s in ["runtime.main", "main.main"].iter().chain(symbols) {
        names.extend_from_slice(s.as_bytes());
        names.push(0);
    }
    craft::elf64(
        vec![
            Section::new(".text", craft::filler(400_000, 7)),
            Section::new(
                ".gopclntab",
                [b"\xf1\xff\xff\xff\x00\x00\x01\x08\x00".to_vec(), names].concat(),
            ),
            Section::new(
                ".go.buildinfo",
                craft::go_buildinfo(
                    "go1.22.5",
                    "path\texample.com/server\nmod\texample.com/server\t(devel)\t\n",
                ),
            ),
        ],
        vec![],
    )
}

fn facts(layers: Vec<LayerBuilder>, env: &[&str]) -> gantry_analyze::FileFacts {
    let image = Image::new(layers);
    image.facts(
        &ContainerConfig {
            user: "65532".into(),
            env: env.iter().map(|e| e.to_string()).collect(),
            ..ContainerConfig::default()
        },
        &[],
    )
}

#[test]
fn go_tls_client_and_zone_loader_on_scratch() {
    let binary = go_binary(&[
        "crypto/tls.(*Conn).clientHandshake",
        "crypto/x509.loadSystemRoots",
        "time.LoadLocation",
    ]);
    let f = facts(
        vec![LayerBuilder::new(Compression::Gzip).file_mode("app/server", &binary, 0o755)],
        &[],
    );
    assert_eq!(f.tls.ca_certificates, None);
    assert_eq!(f.tls.clients.len(), 1, "{:?}", f.tls);
    assert_eq!(f.tls.clients[0].path, "app/server");
    assert!(
        f.tls.clients[0]
            .evidence
            .contains("crypto/x509.loadSystemRoots and the TLS client handshake")
    );
    assert_eq!(f.timezone.zoneinfo, None);
    assert_eq!(f.timezone.loaders.len(), 1);
    assert_eq!(f.tls.clients[0].location.layer_index, Some(0));
}

#[test]
fn go_binary_with_embedded_roots_and_zones_needs_nothing() {
    let binary = go_binary(&[
        "crypto/x509.loadSystemRoots",
        "crypto/x509.SetFallbackRoots",
        "time.LoadLocation",
        "time/tzdata.loadFromEmbeddedTZData",
        // A longer name that merely starts like one looked for does not count.
        "time.LoadLocationFromTZData",
    ]);
    let f = facts(
        vec![LayerBuilder::new(Compression::Gzip).file_mode("app/server", &binary, 0o755)],
        &[],
    );
    assert!(f.tls.clients.is_empty(), "{:?}", f.tls);
    assert!(f.timezone.loaders.is_empty(), "{:?}", f.timezone);
    // Only LoadLocationFromTZData: not a zone loader.
    let f = facts(
        vec![LayerBuilder::new(Compression::Gzip).file_mode(
            "app/server",
            go_binary(&["time.LoadLocationFromTZData"]),
            0o755,
        )],
        &[],
    );
    assert!(f.timezone.loaders.is_empty(), "{:?}", f.timezone);
}

#[test]
fn ca_bundle_and_zoneinfo_are_found_where_go_looks() {
    let binary = go_binary(&["crypto/x509.loadSystemRoots", "time.LoadLocation"]);
    let f = facts(
        vec![
            LayerBuilder::new(Compression::Gzip)
                .file_mode("app/server", &binary, 0o755)
                .file(
                    "usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
                    "-----BEGIN CERTIFICATE-----\n",
                )
                .symlink(
                    "etc/ssl/certs/ca-certificates.crt",
                    "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
                )
                .file("usr/share/zoneinfo/Europe/Paris", "TZif2"),
        ],
        &[],
    );
    assert_eq!(
        f.tls.ca_certificates.as_deref(),
        Some("etc/ssl/certs/ca-certificates.crt")
    );
    assert_eq!(f.timezone.zoneinfo.as_deref(), Some("usr/share/zoneinfo"));
    // SSL_CERT_FILE and ZONEINFO from the config's environment.
    let f = facts(
        vec![
            LayerBuilder::new(Compression::Gzip)
                .file_mode("app/server", &binary, 0o755)
                .file("app/certs.pem", "pem")
                .file("app/zoneinfo.zip", "PK"),
        ],
        &["SSL_CERT_FILE=/app/certs.pem", "ZONEINFO=/app/zoneinfo.zip"],
    );
    assert_eq!(f.tls.ca_certificates.as_deref(), Some("app/certs.pem"));
    assert_eq!(f.timezone.zoneinfo.as_deref(), Some("app/zoneinfo.zip"));
    // An empty certificate directory is no bundle.
    let f = facts(
        vec![
            LayerBuilder::new(Compression::Gzip)
                .file_mode("app/server", &binary, 0o755)
                .dir("etc/ssl/certs"),
        ],
        &[],
    );
    assert_eq!(f.tls.ca_certificates, None);
}

fn rust_binary(crates: &[&str]) -> Vec<u8> {
    let packages: Vec<String> = crates
        .iter()
        .map(|c| format!("{{\"name\":\"{c}\",\"version\":\"1.0.0\",\"source\":\"crates.io\"}}"))
        .chain(std::iter::once(
            "{\"name\":\"app\",\"version\":\"0.1.0\",\"source\":\"local\",\"root\":true}"
                .to_string(),
        ))
        .collect();
    let json = format!("{{\"packages\":[{}],\"format\":1}}", packages.join(","));
    craft::elf64(
        vec![Section::new(".text", craft::filler(100_000, 8))],
        vec![Section {
            align: 1,
            ..Section::new(".dep-v0", craft::zlib(json.as_bytes()))
        }],
    )
}

#[test]
fn rust_binaries_reading_the_system_store() {
    let layer = |crates: &[&str]| {
        LayerBuilder::new(Compression::Gzip).file_mode(
            "usr/local/bin/app",
            rust_binary(crates),
            0o755,
        )
    };
    let f = facts(
        vec![layer(&["reqwest", "rustls", "rustls-native-certs"])],
        &[],
    );
    assert_eq!(f.tls.clients.len(), 1, "{:?}", f.tls);
    assert_eq!(f.tls.clients[0].language, "rust");
    assert!(f.tls.clients[0].evidence.contains("rustls-native-certs"));
    // Roots compiled in (webpki-roots), or no TLS at all: no need.
    for crates in [&["reqwest", "rustls", "webpki-roots"][..], &["serde"][..]] {
        let f = facts(vec![layer(crates)], &[]);
        assert!(f.tls.clients.is_empty(), "{crates:?}: {:?}", f.tls);
    }
}
