//! Measures one layer walk: throughput and peak memory.
//!
//! ```text
//! walk_bench <blob> <none|gzip|zstd> [walk|inflate|inflate-hash|sha256]
//! ```
//!
//! - `walk` (default): [`gantry_layer::walk_layer`] with a sink that reads nothing.
//! - `inflate`: the decompressor alone (flate2 `MultiGzDecoder` / zstd), output discarded.
//! - `inflate-hash`: the decompressor plus sha256 of both streams, no tar parsing.
//! - `sha256`: sha256 of the blob alone.
//!
//! Comparing the modes splits the walk's cost into decompression, hashing and tar parsing.
//! Prints one `key=value` line; MB are 10^6 bytes, MB/s are of uncompressed output per
//! wall-clock second. `cpu_seconds` is on-CPU time of the (single) walking thread.

// A command-line tool: stdout is its output.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::time::Instant;

use gantry_layer::{EntrySink, LayerSpec, Limits, walk_layer};
use gantry_model::fs::{FileEntry, Whiteout};
use gantry_model::oci::Compression;
use gantry_model::{Digest, DigestAlgorithm};
use sha2::Digest as _;

struct NoOp;

impl EntrySink for NoOp {
    fn file(&mut self, _: &FileEntry, _: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }

    fn whiteout(&mut self, _: &Whiteout) -> io::Result<()> {
        Ok(())
    }
}

/// Counts and optionally hashes what passes through.
struct Tap<R> {
    inner: R,
    hasher: Option<sha2::Sha256>,
    bytes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

fn sha256_file(path: &str) -> io::Result<(Digest, u64)> {
    let mut tap = Tap {
        inner: File::open(path)?,
        hasher: Some(sha2::Sha256::new()),
        bytes: 0,
    };
    let mut buf = vec![0u8; 256 << 10];
    while tap.read(&mut buf)? > 0 {}
    let hash = tap.hasher.map(|h| h.finalize()).unwrap_or_default();
    Ok((
        Digest::from_bytes(DigestAlgorithm::Sha256, &hash),
        tap.bytes,
    ))
}

/// Decompresses without tar parsing; returns uncompressed bytes.
fn inflate(path: &str, compression: Compression, hash: bool) -> io::Result<u64> {
    let raw = Tap {
        inner: File::open(path)?,
        hasher: hash.then(sha2::Sha256::new),
        bytes: 0,
    };
    let decoder: Box<dyn Read> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
            BufReader::with_capacity(128 << 10, raw),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
    };
    let mut out = Tap {
        inner: decoder,
        hasher: hash.then(sha2::Sha256::new),
        bytes: 0,
    };
    let mut buf = vec![0u8; 256 << 10];
    while out.read(&mut buf)? > 0 {}
    Ok(out.bytes)
}

/// Time this thread has spent on a CPU, from /proc/thread-self/schedstat (nanoseconds):
/// unlike wall time, not inflated when other processes compete for the cores.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Peak resident set size of this process, from /proc/self/status (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, compression, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: walk_bench <blob> <none|gzip|zstd> [walk|inflate|inflate-hash|sha256]".into(),
        );
    };
    let compression = match compression.as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        other => return Err(format!("unknown compression {other}").into()),
    };
    let mode = rest.first().map_or("walk", String::as_str);

    // Outside the timed region; also brings the blob into the page cache.
    let (digest, compressed) = sha256_file(path)?;

    let start = Instant::now();
    let cpu_start = cpu_ns();
    let (uncompressed, entries) = match mode {
        "walk" => {
            let spec = LayerSpec {
                digest,
                diff_id: None,
                compression,
            };
            let walk = walk_layer(File::open(path)?, &spec, &Limits::default(), &mut NoOp)?;
            (walk.uncompressed_size, walk.entries)
        }
        "inflate" => (inflate(path, compression, false)?, 0),
        "inflate-hash" => (inflate(path, compression, true)?, 0),
        "sha256" => (sha256_file(path)?.1, 0),
        other => return Err(format!("unknown mode {other}").into()),
    };
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = cpu_ns().saturating_sub(cpu_start) as f64 / 1e9;
    println!(
        "mode={mode} seconds={seconds:.3} cpu_seconds={cpu_seconds:.3} compressed_mb={:.1} uncompressed_mb={:.1} mb_per_s={:.0} entries={entries} peak_rss_mb={:.1}",
        compressed as f64 / 1e6,
        uncompressed as f64 / 1e6,
        uncompressed as f64 / 1e6 / seconds,
        peak_rss_kb() as f64 / 1024.0,
    );
    Ok(())
}
