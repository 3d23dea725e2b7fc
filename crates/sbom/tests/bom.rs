//! gantry-sbom on hand-made inputs covering every ecosystem, license form, duplicate purls,
//! dependency resolution and unknowns; every document checked against the official CycloneDX
//! JSON schema of its version (vendored in gantry-testkit, validated offline).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use gantry_analyze::facts::UnknownFact;
use gantry_analyze::{Ecosystem, OsRelease, Package};
use gantry_model::{Digest, Location};
use gantry_sbom::{ImageSubject, LayerSubject, SbomInput, SpecVersion, cyclonedx, to_json};
use serde_json::Value;

fn digest(n: u8) -> Digest {
    format!("sha256:{}", hex(n)).parse().unwrap()
}

fn hex(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn pkg(eco: Ecosystem, name: &str, version: &str, path: &str, layer: u8) -> Package {
    Package {
        ecosystem: eco,
        name: name.into(),
        version: version.into(),
        arch: None,
        source: None,
        source_version: None,
        location: Location {
            layer: Some(digest(layer).to_string()),
            layer_index: Some(u64::from(layer)),
            path: Some(path.into()),
            field: None,
        },
        files: vec![],
        namespace: None,
        licenses: vec![],
        dependencies: vec![],
        cataloger: String::new(),
        purl: String::new(),
    }
}

fn with(mut p: Package, f: impl FnOnce(&mut Package)) -> Package {
    f(&mut p);
    p
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// An image with packages of every ecosystem.
fn mixed_input() -> SbomInput {
    let deb = |name: &str, version: &str, deps: &[&str], licenses: &[&str]| {
        with(
            pkg(Ecosystem::Deb, name, version, "var/lib/dpkg/status", 0),
            |p| {
                p.arch = Some("amd64".into());
                p.dependencies = strings(deps);
                p.licenses = strings(licenses);
                p.cataloger = "dpkg".into();
            },
        )
    };
    let py = |name: &str, version: &str, deps: &[&str], lic: &[&str]| {
        with(
            pkg(
                Ecosystem::Pypi,
                name,
                version,
                &format!("opt/app/{name}-{version}.dist-info/METADATA"),
                1,
            ),
            |p| {
                p.dependencies = strings(deps);
                p.licenses = strings(lic);
                p.cataloger = "python".into();
            },
        )
    };
    let npm = |name: &str, version: &str, path: &str, deps: &[&str]| {
        with(pkg(Ecosystem::Npm, name, version, path, 2), |p| {
            p.dependencies = strings(deps);
            p.namespace = name
                .strip_prefix('@')
                .and_then(|n| n.split_once('/'))
                .map(|(s, _)| format!("@{s}"));
            p.licenses = strings(&["MIT"]);
            p.cataloger = "npm".into();
        })
    };
    let go = |name: &str, version: &str, deps: &[&str]| {
        with(
            pkg(Ecosystem::Golang, name, version, "usr/bin/server", 2),
            |p| {
                p.dependencies = strings(deps);
                p.namespace = name.rsplit_once('/').map(|(n, _)| n.to_string());
                p.cataloger = "go-buildinfo".into();
            },
        )
    };
    let packages = vec![
        deb(
            "libc6",
            "2.36-9+deb12u9",
            &[],
            &["LGPL-2.1-or-later", "GPL-2+", "public-domain"],
        ),
        deb(
            "bash",
            "5.2.15-2+b7",
            &[
                "base-files (>= 2.1.12)",
                "debianutils (>= 5.6-0.1)",
                "libc6",
            ],
            &["GPL-3.0-or-later"],
        ),
        deb("base-files", "12.4+deb12u9", &[], &["GPL-2.0-or-later"]),
        with(
            deb("libgcc-s1", "12.2.0-14", &["libc6 (>= 2.35)"], &[]),
            |p| {
                p.source = Some("gcc-12".into());
                p.source_version = Some("12.2.0-14".into());
            },
        ),
        with(
            pkg(
                Ecosystem::Apk,
                "musl",
                "1.2.5-r0",
                "lib/apk/db/installed",
                1,
            ),
            |p| {
                p.arch = Some("x86_64".into());
                p.licenses = strings(&["MIT"]);
                p.cataloger = "apk".into();
            },
        ),
        with(
            pkg(
                Ecosystem::Apk,
                "busybox",
                "1.36.1-r29",
                "lib/apk/db/installed",
                1,
            ),
            |p| {
                p.dependencies = strings(&["so:libc.musl-x86_64.so.1", "musl"]);
                p.licenses = strings(&["GPL-2.0-only"]);
            },
        ),
        with(
            pkg(
                Ecosystem::Rpm,
                "openssl-libs",
                "1:3.0.7-27.el9",
                "var/lib/rpm/rpmdb.sqlite",
                1,
            ),
            |p| {
                p.arch = Some("x86_64".into());
                p.licenses = strings(&["ASL 2.0"]);
            },
        ),
        py(
            "requests",
            "2.32.3",
            &[
                "charset-normalizer",
                "idna",
                "urllib3",
                "certifi",
                "PySocks; extra == \"socks\"",
            ],
            &["Apache-2.0"],
        ),
        py("urllib3", "2.2.3", &[], &["MIT"]),
        py("idna", "3.10", &[], &["BSD-3-Clause"]),
        py("certifi", "2024.8.30", &[], &["MPL-2.0"]),
        py("charset-normalizer", "3.4.0", &[], &["MIT"]),
        npm(
            "express",
            "4.21.2",
            "app/node_modules/express/package.json",
            &["send", "debug"],
        ),
        npm(
            "send",
            "0.19.0",
            "app/node_modules/send/package.json",
            &["ms", "debug"],
        ),
        npm(
            "debug",
            "2.6.9",
            "app/node_modules/debug/package.json",
            &["ms"],
        ),
        npm("ms", "2.0.0", "app/node_modules/ms/package.json", &[]),
        npm(
            "ms",
            "2.1.3",
            "app/node_modules/send/node_modules/ms/package.json",
            &[],
        ),
        // The same package twice: two components, suffixed bom-ref.
        npm("ms", "2.0.0", "srv/node_modules/ms/package.json", &[]),
        npm(
            "@babel/core",
            "7.26.0",
            "app/node_modules/@babel/core/package.json",
            &[],
        ),
        go(
            "example.com/server",
            "(devel)",
            &["github.com/gorilla/mux", "golang.org/x/net"],
        ),
        go("github.com/gorilla/mux", "v1.8.1", &[]),
        go("golang.org/x/net", "v0.33.0", &[]),
        with(
            pkg(Ecosystem::Cargo, "ripgrep", "14.1.1", "usr/bin/rg", 2),
            |p| {
                p.dependencies = strings(&["regex", "memchr"]);
                p.licenses = strings(&["Unlicense OR MIT"]);
            },
        ),
        with(
            pkg(Ecosystem::Cargo, "regex", "1.11.1", "usr/bin/rg", 2),
            |p| {
                p.dependencies = strings(&["memchr"]);
                p.licenses = strings(&["MIT OR Apache-2.0"]);
            },
        ),
        pkg(Ecosystem::Cargo, "memchr", "2.7.4", "usr/bin/rg", 2),
        with(
            pkg(
                Ecosystem::Maven,
                "log4j-core",
                "2.24.1",
                "app/lib/app.jar",
                2,
            ),
            |p| {
                p.namespace = Some("org.apache.logging.log4j".into());
                p.dependencies = strings(&["org.apache.logging.log4j:log4j-api"]);
                p.licenses = strings(&["Apache License, Version 2.0"]);
            },
        ),
        with(
            pkg(
                Ecosystem::Maven,
                "log4j-api",
                "2.24.1",
                "app/lib/app.jar",
                2,
            ),
            |p| p.namespace = Some("org.apache.logging.log4j".into()),
        ),
    ];
    let unknown = |path: &str, reason: &str, layer: u8, deleted: bool| UnknownFact {
        analyzer: "python".into(),
        path: path.into(),
        reason: reason.into(),
        layer: digest(layer).to_string(),
        layer_index: u64::from(layer),
        deleted,
    };
    SbomInput {
        image: ImageSubject {
            source: "registry.example.com/team/app:1.0".into(),
            reference: Some(
                format!("registry.example.com/team/app:1.0@{}", digest(9))
                    .parse()
                    .unwrap(),
            ),
            manifest_digest: digest(9),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest: digest(8),
            index_digest: None,
            platform: "linux/amd64".into(),
            labels: BTreeMap::from([("org.opencontainers.image.title".into(), "app".into())]),
            annotations: BTreeMap::new(),
            layers: (0..3)
                .map(|i| LayerSubject {
                    index: usize::from(i),
                    digest: digest(i),
                    diff_id: Some(digest(i + 100)),
                })
                .collect(),
        },
        os: Some(OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            version_codename: Some("bookworm".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            id_like: vec![],
        }),
        packages,
        unknowns: vec![
            unknown(
                "opt/app/broken-1.0.dist-info/METADATA",
                "no Name field",
                1,
                false,
            ),
            unknown("opt/app/gone-1.0.dist-info/METADATA", "truncated", 1, true),
            unknown("", "layer media type not walked", 2, false),
        ],
        complete: false,
        tool_version: "0.1.0".into(),
    }
}

fn empty_input() -> SbomInput {
    SbomInput {
        image: ImageSubject {
            source: "oci:/tmp/empty".into(),
            reference: None,
            manifest_digest: digest(1),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest: digest(2),
            index_digest: None,
            platform: "linux/arm64/v8".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            layers: vec![],
        },
        os: None,
        packages: vec![],
        unknowns: vec![],
        complete: true,
        tool_version: "0.1.0".into(),
    }
}

/// Validates against the vendored official schema of the document's `specVersion`, and checks
/// the `$schema` URL (the vendored copy no longer pins it, see the schemas' README).
fn validate(json: &str, name: &str) {
    let doc: Value = serde_json::from_str(json).unwrap();
    let schemas = gantry_testkit::CycloneDx::get().unwrap();
    if let Err(e) = schemas.validate(&doc) {
        panic!("{name} is not valid CycloneDX: {e}\n{json}");
    }
    let spec = doc["specVersion"].as_str().unwrap();
    assert_eq!(
        doc["$schema"],
        format!("http://cyclonedx.org/schema/bom-{spec}.schema.json"),
        "{name}"
    );
}

fn render(input: &SbomInput, spec: SpecVersion) -> (String, Value) {
    let bom = cyclonedx(input, spec).with_timestamp("2024-01-01T00:00:00Z");
    let json = to_json(&bom).unwrap();
    let value = serde_json::from_str(&json).unwrap();
    (json, value)
}

fn component<'a>(bom: &'a Value, bom_ref: &str) -> &'a Value {
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == bom_ref)
        .unwrap_or_else(|| panic!("no component {bom_ref}"))
}

