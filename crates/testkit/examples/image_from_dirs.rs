//! Builds a `docker save` archive with one layer per directory tree, for benchmarks and
//! side-by-side comparisons with other scanners (which all read docker-archive files).
//!
//! ```text
//! cargo run --release -p gantry-testkit --example image_from_dirs -- \
//!     OUT.tar REPO:TAG gzip|zstd|none DIR [DIR...]
//! ```
#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;

use gantry_model::oci::Compression;
use gantry_testkit::{ImageBuilder, LayerBuilder, MediaTypes};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, tag, compression, dirs @ ..] = args.as_slice() else {
        eprintln!("usage: image_from_dirs OUT.tar REPO:TAG gzip|zstd|none DIR [DIR...]");
        return ExitCode::from(2);
    };
    let compression = match compression.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        other => {
            eprintln!("unknown compression {other}");
            return ExitCode::from(2);
        }
    };
    let mut image = ImageBuilder::new().media_types(MediaTypes::Docker);
    for dir in dirs {
        let layer = match LayerBuilder::new(compression).from_dir(Path::new(dir)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{dir}: {e}");
                return ExitCode::from(2);
            }
        };
        image = image.layer_with_history(layer, &format!("COPY {dir} /"));
    }
    let built = match image.build() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("building the image: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = built.write_docker_archive(Path::new(out), Some(tag)) {
        eprintln!("writing {out}: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
