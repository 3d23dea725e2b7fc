//! gantry-fuzz: what each fuzz target does with its input, in one place.
//!
//! Every target under `fuzz_targets/` is one line calling a function here, so the seeds
//! example (`examples/seeds.rs`) and a debugging session can run exactly what libFuzzer runs.
//! The functions go through Gantry's real entry points — the layer walker and dispatcher the
//! scanner uses, `Document::parse` and the resolver, the webhook and admission parsers — and
//! never duplicate parser code. They ignore errors (a parser refusing input is fine); a panic,
//! an abort or a sanitizer report is a crash.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use gantry_analyze::{
    AnalyzerSet, Budget, Caps, ImageTally, LayerFacts, LayerReport, MemoryBudget, derive_facts,
    final_os_release, final_packages, squash_within,
};
use gantry_layer::{LayerSpec, Limits, walk_layer};
use gantry_model::oci::{Compression, ContainerConfig, Descriptor, DocumentKind, LayerKind};
use gantry_model::{Digest, DigestAlgorithm, ImageRef, Platform};
use gantry_registry::{BlobStream, Document, ImageSource, RegistryError};
use sha2::Digest as _;

/// The built-in analyzers, compiled once per process (glob sets, secret rules).
fn analyzers() -> Option<&'static AnalyzerSet> {
    static SET: OnceLock<Option<AnalyzerSet>> = OnceLock::new();
    SET.get_or_init(|| AnalyzerSet::builtin().ok()).as_ref()
}

/// One memory budget for the process, as one `Scanner` has.
fn memory(limits: &Limits) -> Arc<MemoryBudget> {
    static MEMORY: OnceLock<Arc<MemoryBudget>> = OnceLock::new();
    MEMORY
        .get_or_init(|| MemoryBudget::new(limits.analyzer_memory_bytes))
        .clone()
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &sha2::Sha256::digest(bytes))
}

/// Walks `blob` as the scanner walks a layer — the same [`walk_layer`], the built-in analyzers
/// behind a dispatcher charged to the default record caps and a shared memory budget — then
/// derives the file facts from the report, as `gantry-gate` does for a one-layer image.
///
/// `diff_id`, when given, is checked by the walker like a config's `rootfs.diff_ids` entry.
pub fn walk_as_scanner(blob: &[u8], compression: Compression, diff_id: Option<Digest>) {
    let Some(set) = analyzers() else { return };
    let limits = Limits::default();
    let spec = LayerSpec {
        digest: sha256(blob),
        diff_id,
        compression,
    };
    let caps = Caps::from_limits(&limits);
    let budget = Budget::new(caps, ImageTally::new());
    let mut dispatcher = set.dispatcher_with(budget, Some(memory(&limits)));
    let walked = walk_layer(blob, &spec, &limits, &mut dispatcher);
    let report: LayerReport = dispatcher.finish();
    if walked.is_err() {
        // The scanner drops a failed walk's report; nothing after the walk sees it.
        return;
    }
    let Ok(fs) = squash_within(std::iter::once(&report), &caps) else {
        return;
    };
    let layers = [LayerFacts {
        index: 0,
        digest: &spec.digest,
        report: &report,
    }];
    let _ = derive_facts(&layers, &fs, &ContainerConfig::default(), &[]);
    let _ = final_packages(&layers, &fs);
    let _ = final_os_release(&layers, &fs);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap_or_default()
}

/// `layer_tar`: the first byte chooses how the rest reaches the walker.
///
/// - 0: an uncompressed layer (tar headers, PAX records, GNU long names, sizes);
/// - 1, 2: the same tar, gzip- or zstd-compressed here, with its diff ID checked;
/// - 3, 4: the bytes as a gzip or zstd stream (hostile frames, trailing data, bombs).
pub fn layer_tar(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => walk_as_scanner(body, Compression::None, Some(sha256(body))),
        1 => walk_as_scanner(&gzip(body), Compression::Gzip, Some(sha256(body))),
        2 => walk_as_scanner(&zstd(body), Compression::Zstd, Some(sha256(body))),
        3 => walk_as_scanner(body, Compression::Gzip, None),
        _ => walk_as_scanner(body, Compression::Zstd, None),
    }
}