fn depends_on(bom: &Value, bom_ref: &str) -> BTreeSet<String> {
    bom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == bom_ref)
        .unwrap_or_else(|| panic!("no dependency entry for {bom_ref}"))["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_spec_version_validates() {
    for spec in [SpecVersion::V1_6, SpecVersion::V1_5] {
        for (name, input) in [("mixed", mixed_input()), ("empty", empty_input())] {
            let (json, bom) = render(&input, spec);
            assert_eq!(bom["specVersion"], spec.as_str());
            validate(&json, &format!("{name}-{spec}.cdx.json"));
        }
    }
}

#[test]
fn identity_evidence_takes_each_versions_form() {
    let (_, v16) = render(&mixed_input(), SpecVersion::V1_6);
    let (_, v15) = render(&mixed_input(), SpecVersion::V1_5);
    let purl = "pkg:pypi/requests@2.32.3";
    assert!(component(&v16, purl)["evidence"]["identity"].is_array());
    assert!(component(&v15, purl)["evidence"]["identity"].is_object());
    assert_eq!(
        component(&v16, purl)["evidence"]["occurrences"][0]["location"],
        "/opt/app/requests-2.32.3.dist-info/METADATA"
    );
}

#[test]
fn image_is_the_container_component() {
    let (_, bom) = render(&mixed_input(), SpecVersion::V1_6);
    let image = &bom["metadata"]["component"];
    assert_eq!(image["type"], "container");
    assert_eq!(image["name"], "registry.example.com/team/app");
    assert_eq!(image["version"], digest(9).to_string());
    assert_eq!(
        image["purl"],
        format!(
            "pkg:oci/app@sha256:{}?arch=amd64&repository_url=registry.example.com%2Fteam%2Fapp&tag=1.0",
            hex(9)
        )
    );
    assert_eq!(image["hashes"][0]["content"], hex(9));
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "gantry");
    let os = component(&bom, "os:debian@12");
    assert_eq!(os["type"], "operating-system");
    assert_eq!(os["version"], "12");
    // A layer was not walked: the document says its inventory is incomplete.
    assert_eq!(bom["compositions"][0]["aggregate"], "incomplete");

    let (_, empty) = render(&empty_input(), SpecVersion::V1_6);
    let image = &empty["metadata"]["component"];
    assert_eq!(image["name"], "oci:/tmp/empty");
    assert!(image.get("purl").is_none());
    assert_eq!(empty["components"], serde_json::json!([]));
    assert!(empty.get("compositions").is_none());
}

