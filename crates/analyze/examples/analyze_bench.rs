//! What the analyzers cost on top of the walk: a generated layer of ~50,000 small files
//! walked with no analyzers, with the built-in ones except secrets, and with all of them.
//!
//! `cargo run --release -p gantry-analyze --example analyze_bench [FILES] [gzip]`
//!
//! By default the layer is uncompressed so the numbers show analyzer cost, not inflate;
//! `gzip` shows them next to a real layer's inflate time. Timings are the best of 3 runs,
//! on stderr.

use std::error::Error;
use std::time::{Duration, Instant};

use gantry_analyze::{AnalyzerSet, builtin};
use gantry_layer::{LayerSpec, Limits, walk_layer};
use gantry_model::oci::Compression;
use gantry_testkit::LayerBuilder;

/// Deterministic filler text (xorshift), shaped like source and config files.
fn text(seed: u64, len: usize) -> String {
    const WORDS: &[&str] = &[
        "const", "return", "function", "import", "value", "config", "export", "=", "{", "}", "\n",
        "if", "else", "name", "path", "0x1f", "true", "false", "null", "self", "token_id",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
        s.push(' ');
    }
    s
}

fn main() -> Result<(), Box<dyn Error>> {
    let files: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let compression = if std::env::args().nth(2).as_deref() == Some("gzip") {
        Compression::Gzip
    } else {
        Compression::None
    };
    let mut layer = LayerBuilder::new(compression);
    let mut bytes = 0usize;
    for i in 0..files {
        let dir = format!("app/pkg{}/mod{}", i % 97, i % 13);
        let (path, data) = match i % 10 {
            // Media and shared objects: skipped by the secrets filter.
            0 => (format!("{dir}/img{i}.png"), text(i, 2048).into_bytes()),
            1 => (format!("{dir}/lib{i}.so.1"), text(i, 4096).into_bytes()),
            // Binaries without an extension: read, then skipped as binary.
            2 => {
                let mut b = b"\x7fELF\x02\x01\x01\x00".to_vec();
                b.extend(text(i, 8192).bytes());
                (format!("{dir}/tool{i}"), b)
            }
            3 => (format!("{dir}/f{i}.json"), text(i, 600).into_bytes()),
            4 => (format!("{dir}/f{i}.py"), text(i, 1500).into_bytes()),
            _ => (format!("{dir}/f{i}.js"), text(i, 900).into_bytes()),
        };
        bytes += data.len();
        layer = layer.file(&path, data);
    }
    // A few real hits, so the confirming regexes run too.
    layer = layer
        .file(
            "app/.env",
            "API_TOKEN=abcdef0123456789\nAWS_KEY=AKIA2E0A8F3B244C9986\n",
        )
        .file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
        );
    let built = layer.build()?;
    eprintln!(
        "layer ({compression:?}): {files} files, {:.1} MiB of content, {:.1} MiB tar, {:.1} MiB blob",
        bytes as f64 / 1048576.0,
        built.uncompressed_size as f64 / 1048576.0,
        built.size as f64 / 1048576.0
    );
    let spec = LayerSpec {
        digest: built.digest.clone(),
        diff_id: Some(built.diff_id.clone()),
        compression,
    };

    let sets: Vec<(&str, AnalyzerSet)> = vec![
        ("walk only (no analyzers)", AnalyzerSet::new(Vec::new())?),
        (
            "built-in without secrets",
            AnalyzerSet::new(
                builtin()
                    .into_iter()
                    .filter(|a| a.id() != "secrets")
                    .collect(),
            )?,
        ),
        ("built-in (all)", AnalyzerSet::builtin()?),
    ];
    for (name, set) in &sets {
        let mut best = Duration::MAX;
        let mut secrets = 0;
        for _ in 0..3 {
            let start = Instant::now();
            let mut dispatcher = set.dispatcher();
            walk_layer(
                built.blob().reader()?,
                &spec,
                &Limits::default(),
                &mut dispatcher,
            )?;
            let report = dispatcher.finish();
            best = best.min(start.elapsed());
            secrets = report.secrets.len();
        }
        eprintln!(
            "{name:<28} {:>8.1} ms  ({:.2} µs/file, {secrets} secret matches)",
            best.as_secs_f64() * 1000.0,
            best.as_secs_f64() * 1e6 / files as f64
        );
    }
    Ok(())
}
