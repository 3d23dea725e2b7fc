//! `gantry serve`'s configuration: a TOML or YAML file (same keys), then environment variables
//! and flags over it (the CLI applies those), then [`Settings::resolve`] validates everything
//! at startup — a bad secret reference or limit name stops the service before it listens, not
//! at the first push.
//!
//! The keys are documented for users in docs/configuration.md; deploy/config/ holds complete
//! examples that the tests parse.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gantry_model::Platform;
use gantry_policy::{Policy, PolicyBundle, PolicyLimits};
use gantry_registry::{AllowRule, Egress, FetchLimits, SourceOptions};
use gantry_scan::limits::LimitArg;
use serde::{Deserialize, Deserializer};

use crate::webhook::auth::{Secret, WebhookAuth};
use crate::webhook::{RegistryHint, Source};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML/YAML for these keys.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The file name says neither TOML nor YAML.
    #[error("config file {path}: unknown format (use a .toml, .yaml or .yml file)")]
    Format { path: PathBuf },
    /// A setting is present but unusable.
    #[error("config: {key}: {message}")]
    Invalid { key: String, message: String },
    /// A `*_env` setting names a variable that is not set.
    #[error("config: {key}: environment variable {var} is not set")]
    MissingEnv { key: String, var: String },
    /// The policy bundle does not load or compile.
    #[error("policies: {0}")]
    Policy(#[from] gantry_policy::PolicyError),
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The configuration as written: every key optional, defaults filled in by serde.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Webhooks and API.
    pub listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Where the SQLite file and the layer cache live by default.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; default: `<data_dir>/gantry.db`.
    pub database_url: Option<String>,
    /// Per-layer result cache; default `<data_dir>/layer-cache`.
    pub cache_dir: Option<PathBuf>,
    /// A policy directory; default: the built-in policies.
    pub policy: Option<PathBuf>,
    /// A data.json merged over the bundle's data.
    pub policy_data: Option<PathBuf>,
    /// Scan workers.
    pub workers: WorkersConfig,
    /// Scanning.
    pub scan: ScanConfig,
    /// Registry access.
    pub registry: RegistryConfig,
    /// One endpoint per sender.
    pub webhooks: WebhooksConfig,
    /// Outbound verdict notifications.
    pub notify: Option<NotifyConfig>,
    /// Kubernetes validating admission webhook.
    pub admission: AdmissionConfig,
    /// Who may call `/v1/…`.
    pub api: ApiConfig,
    /// How long finished bookkeeping is kept.
    pub retention: RetentionConfig,
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Done and failed jobs, event ids and sent notifications older than this are deleted
    /// (hourly); `"0s"` keeps them forever. Verdicts, reports, SBOMs and tags are kept.
    #[serde(deserialize_with = "duration")]
    pub finished: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            finished: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `none` (default), `bearer` or `header`, with the same keys as a webhook's auth.
    pub auth: AuthConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: None,
            database_url: None,
            cache_dir: None,
            policy: None,
            policy_data: None,
            workers: WorkersConfig::default(),
            scan: ScanConfig::default(),
            registry: RegistryConfig::default(),
            webhooks: WebhooksConfig::default(),
            notify: None,
            admission: AdmissionConfig::default(),
            api: ApiConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

/// `[admission]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// HTTPS listener; used only when a certificate and key are configured.
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub mode: AdmissionMode,
    pub failure_mode: FailureMode,
    /// Subtracted from the API server's `?timeout=` to get the scan budget.
    #[serde(deserialize_with = "duration")]
    pub safety_margin: Duration,
    /// Budget base when a request names no timeout.
    #[serde(deserialize_with = "duration")]
    pub default_timeout: Duration,
    /// Platform picked from multi-platform images.
    pub platform: String,
    /// How long a tag → digest resolution is reused. Tags move; digests do not: 0 resolves
    /// every tag on every request.
    #[serde(deserialize_with = "duration")]
    pub tag_cache_ttl: Duration,
    pub exempt_namespaces: Vec<String>,
    pub namespaces: Vec<NamespaceMode>,
    pub exemptions: Vec<ExemptionConfig>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: None,
            tls_key: None,
            mode: AdmissionMode::Enforce,
            failure_mode: FailureMode::Closed,
            safety_margin: Duration::from_secs(2),
            default_timeout: Duration::from_secs(10),
            platform: "linux/amd64".to_string(),
            tag_cache_ttl: Duration::from_secs(30),
            exempt_namespaces: vec!["kube-system".to_string()],
            namespaces: Vec::new(),
            exemptions: Vec::new(),
        }
    }
}

