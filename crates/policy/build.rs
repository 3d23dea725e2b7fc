//! Embeds the built-in policy bundle (the workspace's `policies/` directory) into the crate.
//!
//! `policies/` on disk stays the source of truth: every `.rego` file and `data.json` found
//! there is listed, with its path relative to `policies/`, in `$OUT_DIR/builtin_bundle.rs` as
//! an `include_str!`, and cargo reruns this script when anything under `policies/` changes.
//! The runtime sorts the files into modules, test modules and data exactly as
//! `PolicyBundle::from_dir` does.

// Cargo reads a build script's instructions from its stdout.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> io::Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "CARGO_MANIFEST_DIR is not set")
        })?);
    let root = manifest_dir.join("../../policies").canonicalize()?;
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    collect(&root, &root, &mut files)?;
    files.sort();

    let mut out = String::from(
        "/// Files of the built-in bundle: (path relative to `policies/`, contents).\n\
         pub(crate) static FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        let abs = abs
            .to_str()
            .ok_or_else(|| io::Error::other(format!("non-UTF-8 path {}", abs.display())))?;
        let _ = writeln!(out, "    ({rel:?}, include_str!({abs:?})),");
    }
    out.push_str("];\n");

    let out_dir = PathBuf::from(
        env::var_os("OUT_DIR")
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "OUT_DIR is not set"))?,
    );
    fs::write(out_dir.join("builtin_bundle.rs"), out)
}

/// Every `.rego` file and `data.json` under `dir`, skipping hidden entries.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect(root, &path, files)?;
        } else if name.ends_with(".rego") || name == "data.json" {
            let rel = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((rel, path));
        }
    }
    Ok(())
}
