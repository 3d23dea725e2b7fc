//! `gantry-imagebuild`: the tool behind `scripts/image.sh`. Builds Gantry's image from a
//! `gantry` executable into an OCI layout, and optionally pushes it.
//!
//! ```text
//! gantry-imagebuild --binary target/release/gantry --rootfs DIR --version V --revision R
//! gantry-imagebuild --binary target/release/gantry --out OUT_DIR \
//!     --version 0.1.0 --revision $(git rev-parse HEAD) [--source URL] [--tag 0.1.0] \
//!     [--push registry.example/platform/gantry:0.1.0 [--insecure-registry HOST:PORT]]
//! ```
//!
//! `SOURCE_DATE_EPOCH` sets every timestamp (required: a build without it would not be
//! reproducible, and the script always knows the commit time). Push credentials come from
//! `GANTRY_REGISTRY_USERNAME`/`GANTRY_REGISTRY_PASSWORD`, else the Docker config file.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;
use gantry_imagebuild::{PushOptions, Recipe, build, push};

/// Builds Gantry's own container image (FROM scratch, non-root, reproducible).
#[derive(Debug, Parser)]
#[command(name = "gantry-imagebuild")]
struct Args {
    /// The gantry executable to ship.
    #[arg(long)]
    binary: PathBuf,
    /// Where to write the OCI image layout.
    #[arg(long, required_unless_present = "rootfs")]
    out: Option<PathBuf>,
    /// Instead: write the image's file tree into this directory (the Dockerfile copies it
    /// into its FROM scratch stage, so both images hold the same files).
    #[arg(long, conflicts_with_all = ["out", "push"])]
    rootfs: Option<PathBuf>,
    /// org.opencontainers.image.version.
    #[arg(long)]
    version: String,
    /// org.opencontainers.image.revision (the git commit).
    #[arg(long)]
    revision: String,
    /// org.opencontainers.image.source (where the source lives); omitted when not given.
    #[arg(long)]
    source: Option<String>,
    /// The CA bundle to ship.
    #[arg(long, default_value = gantry_imagebuild::CA_BUNDLE)]
    ca_bundle: PathBuf,
    /// Tag recorded in the layout's index.json (org.opencontainers.image.ref.name).
    #[arg(long)]
    tag: Option<String>,
    /// Also push to this reference (registry/repository[:tag]).
    #[arg(long)]
    push: Option<String>,
    /// A registry reached over plain HTTP (repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gantry-imagebuild: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") else {
        bail!("SOURCE_DATE_EPOCH is not set (scripts/image.sh sets it to the commit time)");
    };
    let epoch: i64 = epoch
        .trim()
        .parse()
        .with_context(|| format!("SOURCE_DATE_EPOCH={epoch:?} is not a number of seconds"))?;
    let recipe = Recipe {
        binary: args.binary,
        ca_bundle: args.ca_bundle,
        version: args.version,
        revision: args.revision,
        source: args.source,
        epoch,
    };
    if let Some(dir) = &args.rootfs {
        let tree = gantry_imagebuild::Rootfs::collect(&recipe.binary, &recipe.ca_bundle)?;
        tree.write_to(dir)?;
        eprintln!("wrote the image's file tree to {}", dir.display());
        return Ok(());
    }
    let Some(out) = args.out else {
        bail!("--out OUT_DIR is required");
    };
    let image = build(&recipe)?;
    image.write_layout(&out, args.tag.as_deref())?;
    eprintln!(
        "wrote {} ({} shared libraries, Debian packages: {})",
        out.display(),
        image.rootfs.libraries.len(),
        image
            .rootfs
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{}", image.digest());
    if let Some(reference) = args.push {
        let credentials = match (
            std::env::var("GANTRY_REGISTRY_USERNAME"),
            std::env::var("GANTRY_REGISTRY_PASSWORD"),
        ) {
            (Ok(u), Ok(p)) => Some((u, p)),
            _ => None,
        };
        let options = PushOptions {
            insecure_registries: args.insecure_registries,
            credentials,
            docker_config: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let pushed = runtime.block_on(push(&image, &reference, &options))?;
        eprintln!("pushed {reference}");
        println!("{}", pushed.pinned);
    }
    Ok(())
}