/// Whether denials block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdmissionMode {
    /// Denied images are refused.
    Enforce,
    /// Dry run: everything is admitted; denials become warnings and audit annotations.
    Warn,
}

/// What happens when no verdict is known in time, or the registry fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureMode {
    Closed,
    Open,
}

/// `[[admission.namespaces]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceMode {
    pub name: String,
    pub mode: AdmissionMode,
}

/// `[[admission.exemptions]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptionConfig {
    /// Glob over the normalised reference (`docker.io/library/nginx:1.*`).
    pub image: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// `2027-01-31` or RFC 3339; required so that no exemption is forgotten forever.
    pub expires: String,
}

/// `[workers]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Scans running at once in this process. 0 makes an intake-only replica: it takes
    /// webhooks and serves the API while other replicas (sharing Postgres) scan.
    pub concurrency: usize,
    /// A job's lease; renewed every third of it while the scan runs.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// Attempts before a job is marked failed.
    pub max_attempts: u32,
    /// Wait after the first failure, doubled after each further one.
    #[serde(deserialize_with = "duration")]
    pub backoff: Duration,
    /// How long running scans may take to finish on SIGTERM before their jobs are released.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// How often an idle worker looks for work queued by another replica. Work queued by this
    /// process wakes its workers at once.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            concurrency: 2,
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// `[scan]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Budget of `POST /v1/scan` when the caller names none.
    #[serde(deserialize_with = "duration")]
    pub budget: Duration,
    /// Largest budget a caller may ask for.
    #[serde(deserialize_with = "duration")]
    pub max_budget: Duration,
    /// Platform picked from a multi-platform tag by `POST /v1/scan`.
    pub platform: String,
    /// Layers walked at once per scan; default: the number of CPUs.
    pub parallel_layers: Option<usize>,
    /// `--limit` overrides by name (docs/limits.md).
    pub limits: BTreeMap<String, LimitValue>,
    /// Pull the base image the evidence names, to tell exactly which layers are the base's
    /// (one more registry round trip per scan; off for air-gapped registries).
    pub base_lookup: bool,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            budget: Duration::from_secs(60),
            max_budget: Duration::from_secs(300),
            platform: "linux/amd64".to_string(),
            parallel_layers: None,
            limits: BTreeMap::new(),
            base_lookup: true,
        }
    }
}

/// A limit value: `"64MiB"`, `"30s"` or a bare number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LimitValue {
    Number(u64),
    Text(String),
}

/// `[registry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Registries Gantry may pull from (`host`, `host:port`, `host/namespace`, `*`). Empty:
    /// any registry on a public address; loopback and private networks only when listed.
    pub allow: Vec<String>,
    /// Registries reachable over plain HTTP.
    pub insecure: Vec<String>,
    /// Docker config.json with credentials.
    pub docker_config: Option<PathBuf>,
    /// Per-registry credentials (over the Docker config).
    pub credentials: Vec<CredentialConfig>,
}

/// `[[registry.credentials]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Registry host (`registry.example.com`, `10.0.0.5:5000`).
    pub host: String,
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

/// `[webhooks.*]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub distribution: EndpointConfig,
    pub harbor: EndpointConfig,
    pub dockerhub: EndpointConfig,
    pub gitlab: EndpointConfig,
    pub quay: EndpointConfig,
    pub generic: EndpointConfig,
}

impl WebhooksConfig {
    fn get(&self, source: Source) -> &EndpointConfig {
        match source {
            Source::Distribution => &self.distribution,
            Source::Harbor => &self.harbor,
            Source::DockerHub => &self.dockerhub,
            Source::Gitlab => &self.gitlab,
            Source::Quay => &self.quay,
            Source::Generic => &self.generic,
        }
    }
}

