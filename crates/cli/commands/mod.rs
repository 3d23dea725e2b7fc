//! One module per subcommand; each returns the process exit code.

pub mod cert;
pub mod inspect;
pub mod policy;
pub mod sbom;
mod scan;
pub mod serve;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use gantry_registry::{AllowRule, Egress, ImageSource, SourceOptions};
use gantry_scan::{LayerCache, ScanOptions, Scanner};
use gantry_store::DirLayerCache;

use crate::args::{Command, ScanArgs, SourceArgs};

/// Runs a subcommand.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Inspect(args) => inspect::run(args).await,
        Command::Scan(args) => scan::run(args).await,
        Command::Sbom(args) => sbom::run(args).await,
        Command::Policy(args) => policy::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Cert(args) => cert::run(args).await,
    }
}

/// Opens the image source described by the arguments.
async fn open_source(
    image: &gantry_registry::SourceRef,
    args: &SourceArgs,
    scan: &ScanArgs,
) -> anyhow::Result<Arc<dyn ImageSource>> {
    let opts = source_options(image, args, scan)?;
    gantry_registry::open(image, &opts)
        .await
        .with_context(|| format!("opening {image}"))
}

/// Registry options from the arguments (credentials, insecure hosts, fetch limits).
///
/// The user names the image on their own machine, so its registry is allowed whatever its
/// address (a registry on 127.0.0.1 or the office network); a host that something else names —
/// a base-image label — is reached only on public addresses unless `--allow-registry` lists it.
fn source_options(
    image: &gantry_registry::SourceRef,
    args: &SourceArgs,
    scan: &ScanArgs,
) -> anyhow::Result<SourceOptions> {
    let named = match image {
        gantry_registry::SourceRef::Registry(r) => Some(r),
        _ => None,
    };
    let extra = args
        .allow_registries
        .iter()
        .map(|rule| rule.parse::<AllowRule>())
        .collect::<Result<Vec<_>, _>>()
        .context("--allow-registry")?;
    let mut opts = SourceOptions {
        egress: Egress::permissive(named, extra),
        insecure_registries: args.insecure_registries.clone(),
        docker_config: args.docker_config.clone(),
        credentials: args.username.clone().zip(args.password.clone()),
        ..SourceOptions::default()
    };
    gantry_scan::limits::apply(
        &scan.limits,
        &mut gantry_layer::Limits::default(),
        &mut opts.limits,
    );
    Ok(opts)
}

/// Builds a scanner with the cache the arguments ask for.
fn scanner(args: &ScanArgs) -> anyhow::Result<Scanner> {
    let mut options = ScanOptions::default();
    gantry_scan::limits::apply(
        &args.limits,
        &mut options.limits,
        &mut gantry_registry::FetchLimits::default(),
    );
    if let Some(n) = args.parallel_layers {
        options.parallel_layers = usize::from(n);
    }
    let cache: Option<Arc<dyn LayerCache>> = if args.no_cache {
        None
    } else {
        args.cache_dir
            .clone()
            .or_else(gantry_store::default_cache_dir)
            .map(|dir| Arc::new(DirLayerCache::new(dir)) as Arc<dyn LayerCache>)
    };
    Ok(Scanner::new(options, cache)?)
}
