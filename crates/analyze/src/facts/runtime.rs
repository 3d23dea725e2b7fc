//! `facts.tls` and `facts.timezone`: files a program needs at run time that a `scratch` or
//! distroless final stage can leave out — the CA bundle a TLS client verifies servers
//! against, and the zone database a program that loads named time zones reads.
//!
//! What is detected, and only that (never a guess from a file name):
//! - Go binaries (found by their build info) whose function table names
//!   `crypto/x509.loadSystemRoots` — certificate verification against the system store is
//!   linked in — and not `crypto/x509.SetFallbackRoots` (roots compiled in by
//!   `golang.org/x/crypto/x509roots/fallback`); and whose function table names
//!   `time.LoadLocation` but not `time/tzdata.loadFromEmbeddedTZData` (`import _
//!   "time/tzdata"` or `-tags timetzdata`, the zone database compiled in).
//! - Rust binaries built with `cargo auditable` whose crates include one that reads the
//!   system CA store (`rustls-native-certs`, `rustls-platform-verifier`, `openssl-probe`,
//!   `native-tls`, `openssl-sys`) and none that compiles roots in (`webpki-roots`,
//!   `webpki-root-certs`).
//! - The CA bundle at the places Go's `crypto/x509` and OpenSSL look (a file, or a non-empty
//!   certificate directory), or at `SSL_CERT_FILE` / `SSL_CERT_DIR` from the config's
//!   environment; the zone database at Go's places (`usr/share/zoneinfo` …), `ZONEINFO`, or a
//!   Go root's `lib/time/zoneinfo.zip`.

use gantry_model::Location;
use gantry_model::fs::EntryKind;
use gantry_model::oci::ContainerConfig;
use serde::{Deserialize, Serialize};

use super::{Layers, under};
use crate::package::{Ecosystem, Package};
use crate::{Filesystem, SquashedFile};

/// `facts.tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// Where the final filesystem has a CA bundle (a file, or a certificate directory with
    /// entries); null when it has none.
    pub ca_certificates: Option<String>,
    /// Binaries that verify TLS certificates against the system CA store.
    pub clients: Vec<BinaryNeed>,
}

/// `facts.timezone`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimezoneFacts {
    /// Where the final filesystem has a zone database; null when it has none.
    pub zoneinfo: Option<String>,
    /// Binaries that load named zones from the system and have no zone database compiled in.
    pub loaders: Vec<BinaryNeed>,
}

/// A binary that needs a run-time file, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BinaryNeed {
    /// The executable.
    pub path: String,
    /// `go` or `rust`.
    pub language: String,
    /// What in the binary shows the need.
    pub evidence: String,
    /// Layer and path of the executable.
    pub location: Location,
}

/// Go's `crypto/x509` certificate files (root_linux.go), then OpenSSL's default.
const CA_FILES: &[&str] = &[
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/ssl/cert.pem",
];

/// Go's certificate directories (root_linux.go).
const CA_DIRS: &[&str] = &["etc/ssl/certs", "etc/pki/tls/certs"];

/// Go's zone database directories (zoneinfo_unix.go), and the Go root's zip.
const ZONE_SOURCES: &[&str] = &[
    "usr/share/zoneinfo",
    "usr/share/lib/zoneinfo",
    "usr/lib/locale/TZ",
    "etc/zoneinfo",
    "usr/local/go/lib/time/zoneinfo.zip",
];

const RUST_SYSTEM_STORE: &[&str] = &[
    "rustls-native-certs",
    "rustls-platform-verifier",
    "openssl-probe",
    "native-tls",
    "openssl-sys",
];
const RUST_EMBEDDED_ROOTS: &[&str] = &["webpki-roots", "webpki-root-certs"];

fn env<'c>(config: &'c ContainerConfig, key: &str) -> Option<&'c str> {
    config
        .env
        .iter()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// A file, or a directory with at least one entry, at `path` (symlinks followed).