/// Where [`package_db`] puts its input: each analyzer's file(s), as images have them.
pub const PACKAGE_PATHS: &[&str] = &[
    // dpkg
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/fuzz",
    "var/lib/dpkg/info/fuzz.list",
    "usr/share/doc/fuzz/copyright",
    // apk
    "lib/apk/db/installed",
    // rpm: sqlite, then the formats reported as unsupported (bdb, ndb, a stray WAL)
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "var/lib/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages.db",
    "var/lib/rpm/rpmdb.sqlite-wal",
    // python
    "usr/lib/python3/site-packages/fuzz-1.0.dist-info/METADATA",
    "usr/lib/python3/site-packages/fuzz-1.0.egg-info/PKG-INFO",
    "usr/lib/python3/site-packages/fuzz-1.0.egg-info",
    // npm
    "app/package.json",
    "app/node_modules/fuzz/package.json",
    "app/node_modules/@scope/fuzz/package.json",
    "app/package-lock.json",
    "app/node_modules/.package-lock.json",
    // executables: Go build info, cargo-auditable (recognised by their ELF magic)
    "usr/local/bin/fuzz",
    // java: the bytes as a whole archive
    "app/lib/fuzz.jar",
    // os-release, passwd/group
    "etc/os-release",
    "usr/lib/os-release",
    "etc/passwd",
    "etc/group",
    // secrets (every text file; these by name), toolchain source maps
    "app/.env",
    "root/.docker/config.json",
    "app/static/main.js.map",
];

/// Jar members [`package_db`] can put its input at instead (the jar built around it).
pub const JAR_MEMBERS: &[&str] = &[
    "META-INF/MANIFEST.MF",
    "META-INF/maven/org.example/fuzz/pom.properties",
];

/// How many places [`package_db`]'s selector byte chooses from.
pub fn package_places() -> usize {
    PACKAGE_PATHS.len() + JAR_MEMBERS.len()
}

