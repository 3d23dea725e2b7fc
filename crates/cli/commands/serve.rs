//! `gantry serve`: the long-running service (registry webhooks in, verdicts and SBOMs out).
//!
//! Settings come from, strongest first: flags, environment variables (clap reads both),
//! the config file (`--config`), the embedded defaults (gantry-server's `ServeConfig`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use gantry_server::{ServeConfig, Settings};

/// `gantry serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML or YAML, by extension); see docs/configuration.md.
    #[arg(long, value_name = "FILE", env = "GANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the webhooks and the API [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of /healthz, /readyz and /metrics [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR", env = "GANTRY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Directory of the SQLite database and the layer cache [default: $XDG_DATA_HOME/gantry].
    #[arg(long, value_name = "DIR", env = "GANTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://FILE or postgres://USER@HOST/DB [default: sqlite in the data dir].
    #[arg(
        long,
        value_name = "URL",
        env = "GANTRY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Policy directory [default: the built-in policies].
    #[arg(long, value_name = "DIR", env = "GANTRY_POLICY")]
    pub policy: Option<PathBuf>,
    /// HTTPS address of the Kubernetes admission webhook [default: 0.0.0.0:8443]; only with
    /// --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", env = "GANTRY_ADMISSION_LISTEN")]
    pub admission_listen: Option<SocketAddr>,
    /// PEM certificate chain of the admission listener (re-read when the file changes).
    #[arg(
        long,
        value_name = "FILE",
        env = "GANTRY_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the admission listener.
    #[arg(
        long,
        value_name = "FILE",
        env = "GANTRY_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle that signed the API server's webhook client certificate: only clients
    /// presenting a certificate it signed may send admission reviews.
    #[arg(long, value_name = "FILE", env = "GANTRY_ADMISSION_CLIENT_CA")]
    pub admission_client_ca: Option<PathBuf>,
}

/// Applies flags and environment over the file (or the defaults).
pub fn config(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::load(path)?,
        None => ServeConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.admin_listen {
        config.admin_listen = v;
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = Some(v.clone());
    }
    if let Some(v) = &args.database_url {
        config.database_url = Some(v.clone());
    }
    if let Some(v) = &args.policy {
        config.policy = Some(v.clone());
    }
    if let Some(v) = args.admission_listen {
        config.admission.listen = v;
    }
    if let Some(v) = &args.tls_cert {
        config.admission.tls_cert = Some(v.clone());
    }
    if let Some(v) = &args.tls_key {
        config.admission.tls_key = Some(v.clone());
    }
    if let Some(v) = &args.admission_client_ca {
        // Stronger than the file: naming the CA means verifying clients, whatever the file's
        // opt-out says.
        config.admission.client_ca = Some(v.clone());
        config.admission.allow_unauthenticated_clients = false;
    }
    Ok(config)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(config(&args)?).context("invalid configuration")?;
    gantry_server::run(settings, shutdown_signal())
        .await
        .context("gantry serve")?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
