//! Writes a deterministic benchmark layer in three encodings, in one pass:
//! `layer.tar`, `layer.tar.gz` (flate2, default level) and `layer.tar.zst` (zstd level 3).
//!
//! The tar is shaped like a real application layer: tens of thousands of small text files
//! (source, configs, package metadata: compresses ~3:1) and a few 64 MiB files of
//! semi-compressible data (binaries, archives: ~1.7:1).
//!
//! ```text
//! cargo run --release -p gantry-layer --example gen_layer -- <out-dir> [uncompressed-MB, default 520]
//! ```

// A command-line tool: stdout is its output.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

const MIB: usize = 1 << 20;
const BIG_FILE: usize = 64 * MIB;
const BIG_FILES: usize = 4;

/// xorshift64*: deterministic output on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Source-like text: indented lines of words from a skewed 2048-word vocabulary.
struct TextGen {
    words: Vec<Vec<u8>>,
}

const VOCABULARY: u64 = 2048;

impl TextGen {
    fn new(rng: &mut Rng) -> Self {
        let words = (0..VOCABULARY)
            .map(|_| {
                let len = 2 + rng.below(9) as usize;
                (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
            })
            .collect();
        TextGen { words }
    }

    fn fill(&self, rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
        let target = out.len() + len;
        let mut column = usize::MAX;
        while out.len() < target {
            if column > 72 {
                out.push(b'\n');
                column = 4 * rng.below(4) as usize;
                out.resize(out.len() + column, b' ');
            }
            // Product of three uniforms: common words are much more common (Zipf-like).
            let n = VOCABULARY;
            let i = (rng.below(n) * rng.below(n) / n * rng.below(n) / n) as usize;
            let word = &self.words[i];
            out.extend_from_slice(word);
            out.push(if rng.below(10) == 0 { b',' } else { b' ' });
            column += word.len() + 1;
        }
        out.truncate(target);
    }
}

/// Random 256-byte chunks mixed with text: roughly what binaries compress like.
fn semi_compressible(rng: &mut Rng, text: &TextGen, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 256);
    while out.len() < len {
        if rng.below(10) < 3 {
            for _ in 0..32 {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            text.fill(rng, &mut out, 256);
        }
    }
    out.truncate(len);
    out
}

/// Writes every byte to the plain, gzip and zstd outputs.
struct Tee {
    plain: BufWriter<File>,
    gzip: flate2::write::GzEncoder<BufWriter<File>>,
    zstd: zstd::Encoder<'static, BufWriter<File>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.plain.write_all(buf)?;
        self.gzip.write_all(buf)?;
        self.zstd.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.plain.flush()?;
        self.gzip.flush()?;
        self.zstd.flush()
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: gen_layer <out-dir> [uncompressed-MB]")?;
    let target_mb: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(520);
    let out = Path::new(&out);
    fs::create_dir_all(out)?;
    let create =
        |name: &str| File::create(out.join(name)).map(|f| BufWriter::with_capacity(MIB, f));
    let tee = Tee {
        plain: create("layer.tar")?,
        gzip: flate2::write::GzEncoder::new(
            create("layer.tar.gz")?,
            flate2::Compression::default(),
        ),
        zstd: zstd::Encoder::new(create("layer.tar.zst")?, 3)?,
    };
    let mut tar = tar::Builder::new(tee);

    let mut rng = Rng(0x5eed_0fca_7500);
    let text = TextGen::new(&mut rng);
    let target = target_mb * 1_000_000;
    let small_budget = target.saturating_sub(BIG_FILES * BIG_FILE);
    let (mut written, mut files, mut dirs) = (0usize, 0usize, 0usize);
    let mut body = Vec::new();
    while written < small_budget {
        if files % 64 == 0 {
            let dir = format!("usr/share/app/d{dirs:04}/");
            tar.append_data(
                &mut header(tar::EntryType::Directory, 0, 0o755),
                &dir,
                io::empty(),
            )?;
            dirs += 1;
        }
        // Log-uniform sizes from 64 bytes to 64 KiB: mostly small, some large.
        let size = (64.0 * 1024f64.powf(rng.below(1000) as f64 / 1000.0)) as usize;
        body.clear();
        text.fill(&mut rng, &mut body, size);
        let path = format!("usr/share/app/d{:04}/file{files:06}.txt", dirs - 1);
        tar.append_data(
            &mut header(tar::EntryType::Regular, size as u64, 0o644),
            &path,
            &body[..],
        )?;
        written += size + 512;
        files += 1;
    }
    for i in 0..BIG_FILES {
        let data = semi_compressible(&mut rng, &text, BIG_FILE);
        let path = format!("opt/app/lib/libbig{i}.so");
        tar.append_data(
            &mut header(tar::EntryType::Regular, data.len() as u64, 0o755),
            &path,
            &data[..],
        )?;
        files += 1;
    }
    let tee = tar.into_inner()?;
    tee.plain
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    tee.gzip
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    tee.zstd
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;

    for name in ["layer.tar", "layer.tar.gz", "layer.tar.zst"] {
        let len = fs::metadata(out.join(name))?.len();
        println!("{name}: {:.1} MB", len as f64 / 1e6);
    }
    println!("{files} files, {dirs} directories");
    Ok(())
}