/// One webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    pub enabled: bool,
    /// Host to pull from instead of the one the payload names.
    pub registry: Option<String>,
    pub auth: AuthConfig,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            enabled: true,
            registry: None,
            auth: AuthConfig::None,
        }
    }
}

/// How an endpoint authenticates callers; secrets inline or from an environment variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    #[default]
    None,
    Bearer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        token_env: Option<String>,
    },
    Header {
        name: String,
        #[serde(default)]
        value: Option<String>,
        #[serde(default)]
        value_env: Option<String>,
    },
    HmacSha256 {
        header: String,
        #[serde(default)]
        secret: Option<String>,
        #[serde(default)]
        secret_env: Option<String>,
        #[serde(default)]
        prefix: Option<String>,
    },
}

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub url: String,
    #[serde(default = "all_decisions")]
    pub decisions: Vec<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "notify_attempts")]
    pub max_attempts: u32,
    #[serde(default = "notify_backoff", deserialize_with = "duration")]
    pub backoff: Duration,
    #[serde(default = "notify_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn all_decisions() -> Vec<String> {
    vec!["allow".to_string(), "deny".to_string()]
}
fn notify_attempts() -> u32 {
    8
}
fn notify_backoff() -> Duration {
    Duration::from_secs(2)
}
fn notify_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Durations as people write them: `"30s"`, `"5m"`, `"1h 30m"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

impl ServeConfig {
    /// Reads a config file; the format follows the extension.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let parsed = match ext.as_deref() {
            Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
            Some("yaml" | "yml") => serde_norway::from_str(&text).map_err(|e| e.to_string()),
            _ => {
                return Err(ConfigError::Format {
                    path: path.to_path_buf(),
                });
            }
        };
        parsed.map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }
}

/// One webhook endpoint, ready to serve.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub auth: WebhookAuth,
    pub hint: RegistryHint,
}

/// Outbound notifications, ready to send.
#[derive(Debug, Clone)]
pub struct Notify {
    pub url: String,
    pub decisions: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

/// The validated configuration the service runs with.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    pub cache_dir: PathBuf,
    /// Compiled once; its digest keys every stored verdict.
    pub policy: Arc<Policy>,
    pub workers: WorkersConfig,
    pub budget: Duration,
    pub max_budget: Duration,
    pub platform: Platform,
    pub parallel_layers: Option<usize>,
    pub base_lookup: bool,
    pub layer_limits: gantry_layer::Limits,
    pub registry: RegistryAccess,
    /// Enabled endpoints only.
    pub endpoints: BTreeMap<Source, Endpoint>,
    pub notify: Option<Notify>,
    /// The admission webhook, when a certificate is configured.
    pub admission: Option<crate::admission::AdmissionSettings>,
    /// Authentication of `/v1/…` callers.
    pub api_auth: WebhookAuth,
    /// Age after which finished jobs, events and notifications are pruned (`None`: never).
    pub retention: Option<Duration>,
}

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: an SQLite file, created when missing.
    SqliteFile(PathBuf),
    /// `sqlite://…` or `postgres://…` as configured.
    Url(String),
}

impl Database {
    /// For logs: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::SqliteFile(p) => p.display().to_string(),
            Database::Url(u) => gantry_store::redact_url(u),
        }
    }
}

/// Registry options, with credentials per host.
#[derive(Debug, Clone, Default)]
pub struct RegistryAccess {
    /// The outbound policy every registry source obeys (`[registry] allow`).
    pub egress: Egress,
    pub insecure: Vec<String>,
    pub docker_config: Option<PathBuf>,
    pub credentials: BTreeMap<String, (String, String)>,
    pub fetch_limits: FetchLimits,
}

impl RegistryAccess {
    /// Source options for pulling from `host`.
    pub fn options_for(&self, host: &str) -> SourceOptions {
        SourceOptions {
            egress: self.egress.clone(),
            insecure_registries: self.insecure.clone(),
            docker_config: self.docker_config.clone(),
            credentials: self.credentials.get(&host.to_ascii_lowercase()).cloned(),
            limits: self.fetch_limits.clone(),
        }
    }
}

