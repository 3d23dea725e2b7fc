//! Writes the hostile images of issue 11 (findings 5 and 13) as OCI layouts, to measure what
//! one scan of each costs (docs/limits.md, "What a scan holds in memory"):
//!
//! - `dpkg`: a 6 MiB gzip layer whose `var/lib/dpkg/status` has 800,000 installed packages;
//!   `dpkg-at-cap` the most the default caps keep (99,998 packages in two layers);
//! - `jar`: a jar of 600,000 tiny entries holding a deflated jar of 250,000 entries, three
//!   levels deep (central directories and nested buffers); `jar-at-cap` the same with
//!   99,990 entries per level, the largest directory still read;
//! - `zstd`: a zstd layer compressed with a 2^27-byte window (`zstd --long`) over 160 MiB.
//!
//! ```text
//! cargo run --release -p gantry-analyze --example hostile_images -- OUT_DIR
//! /usr/bin/time -v target/release/gantry scan oci:OUT_DIR/dpkg --no-cache
//! ```
#![allow(clippy::print_stderr)]

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::ExitCode;

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, ImageBuilder, LayerBuilder};
use zip::write::SimpleFileOptions;

/// A dpkg status file of `n` installed packages (about 55 bytes each).
pub fn dpkg_status(n: usize) -> String {
    let mut s = String::with_capacity(n * 56);
    for i in 0..n {
        s.push_str(&format!(
            "Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"
        ));
    }
    s
}

/// A jar of `entries` empty stored entries and, below `depth` > 0, one deflated nested jar
/// built the same way with `nested_entries`.
fn hostile_jar(
    entries: usize,
    nested_entries: usize,
    depth: usize,
) -> zip::result::ZipResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..entries {
        w.start_file(format!("c/{i:x}"), stored)?;
    }
    if depth > 0 {
        let inner = hostile_jar(nested_entries, nested_entries, depth - 1)?;
        w.start_file(
            "lib/inner.jar",
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
        )?;
        w.write_all(&inner)?;
    }
    Ok(w.finish()?.into_inner())
}

fn write(out: &Path, name: &str, layer: LayerBuilder) -> Result<(), String> {
    write_layers(out, name, vec![layer])
}

fn write_layers(out: &Path, name: &str, layers: Vec<LayerBuilder>) -> Result<(), String> {
    let dir = out.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    layers
        .into_iter()
        .fold(ImageBuilder::new().user("65534"), ImageBuilder::layer)
        .build()
        .and_then(|image| image.write_oci_layout(&dir, None))
        .map_err(|e| format!("{name}: {e}"))?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

fn run(out: &Path) -> Result<(), String> {
    write(
        out,
        "dpkg",
        LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/status", dpkg_status(800_000)),
    )?;
    // The most packages the default caps keep: two layers of 49,999 distinct packages.
    let half = |from: usize| {
        let status: String = (from..from + 49_999)
            .map(|i| format!("Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"))
            .collect();
        LayerBuilder::new(Compression::Gzip).file(&format!("var/lib/dpkg/status.d/p{from}"), status)
    };
    write_layers(out, "dpkg-at-cap", vec![half(0), half(49_999)])?;
    let jar = hostile_jar(600_000, 250_000, 3).map_err(|e| format!("jar: {e}"))?;
    eprintln!("jar: {} bytes", jar.len());
    write(
        out,
        "jar",
        LayerBuilder::new(Compression::Gzip).file("app/app.jar", jar),
    )?;
    // The largest jar still read: just under MAX_ARCHIVE_ENTRIES at every level.
    let jar = hostile_jar(99_990, 99_990, 3).map_err(|e| format!("jar: {e}"))?;
    write(
        out,
        "jar-at-cap",
        LayerBuilder::new(Compression::Gzip).file("app/app.jar", jar),
    )?;
    write(
        out,
        "zstd",
        LayerBuilder::new(Compression::Zstd)
            .zstd_window_log(27)
            .zeros("data/zeros", 160 << 20),
    )
}

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: hostile_images OUT_DIR");
        return ExitCode::from(2);
    };
    match run(Path::new(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
