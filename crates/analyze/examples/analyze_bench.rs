//! What the analyzers cost on top of the walk: a generated layer of ~50,000 small files
//! walked with no analyzers, with the built-in ones except secrets, and with all of them;
//! then layers of a few large executables, which the binary catalogers stream: Go-like ones
//! with their build info halfway in, and C-like ones without (scanned to the end).
//!
//! `cargo run --release -p gantry-analyze --example analyze_bench [FILES] [gzip]`
//!
//! By default the layers are uncompressed so the numbers show analyzer cost, not inflate;
//! `gzip` shows them next to a real layer's inflate time. Timings are the best of 3 runs,
//! on stderr, with the process's peak resident memory at the end.

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

/// A 64-bit ELF executable of `len` bytes: filler code, a Go ≥ 1.18 build-info blob at the
/// middle (16-aligned) when `go`, section headers at the end (`.go.buildinfo`, `.shstrtab`).
fn elf_binary(len: usize, seed: u64, go: bool) -> Vec<u8> {
    let mut f: Vec<u8> = text(seed, len / 2).into_bytes();
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    f[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    f.resize(f.len().next_multiple_of(16), 0);
    let buildinfo_at = f.len() as u64;
    f.extend_from_slice(if go {
        b"\xff Go buildinf:\x08\x02"
    } else {
        b"no build info...\x08\x02"
    });
    f.resize(f.len() + 16, 0);
    let version = b"go1.22.5";
    let mut modinfo = vec![b'0'; 16];
    modinfo.extend_from_slice(b"path\tex.com/cmd\nmod\tex.com\tv1.0.0\t\n");
    for i in 0..200 {
        modinfo
            .extend_from_slice(format!("dep\tgithub.com/dep{i}/mod\tv1.{i}.0\th1:x=\n").as_bytes());
    }
    modinfo.extend_from_slice(&[b'1'; 16]);
    for s in [&version[..], &modinfo[..]] {
        let mut n = s.len();
        while n >= 0x80 {
            f.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        f.push(n as u8);
        f.extend_from_slice(s);
    }
    f.extend(text(seed + 1, len - f.len().min(len)).into_bytes());
    f.truncate(len);
    // PT_LOAD over everything so far; then names and section headers at the end.
    let loaded = f.len() as u64;
    f[64..68].copy_from_slice(&1u32.to_le_bytes());
    f[64 + 32..64 + 40].copy_from_slice(&loaded.to_le_bytes());
    let names_at = f.len() as u64;
    f.extend_from_slice(b"\0.go.buildinfo\0.shstrtab\0");
    f.resize(f.len().next_multiple_of(8), 0);
    let shoff = f.len() as u64;
    f.extend([0u8; 64]);
    for (name, kind, off, size) in [(1u32, 1u32, buildinfo_at, 512u64), (15, 3, names_at, 25)] {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[24..32].copy_from_slice(&off.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        f.extend(h);
    }
    f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
    f
}

/// Peak resident memory of this process (Linux), for the record.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
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

    // A few large executables: what streaming them through the binary catalogers costs.
    const BINARIES: usize = 6;
    const BINARY_BYTES: usize = 40 * 1024 * 1024;
    for go in [true, false] {
        let mut layer = LayerBuilder::new(compression);
        for i in 0..BINARIES {
            layer = layer.file_mode(
                &format!("usr/local/bin/tool{i}"),
                elf_binary(BINARY_BYTES, i as u64, go),
                0o755,
            );
        }
        let built = layer.build()?;
        let spec = LayerSpec {
            digest: built.digest.clone(),
            diff_id: Some(built.diff_id.clone()),
            compression,
        };
        eprintln!(
            "layer ({compression:?}): {BINARIES} {} executables of {} MiB, {:.1} MiB blob",
            if go { "Go-like" } else { "C-like" },
            BINARY_BYTES >> 20,
            built.size as f64 / 1048576.0
        );
        for (name, set) in &sets {
            let mut best = Duration::MAX;
            let mut packages = 0;
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
                packages = report.packages.len();
            }
            eprintln!(
                "{name:<28} {:>8.1} ms  ({:.0} MiB/s, {packages} packages)",
                best.as_secs_f64() * 1000.0,
                (BINARIES * BINARY_BYTES) as f64 / 1048576.0 / best.as_secs_f64()
            );
        }
    }
    eprintln!(
        "peak resident memory: {} (mostly the generated layers, held in memory)",
        peak_rss()
    );
    Ok(())
}