#[test]
fn package_components_carry_purl_licenses_group_and_layer() {
    let (_, bom) = render(&mixed_input(), SpecVersion::V1_6);
    let libc = component(
        &bom,
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12",
    );
    assert_eq!(libc["type"], "library");
    assert_eq!(
        libc["licenses"],
        serde_json::json!([
            {"license": {"id": "LGPL-2.1-or-later"}},
            {"license": {"id": "GPL-2.0-or-later"}},
            {"license": {"name": "public-domain"}}
        ])
    );
    let props: BTreeMap<String, String> = libc["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(props["gantry:layer:digest"], digest(0).to_string());
    assert_eq!(props["gantry:layer:diff_id"], digest(100).to_string());
    assert_eq!(props["gantry:layer:index"], "0");
    assert_eq!(props["gantry:package:arch"], "amd64");
    assert_eq!(props["gantry:package:cataloger"], "dpkg");

    let babel = component(&bom, "pkg:npm/%40babel/core@7.26.0");
    assert_eq!(babel["group"], "@babel");
    assert_eq!(babel["name"], "core");
    let log4j = component(&bom, "pkg:maven/org.apache.logging.log4j/log4j-core@2.24.1");
    assert_eq!(log4j["group"], "org.apache.logging.log4j");
    assert_eq!(
        log4j["licenses"],
        serde_json::json!([{"license": {"name": "Apache License, Version 2.0"}}])
    );
    let rg = component(&bom, "pkg:cargo/ripgrep@14.1.1");
    assert_eq!(
        rg["licenses"],
        serde_json::json!([{"expression": "Unlicense OR MIT"}])
    );
}

#[test]
fn main_modules_of_binaries_are_applications() {
    let (_, bom) = render(&mixed_input(), SpecVersion::V1_6);
    let kinds: BTreeMap<String, String> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:golang") || p.starts_with("pkg:cargo"))
        })
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(kinds["example.com/server"], "application");
    assert_eq!(kinds["github.com/gorilla/mux"], "library");
    assert_eq!(kinds["ripgrep"], "application");
    assert_eq!(kinds["regex"], "library");
    assert_eq!(kinds["memchr"], "library");
}