/// A stored jar holding `content` at `member`.
pub fn jar(member: &str, content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    if w.start_file(member, opts).is_err() || w.write_all(content).is_err() {
        return Vec::new();
    }
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// One uncompressed layer with `content` at `path` (a regular file, mode 0755 so an
/// executable counts as one), built with the tar crate as the testkit builds layers.
pub fn tar_with(path: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    if b.append_data(&mut h, path, content).is_err() {
        return Vec::new();
    }
    b.into_inner().unwrap_or_default()
}

/// The layer [`package_db`] walks for `data` (selector byte, then content).
pub fn package_layer(data: &[u8]) -> Option<Vec<u8>> {
    let (&place, content) = data.split_first()?;
    let place = usize::from(place) % package_places();
    Some(match PACKAGE_PATHS.get(place) {
        Some(path) => tar_with(path, content),
        None => {
            let member = JAR_MEMBERS.get(place - PACKAGE_PATHS.len())?;
            tar_with("app/lib/fuzz.jar", &jar(member, content))
        }
    })
}

/// `package_db`: the input at one analyzer's path (first byte: which, [`PACKAGE_PATHS`] then
/// [`JAR_MEMBERS`]) inside a real tar layer, walked as the scanner walks it.
pub fn package_db(data: &[u8]) {
    if let Some(layer) = package_layer(data) {
        walk_as_scanner(&layer, Compression::None, None);
    }
}

/// The reports the walk of `layer` produces, for the seeds example's reach check.
pub fn report_of(layer: &[u8]) -> Option<LayerReport> {
    let set = analyzers()?;
    let limits = Limits::default();
    let spec = LayerSpec {
        digest: sha256(layer),
        diff_id: None,
        compression: Compression::None,
    };
    let mut dispatcher = set.dispatcher();
    walk_layer(layer, &spec, &limits, &mut dispatcher).ok()?;
    Some(dispatcher.finish())
}

/// The separator of [`image_documents`]' pieces (a byte JSON text never holds raw).
pub const PIECE_SEPARATOR: u8 = 0;

/// An image source serving fuzz pieces: the first is the root document, the last the config,
/// those between are served in turn to every `manifest()` request (children of an index).
///
/// Digests are not checked against the pieces (no fuzzer finds a sha256 preimage); the real
/// sources verify them before `Document::parse` sees the bytes, so what is fuzzed here is
/// everything after that check.
#[derive(Debug)]
struct PieceSource {
    pieces: Vec<Vec<u8>>,
    root_media_type: Option<String>,
    next: Mutex<usize>,
}

impl PieceSource {
    fn middle(&self) -> &[Vec<u8>] {
        match self.pieces.len() {
            0..=2 => &[],
            n => &self.pieces[1..n - 1],
        }
    }
}

#[async_trait::async_trait]
impl ImageSource for PieceSource {
    fn describe(&self) -> String {
        "fuzz".to_string()
    }

    async fn root(&self) -> Result<Document, RegistryError> {
        let bytes = self.pieces.first().cloned().unwrap_or_default();
        Document::parse(
            sha256(&bytes),
            self.root_media_type.clone(),
            bytes,
            "root document",
        )
    }

    async fn manifest(&self, desc: &Descriptor) -> Result<Document, RegistryError> {
        let middle = self.middle();
        let bytes = {
            let mut next = self.next.lock().map_err(|_| RegistryError::NotFound {
                what: "manifest",
                reference: desc.digest.to_string(),
            })?;
            let piece = middle.get(*next % middle.len().max(1)).cloned();
            *next += 1;
            piece
        };
        let bytes = bytes.ok_or_else(|| RegistryError::NotFound {
            what: "manifest",
            reference: desc.digest.to_string(),
        })?;
        Document::parse(
            desc.digest.clone(),
            Some(desc.media_type.clone()),
            bytes,
            "index entry",
        )
    }

    async fn config(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        match self.pieces.len() {
            0 | 1 => Err(RegistryError::NotFound {
                what: "config",
                reference: desc.digest.to_string(),
            }),
            n => Ok(self.pieces[n - 1].clone()),
        }
    }

    async fn blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        Err(RegistryError::NotFound {
            what: "blob",
            reference: desc.digest.to_string(),
        })
    }
}

/// Transport media types the root document may arrive with (the first byte chooses).
const TRANSPORT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some(gantry_model::oci::media_type::OCI_INDEX),
    Some(gantry_model::oci::media_type::OCI_MANIFEST),
    Some(gantry_model::oci::media_type::DOCKER_MANIFEST_LIST),
    Some(gantry_model::oci::media_type::DOCKER_MANIFEST),
];

fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().ok())
        .as_ref()
}