/// Where Gantry keeps its data when nothing says otherwise: `$XDG_DATA_HOME/gantry`, then
/// `~/.local/share/gantry`, then `./gantry-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("gantry");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/gantry");
    }
    PathBuf::from("gantry-data")
}

fn secret(
    key: &str,
    inline: &Option<String>,
    env: &Option<String>,
    field: &str,
) -> Result<String, ConfigError> {
    let value = match (inline, env) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                key,
                format!("set either {field} or {field}_env, not both"),
            ));
        }
        (Some(v), None) => v.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| ConfigError::MissingEnv {
            key: format!("{key}.{field}_env"),
            var: var.clone(),
        })?,
        (None, None) => return Err(invalid(key, format!("{field} or {field}_env is required"))),
    };
    if value.is_empty() {
        return Err(invalid(key, format!("{field} is empty")));
    }
    Ok(value)
}

fn webhook_auth(key: &str, auth: &AuthConfig) -> Result<WebhookAuth, ConfigError> {
    Ok(match auth {
        AuthConfig::None => WebhookAuth::None,
        AuthConfig::Bearer { token, token_env } => WebhookAuth::Bearer {
            token: Secret::new(secret(key, token, token_env, "token")?),
        },
        AuthConfig::Header {
            name,
            value,
            value_env,
        } => {
            check_header_name(key, name)?;
            WebhookAuth::Header {
                name: name.clone(),
                value: Secret::new(secret(key, value, value_env, "value")?),
            }
        }
        AuthConfig::HmacSha256 {
            header,
            secret: s,
            secret_env,
            prefix,
        } => {
            check_header_name(key, header)?;
            WebhookAuth::HmacSha256 {
                header: header.clone(),
                secret: Secret::new(secret(key, s, secret_env, "secret")?),
                prefix: prefix.clone(),
            }
        }
    })
}

fn check_header_name(key: &str, name: &str) -> Result<(), ConfigError> {
    axum::http::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| invalid(key, format!("{name:?} is not a valid header name")))
}

impl Settings {
    /// Validates `config`, reads secrets from the environment, compiles the policies.
    pub fn resolve(config: ServeConfig) -> Result<Settings, ConfigError> {
        let data_dir = config.data_dir.clone().unwrap_or_else(default_data_dir);
        let database = match &config.database_url {
            Some(url) if url.trim().is_empty() => {
                return Err(invalid("database_url", "is empty"));
            }
            Some(url) => Database::Url(url.clone()),
            None => Database::SqliteFile(data_dir.join("gantry.db")),
        };
        let cache_dir = config
            .cache_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("layer-cache"));

        let bundle = match &config.policy {
            Some(dir) => PolicyBundle::from_dir(dir)?,
            None => PolicyBundle::builtin()?,
        };
        let bundle = match &config.policy_data {
            Some(file) => bundle.with_data_file(file)?,
            None => bundle,
        };
        let policy = Arc::new(Policy::compile(&bundle, &PolicyLimits::default())?);

        let w = &config.workers;
        if w.max_attempts == 0 {
            return Err(invalid("workers.max_attempts", "must be at least 1"));
        }
        if w.lease < Duration::from_secs(1) {
            return Err(invalid("workers.lease", "must be at least 1s"));
        }
        if w.poll_interval.is_zero() {
            return Err(invalid("workers.poll_interval", "must be more than 0"));
        }
        let s = &config.scan;
        if s.budget.is_zero() || s.budget > s.max_budget {
            return Err(invalid(
                "scan.budget",
                "must be more than 0 and at most scan.max_budget",
            ));
        }
        let platform: Platform = s
            .platform
            .parse()
            .map_err(|e| invalid("scan.platform", format!("{e}")))?;
        if s.parallel_layers == Some(0) {
            return Err(invalid("scan.parallel_layers", "must be at least 1"));
        }
        let mut layer_limits = gantry_layer::Limits::default();
        let mut fetch_limits = FetchLimits::default();
        let mut args = Vec::new();
        for (name, value) in &s.limits {
            let text = match value {
                LimitValue::Number(n) => format!("{name}={n}"),
                LimitValue::Text(t) => format!("{name}={t}"),
            };
            let arg: LimitArg = text
                .parse()
                .map_err(|e: String| invalid(format!("scan.limits.{name}"), e))?;
            args.push(arg);
        }
        gantry_scan::limits::apply(&args, &mut layer_limits, &mut fetch_limits);

