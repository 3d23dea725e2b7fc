//! Raw command-line arguments (clap) and their conversion into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gantry_model::Platform;
use gantry_registry::SourceRef;

/// `gantry --version`: the crate version, the git revision and the build date (crates/cli/build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("GANTRY_GIT_REVISION"),
    ", built ",
    env!("GANTRY_BUILD_DATE"),
    ")"
);

/// Gantry: the gate between a container registry and the clusters that run its images.
#[derive(Debug, Parser)]
#[command(name = "gantry", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug). GANTRY_LOG=<filter> overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what Gantry reads from an image: manifest, config, history and every layer.
    Inspect(InspectArgs),
    /// Judge an image against the policies: exit 0 allow, 1 deny, 2 error.
    Scan(ScanCommandArgs),
    /// Print the image's CycloneDX SBOM (1.6, or 1.5 with --spec 1.5).
    Sbom(SbomArgs),
    /// Work with policy bundles (`gantry policy test [DIR]`).
    Policy(crate::commands::policy::PolicyArgs),
    /// Run the service: registry webhooks in, durable scans, verdicts and SBOMs over HTTP.
    Serve(crate::commands::serve::ServeArgs),
    /// Make a CA and the admission webhook's serving certificate, plus the kustomize patch
    /// that puts the CA into the webhook configuration (clusters without cert-manager).
    Cert(crate::commands::cert::CertArgs),
}

/// Output format of `gantry scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Human-readable: the verdict, then each violation and warning with its evidence.
    Table,
    /// The full report: image, facts, findings, verdict (docs/report.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable summary.
    Table,
    /// Machine-readable JSON (stable field names).
    Json,
}

/// Where images come from and how to reach them (shared by every command that reads images).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Allow this registry whatever its address (HOST, HOST:PORT, HOST/NAMESPACE, or * for
    /// every host); repeatable. The named image's registry is always allowed; other hosts (a
    /// base image a label names) only on public addresses unless listed here.
    #[arg(
        long = "allow-registry",
        value_name = "HOST[/NS]",
        env = "GANTRY_ALLOW_REGISTRIES",
        value_delimiter = ','
    )]
    pub allow_registries: Vec<String>,
    /// Allow plain HTTP to this registry host (host or host:port); repeatable. Loopback hosts
    /// (localhost, 127.0.0.0/8, ::1) are allowed when the registry is (see --allow-registry).
    #[arg(
        long = "insecure-registry",
        value_name = "HOST",
        env = "GANTRY_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Registry user name (overrides the Docker config file).
    #[arg(long, env = "GANTRY_REGISTRY_USERNAME", requires = "password")]
    pub username: Option<String>,
    /// Registry password or token. Prefer the environment variable to keep it out of `ps`.
    #[arg(
        long,
        env = "GANTRY_REGISTRY_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,
    /// Docker config file with registry credentials (default: $DOCKER_CONFIG/config.json, then
    /// ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
}

/// Layer-walk and cache settings (shared by every command that scans).
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Per-layer result cache directory (default: $GANTRY_CACHE_DIR, $XDG_CACHE_HOME/gantry
    /// or ~/.cache/gantry).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Walk every layer even when a cached result exists, and do not write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Layers walked at once (default: number of CPUs, at least 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel_layers: Option<u16>,
    /// Override a hostile-input or timeout limit (repeatable), e.g. `--limit layer-entries=500000`
    /// or `--limit read-timeout=2m`. Names and defaults: docs/limits.md.
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    pub limits: Vec<gantry_scan::limits::LimitArg>,
}

/// `gantry inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: a registry reference (`alpine`, `host:5000/ns/repo:tag`, `repo@sha256:…`),
    /// `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or `docker-archive:FILE[:REPO:TAG]`.
    #[arg(value_name = "IMAGE")]
    pub image: SourceRef,
    /// Platform to pick from a multi-platform index (default: this host's, else linux/amd64).
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT]",
        conflicts_with = "all_platforms"
    )]
    pub platform: Option<Platform>,
    /// Inspect every platform of an index.
    #[arg(long)]
    pub all_platforms: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// `gantry scan`.
#[derive(Debug, Args)]
pub struct ScanCommandArgs {
    /// The image (same forms as `gantry inspect`).
    #[arg(value_name = "IMAGE")]
    pub image: SourceRef,
    /// Platform to pick from a multi-platform index (default: this host's, else linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Policy bundle directory (`*.rego` and an optional `data.json`) replacing the built-in one.
    #[arg(long, value_name = "DIR", env = "GANTRY_POLICY")]
    pub policy: Option<PathBuf>,
    /// JSON data merged over the bundle's `data.json` (thresholds, lists, exceptions).
    #[arg(long, value_name = "FILE", env = "GANTRY_POLICY_DATA")]
    pub data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the image's CycloneDX SBOM to FILE (same single pass over the layers).
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// CycloneDX version of `--sbom`: 1.6 or 1.5.
    #[arg(long, value_name = "VERSION", default_value = "1.6", requires = "sbom")]
    pub sbom_spec: gantry_sbom::SpecVersion,
    /// Fetch the base image named by the image's evidence to mark exactly which layers are
    /// the base's (one more registry round trip). Default: on for registry images.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub base_lookup: Option<bool>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// `gantry sbom`.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The image (same forms as `gantry inspect`).
    #[arg(value_name = "IMAGE")]
    pub image: SourceRef,
    /// Platform to pick from a multi-platform index (default: this host's, else linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// CycloneDX version: 1.6 or 1.5.
    #[arg(
        long,
        alias = "sbom-spec",
        value_name = "VERSION",
        default_value = "1.6"
    )]
    pub spec: gantry_sbom::SpecVersion,
    /// Write the SBOM to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
}