/// `image_documents`: manifests, indexes and image configs. The first byte picks the root's
/// transport media type; the rest is NUL-separated pieces (root document, child documents,
/// config) served by an in-memory [`ImageSource`] to the resolver (`resolve_one` for a few
/// platforms, `resolve_all_platforms`), then each resolved image goes through what builds
/// the policy input from it (`gantry-gate`'s `image_info`/`config_info`, facts from the
/// config's `User`, `Env` and history) and its layer descriptors' media types are classified.
pub fn image_documents(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Some(rt) = runtime() else { return };
    let pieces: Vec<Vec<u8>> = rest
        .split(|&b| b == PIECE_SEPARATOR)
        .map(<[u8]>::to_vec)
        .collect();
    // The parsers on their own too: detection on the raw JSON of every piece.
    for piece in &pieces {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(piece) {
            let mt = value.get("mediaType").and_then(|v| v.as_str());
            let _ = DocumentKind::detect(mt, &value);
        }
    }
    let source = PieceSource {
        pieces,
        root_media_type: TRANSPORT_TYPES[usize::from(kind) % TRANSPORT_TYPES.len()]
            .map(str::to_string),
        next: Mutex::new(0),
    };
    let mut images = Vec::new();
    rt.block_on(async {
        for platform in ["linux/amd64", "linux/arm64/v8"] {
            let platform: Option<Platform> = platform.parse().ok();
            if let Ok(image) = gantry_registry::resolve_one(&source, platform.as_ref()).await {
                images.push(image);
            }
        }
        if let Ok(all) = gantry_registry::resolve_all_platforms(&source).await {
            images.extend(all);
        }
    });
    for image in &images {
        let _ = gantry_gate::input::image_info("fuzz", image);
        let _ = gantry_gate::input::config_info(&image.config);
        for layer in &image.manifest.layers {
            let _ = LayerKind::of(&layer.media_type);
        }
        let fs = gantry_analyze::squash(std::iter::empty());
        let _ = derive_facts(&[], &fs, &image.config.config, &image.config.history);
        let _ = serde_json::to_vec(&image.config);
    }
}

/// `webhook`: the first byte picks the sender, the second the Content-Type and the registry
/// hint; the rest is the body, given to `gantry_server::webhook::parse` as the HTTP handler
/// gives it. Every event that parses is read back through its accessors.
pub fn webhook(data: &[u8]) {
    use gantry_server::webhook::{RegistryHint, Source, parse};
    let [sender, flags, body @ ..] = data else {
        return;
    };
    let source = Source::ALL[usize::from(*sender) % Source::ALL.len()];
    let types = source.content_types();
    let content_type = match flags & 0x3 {
        0 => None,
        1 => types.first().copied(),
        2 => types.last().copied(),
        _ => Some("application/json; charset=utf-8"),
    };
    let hint = if flags & 0x4 == 0 {
        RegistryHint::none()
    } else {
        match RegistryHint::host("registry.example.com:5000") {
            Ok(h) => h,
            Err(_) => return,
        }
    };
    if let Ok(parsed) = parse(source, body, content_type, &hint) {
        for event in &parsed.events {
            let _ = (event.id(), event.source(), event.image().to_string());
            let _ = (
                event.digest(),
                event.tag(),
                event.media_type(),
                event.kind(),
            );
            let _ = (event.occurred_at(), event.actor());
        }
        for skipped in &parsed.skipped {
            let _ = skipped.reason.code();
        }
    }
}

/// `admission`: the body of `POST /admission` through `parse_review`, the pod-spec image
/// extraction of every workload kind and the reference parser, as the handler runs them
/// before any lookup; and the `?timeout=` query value (the body's first line).
pub fn admission(data: &[u8]) {
    let (timeout, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    if let Ok(t) = std::str::from_utf8(timeout) {
        let _ = gantry_server::fuzzing::admission_budget(Some(t));
    }
    gantry_server::fuzzing::admission_review(body);
}

/// `image_ref`: the reference parser (Docker normalisation), every way Gantry parses one:
/// as an image reference, as a CLI/config source (`oci:`, `docker-archive:` prefixes), as a
/// digest and as a platform; what parses is printed and parsed again (a round trip must not
/// panic either).
pub fn image_ref(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = s.parse::<ImageRef>() {
        let _ = (r.registry(), r.repository(), r.tag(), r.digest(), r.host());
        let _ = (r.name(), r.is_loopback());
        let _ = r.to_string().parse::<ImageRef>();
    }
    if let Ok(src) = s.parse::<gantry_registry::SourceRef>() {
        let _ = src.to_string().parse::<gantry_registry::SourceRef>();
    }
    let _ = s.parse::<Digest>();
    if let Ok(p) = s.parse::<Platform>() {
        let _ = p.to_string().parse::<Platform>();
    }
}