        if let Some(path) = &config.registry.docker_config
            && !path.exists()
        {
            return Err(invalid(
                "registry.docker_config",
                format!("{} does not exist", path.display()),
            ));
        }
        let mut credentials = BTreeMap::new();
        for (i, c) in config.registry.credentials.iter().enumerate() {
            let key = format!("registry.credentials[{i}]");
            let password = secret(&key, &c.password, &c.password_env, "password")?;
            let host = c.host.trim().to_ascii_lowercase();
            if host.is_empty() || host.contains('/') {
                return Err(invalid(
                    key,
                    format!("host {:?} is not a registry host", c.host),
                ));
            }
            credentials.insert(host, (c.username.clone(), password));
        }

        let mut endpoints = BTreeMap::new();
        for source in Source::ALL {
            let ep = config.webhooks.get(source);
            if !ep.enabled {
                continue;
            }
            let key = format!("webhooks.{}", source.as_str());
            let hint = match &ep.registry {
                Some(host) => RegistryHint::host(host)
                    .map_err(|e| invalid(format!("{key}.registry"), e.to_string()))?,
                None => RegistryHint::none(),
            };
            let auth = webhook_auth(&format!("{key}.auth"), &ep.auth)?;
            endpoints.insert(source, Endpoint { auth, hint });
        }