#[test]
fn shared_purls_get_suffixed_refs() {
    let (_, bom) = render(&mixed_input(), SpecVersion::V1_6);
    let refs: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = refs.iter().copied().collect();
    assert_eq!(unique.len(), refs.len(), "bom-refs are unique");
    let a = component(&bom, "pkg:npm/ms@2.0.0");
    let b = component(&bom, "pkg:npm/ms@2.0.0|2");
    // The first by location keeps the plain purl.
    assert_eq!(
        a["evidence"]["occurrences"][0]["location"],
        "/app/node_modules/ms/package.json"
    );
    assert_eq!(
        b["evidence"]["occurrences"][0]["location"],
        "/srv/node_modules/ms/package.json"
    );
    assert_eq!(a["purl"], b["purl"]);
}

#[test]
fn dependencies_resolve_to_present_components() {
    let (_, bom) = render(&mixed_input(), SpecVersion::V1_6);
    let deb = |n: &str, v: &str| format!("pkg:deb/debian/{n}@{v}?arch=amd64&distro=debian-12");
    // Only edges to components present (debianutils is not), versions stripped.
    assert_eq!(
        depends_on(&bom, &deb("bash", "5.2.15-2%2Bb7")),
        set(&[
            &deb("base-files", "12.4%2Bdeb12u9"),
            &deb("libc6", "2.36-9%2Bdeb12u9")
        ])
    );
    // Extras are not dependencies of the install.
    assert_eq!(
        depends_on(&bom, "pkg:pypi/requests@2.32.3"),
        set(&[
            "pkg:pypi/certifi@2024.8.30",
            "pkg:pypi/charset-normalizer@3.4.0",
            "pkg:pypi/idna@3.10",
            "pkg:pypi/urllib3@2.2.3"
        ])
    );
    // Node's lookup: send's own node_modules/ms first.
    assert_eq!(
        depends_on(&bom, "pkg:npm/send@0.19.0"),
        set(&["pkg:npm/debug@2.6.9", "pkg:npm/ms@2.1.3"])
    );
    assert_eq!(
        depends_on(&bom, "pkg:npm/debug@2.6.9"),
        set(&["pkg:npm/ms@2.0.0"])
    );
    // apk: `so:` provides name no package.
    assert_eq!(
        depends_on(&bom, "pkg:apk/debian/busybox@1.36.1-r29?distro=debian-12"),
        set(&["pkg:apk/debian/musl@1.2.5-r0?arch=x86_64&distro=debian-12"])
    );
    // The OS component holds every OS package; the image holds the OS and the roots of
    // the application packages.
    let os = depends_on(&bom, "os:debian@12");
    assert!(os.contains(&deb("libc6", "2.36-9%2Bdeb12u9")));
    assert_eq!(os.len(), 7);
    let image = depends_on(
        &bom,
        bom["metadata"]["component"]["bom-ref"].as_str().unwrap(),
    );
    assert!(image.contains("os:debian@12"));
    assert!(image.contains("pkg:pypi/requests@2.32.3"));
    assert!(
        !image.contains("pkg:pypi/urllib3@2.2.3"),
        "urllib3 is reached through requests"
    );
    assert!(image.contains("pkg:npm/express@4.21.2"));
    assert!(!image.contains("pkg:npm/send@0.19.0"));

    // Every ref in the graph names a component (or the image).
    let mut known: BTreeSet<String> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap().to_string())
        .collect();
    known.insert(
        bom["metadata"]["component"]["bom-ref"]
            .as_str()
            .unwrap()
            .into(),
    );
    for d in bom["dependencies"].as_array().unwrap() {
        assert!(known.contains(d["ref"].as_str().unwrap()), "{d}");
        for r in d["dependsOn"].as_array().unwrap() {
            assert!(known.contains(r.as_str().unwrap()), "{r}");
        }
    }
}