fn present(fs: &Filesystem, path: &str) -> Option<String> {
    let Some((real, f)) = fs.resolve(path) else {
        // A directory a layer implies by its entries, without an entry of its own.
        let dir = format!("{path}/");
        return under(fs, &dir).next().map(|_| path.to_string());
    };
    let f: &SquashedFile = f;
    match f.entry.kind {
        EntryKind::Dir => {
            let dir = format!("{real}/");
            under(fs, &dir).next().map(|_| path.to_string())
        }
        _ => Some(path.to_string()),
    }
}

fn ca_certificates(fs: &Filesystem, config: &ContainerConfig) -> Option<String> {
    let from_env = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .filter_map(|k| env(config, k))
        .flat_map(|v| v.split(':'))
        .map(|p| p.trim_start_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>();
    from_env
        .iter()
        .map(String::as_str)
        .chain(CA_FILES.iter().copied())
        .chain(CA_DIRS.iter().copied())
        .find_map(|p| present(fs, p))
}

fn zoneinfo(fs: &Filesystem, config: &ContainerConfig) -> Option<String> {
    let from_env = env(config, "ZONEINFO").map(|p| p.trim_start_matches('/').to_string());
    from_env
        .as_deref()
        .into_iter()
        .chain(ZONE_SOURCES.iter().copied())
        .find_map(|p| present(fs, p))
}

/// Derives `facts.tls` and `facts.timezone`. `packages` are the final filesystem's.
pub(crate) fn derive(
    layers: &Layers<'_>,
    fs: &Filesystem,
    config: &ContainerConfig,
    packages: &[Package],
) -> (TlsFacts, TimezoneFacts) {
    let mut clients = Vec::new();
    let mut loaders = Vec::new();
    for l in layers.all() {
        for (path, symbols) in &l.report.go_symbols {
            // Only the binary the final filesystem shows, from the layer that has it.
            if fs.get(path).is_none_or(|f| f.layer != l.index) {
                continue;
            }
            let has = |s: &str| symbols.iter().any(|x| x == s);
            let location = layers.location(l.index, path);
            if has("crypto/x509.loadSystemRoots") && !has("crypto/x509.SetFallbackRoots") {
                let handshake = if has("crypto/tls.(*Conn).clientHandshake") {
                    " and the TLS client handshake (crypto/tls)"
                } else {
                    ""
                };
                clients.push(BinaryNeed {
                    path: path.clone(),
                    language: "go".into(),
                    evidence: format!(
                        "links crypto/x509.loadSystemRoots{handshake}: it verifies certificates against the system CA store, and no fallback roots are compiled in"
                    ),
                    location: location.clone(),
                });
            }
            if has("time.LoadLocation") && !has("time/tzdata.loadFromEmbeddedTZData") {
                loaders.push(BinaryNeed {
                    path: path.clone(),
                    language: "go".into(),
                    evidence: "links time.LoadLocation and not time/tzdata: named zones are read from the system's zone database".into(),
                    location,
                });
            }
        }
    }
    // Rust: the crates cargo-auditable recorded, per binary.
    let mut by_binary: std::collections::BTreeMap<&str, (Vec<&str>, &Location)> =
        std::collections::BTreeMap::new();
    for p in packages.iter().filter(|p| p.ecosystem == Ecosystem::Cargo) {
        if let Some(path) = p.location.path.as_deref() {
            by_binary
                .entry(path)
                .or_insert_with(|| (Vec::new(), &p.location))
                .0
                .push(p.name.as_str());
        }
    }
    for (path, (crates, location)) in by_binary {
        let store: Vec<&str> = RUST_SYSTEM_STORE
            .iter()
            .copied()
            .filter(|c| crates.contains(c))
            .collect();
        let embedded = RUST_EMBEDDED_ROOTS.iter().any(|c| crates.contains(c));
        if !store.is_empty() && !embedded {
            clients.push(BinaryNeed {
                path: path.to_string(),
                language: "rust".into(),
                evidence: format!(
                    "is built with {} (reads the system CA store) and no webpki-roots",
                    store.join(", ")
                ),
                location: location.clone(),
            });
        }
    }
    clients.sort();
    clients.dedup();
    loaders.sort();
    loaders.dedup();
    (
        TlsFacts {
            ca_certificates: ca_certificates(fs, config),
            clients,
        },
        TimezoneFacts {
            zoneinfo: zoneinfo(fs, config),
            loaders,
        },
    )
}