        let notify = match &config.notify {
            None => None,
            Some(n) => {
                let url = reqwest::Url::parse(&n.url)
                    .map_err(|e| invalid("notify.url", format!("{:?}: {e}", n.url)))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(invalid("notify.url", "must be http:// or https://"));
                }
                for d in &n.decisions {
                    if d != "allow" && d != "deny" {
                        return Err(invalid(
                            "notify.decisions",
                            format!("{d:?} is not \"allow\" or \"deny\""),
                        ));
                    }
                }
                for name in n.headers.keys() {
                    check_header_name("notify.headers", name)?;
                }
                if n.max_attempts == 0 {
                    return Err(invalid("notify.max_attempts", "must be at least 1"));
                }
                Some(Notify {
                    url: n.url.clone(),
                    decisions: n.decisions.clone(),
                    headers: n
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    max_attempts: n.max_attempts,
                    backoff: n.backoff,
                    timeout: n.timeout,
                })
            }
        };

        let admission = crate::admission::AdmissionSettings::resolve(&config.admission)?;
        if matches!(config.api.auth, AuthConfig::HmacSha256 { .. }) {
            return Err(invalid(
                "api.auth",
                "API callers authenticate with type \"bearer\" or \"header\" (there is no body to sign on a GET)",
            ));
        }
        let api_auth = webhook_auth("api.auth", &config.api.auth)?;

        Ok(Settings {
            listen: config.listen,
            admin_listen: config.admin_listen,
            data_dir,
            database,
            cache_dir,
            policy,
            workers: config.workers.clone(),
            budget: s.budget,
            max_budget: s.max_budget,
            platform,
            parallel_layers: s.parallel_layers,
            base_lookup: s.base_lookup,
            layer_limits,
            registry: RegistryAccess {
                egress: Egress::allowlist(
                    config
                        .registry
                        .allow
                        .iter()
                        .map(|rule| {
                            rule.parse::<AllowRule>()
                                .map_err(|e| invalid("registry.allow", e.to_string()))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                insecure: config.registry.insecure.clone(),
                docker_config: config.registry.docker_config.clone(),
                credentials,
                fetch_limits,
            },
            endpoints,
            notify,
            admission,
            api_auth,
            retention: Some(config.retention.finished).filter(|d| !d.is_zero()),
        })
    }

    /// Whether `/v1/…` lets anyone in while the listener is reachable from other hosts.
    pub fn open_api(&self) -> bool {
        !self.listen.ip().is_loopback() && matches!(self.api_auth, WebhookAuth::None)
    }

    /// Endpoints that let anyone in while the listener is reachable from other hosts.
    pub fn open_endpoints(&self) -> Vec<Source> {
        if self.listen.ip().is_loopback() {
            return Vec::new();
        }
        self.endpoints
            .iter()
            .filter(|(_, e)| matches!(e.auth, WebhookAuth::None))
            .map(|(s, _)| *s)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(s: &str) -> Result<ServeConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn empty_file_is_the_embedded_defaults() {
        let c = from_toml("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9090");
        let s = Settings::resolve(ServeConfig {
            data_dir: Some("/tmp/x".into()),
            ..c
        })
        .unwrap();
        assert_eq!(s.database, Database::SqliteFile("/tmp/x/gantry.db".into()));
        assert_eq!(s.cache_dir, PathBuf::from("/tmp/x/layer-cache"));
        assert_eq!(s.endpoints.len(), 6);
        assert!(s.open_endpoints().is_empty(), "loopback listener");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(from_toml("lisen = \"0.0.0.0:1\"").is_err());
        assert!(from_toml("[workers]\nlease = \"soon\"").is_err());
        assert!(from_toml("[webhooks.distribution.auth]\ntype = \"magic\"").is_err());
        let c = from_toml("[scan.limits]\nnope = 3").unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("scan.limits.nope"), "{e}");
        let c = from_toml(
            "[webhooks.harbor.auth]\ntype = \"bearer\"\ntoken_env = \"GANTRY_TEST_UNSET_VAR_42\"",
        )
        .unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("GANTRY_TEST_UNSET_VAR_42"), "{e}");
    }

    #[test]
    fn auth_limits_and_disabled_endpoints() {
        let c = from_toml(
            r#"
listen = "0.0.0.0:8080"
[scan.limits]
"layer-entries" = 10
"read-timeout" = "5s"
[webhooks.distribution]
registry = "Registry.Example.com:5000"
[webhooks.distribution.auth]
type = "bearer"
token = "s3cret"
[webhooks.quay]
enabled = false
"#,
        )
        .unwrap();
        let s = Settings::resolve(c).unwrap();
        assert_eq!(s.layer_limits.max_entries, 10);
        assert_eq!(s.registry.fetch_limits.read_timeout, Duration::from_secs(5));
        assert!(!s.endpoints.contains_key(&Source::Quay));
        let d = &s.endpoints[&Source::Distribution];
        assert_eq!(d.hint.get(), Some("registry.example.com:5000"));
        assert!(matches!(d.auth, WebhookAuth::Bearer { .. }));
        let open = s.open_endpoints();
        assert!(open.contains(&Source::Harbor) && !open.contains(&Source::Distribution));
    }

    #[test]
    fn yaml_has_the_same_keys() {
        let c: ServeConfig = serde_norway::from_str(
            "listen: 127.0.0.1:1234\nworkers:\n  concurrency: 3\n  lease: 10s\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.workers.concurrency, 3);
        assert_eq!(c.workers.lease, Duration::from_secs(10));
    }
}

#[cfg(test)]
mod shipped_examples {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
    }

    /// The example files in deploy/config/ use every key; both formats say the same.
    #[test]
    fn example_configs_parse_and_agree() {
        let toml = ServeConfig::load(&repo("deploy/config/gantry.example.toml")).unwrap();
        let yaml = ServeConfig::load(&repo("deploy/config/gantry.example.yaml")).unwrap();
        assert_eq!(format!("{toml:?}"), format!("{yaml:?}"));
        assert!(toml.notify.is_some());
        assert!(!toml.registry.credentials.is_empty());
    }

    /// The config the Kubernetes manifests ship resolves (with its certificate paths).
    #[test]
    fn kubernetes_config_resolves() {
        let c = ServeConfig::load(&repo("deploy/kubernetes/base/gantry.toml")).unwrap();
        assert!(c.admission.tls_cert.is_some());
        let s = Settings::resolve(ServeConfig {
            data_dir: Some(std::env::temp_dir()),
            ..c
        })
        .unwrap();
        assert!(s.admission.is_some());
    }
}