#[test]
fn unknowns_are_reported() {
    let (_, bom) = render(&mixed_input(), SpecVersion::V1_6);
    let files: Vec<&Value> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "file")
        .collect();
    // The deleted file is not in the final image, so not in its SBOM.
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["name"], "/opt/app/broken-1.0.dist-info/METADATA");
    assert!(
        files[0]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "gantry:unknown:reason" && p["value"] == "no Name field")
    );
    let doc_props = bom["properties"].as_array().unwrap();
    assert!(doc_props.iter().any(|p| {
        p["name"] == "gantry:unknown"
            && p["value"]
                .as_str()
                .unwrap()
                .contains("layer media type not walked")
    }));
}

#[test]
fn output_is_deterministic() {
    let input = mixed_input();
    let (a, bom) = render(&input, SpecVersion::V1_6);
    let mut shuffled = input.clone();
    shuffled.packages.reverse();
    shuffled.unknowns.reverse();
    let (b, _) = render(&shuffled, SpecVersion::V1_6);
    assert_eq!(a, b, "package order does not change the document");
    // The timestamp does not change the serial number; the content does.
    let c = to_json(&cyclonedx(&input, SpecVersion::V1_6)).unwrap();
    let c: Value = serde_json::from_str(&c).unwrap();
    assert_eq!(c["serialNumber"], bom["serialNumber"]);
    let (_, v15) = render(&input, SpecVersion::V1_5);
    assert_ne!(v15["serialNumber"], bom["serialNumber"]);
    let mut other = input.clone();
    other.packages.pop();
    let (_, other) = render(&other, SpecVersion::V1_6);
    assert_ne!(other["serialNumber"], bom["serialNumber"]);
    // Components sorted by purl (components without one first), dependencies by ref.
    let purls: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap_or(""))
        .collect();
    let mut sorted = purls.clone();
    sorted.sort();
    assert_eq!(purls, sorted);
    let refs: Vec<&str> = bom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ref"].as_str().unwrap())
        .collect();
    let mut sorted = refs.clone();
    sorted.sort();
    assert_eq!(refs, sorted);
}

#[test]
fn spdx_id_list_is_the_vendored_schemas_enum() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.join("../testkit/schemas/cyclonedx/spdx.SNAPSHOT.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut enumerated: Vec<&str> = schema["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    enumerated.sort_unstable();
    let listed = std::fs::read_to_string(dir.join("src/spdx-ids.txt")).unwrap();
    let listed: Vec<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(listed, enumerated, "run crates/sbom/update-spdx-ids.py");
}
