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
use gantry_policy::{Policy, PolicyLimits};
use gantry_registry::{AllowRule, Egress, FetchLimits, SourceOptions};
use gantry_scan::limits::LimitArg;
use serde::{Deserialize, Deserializer};

use crate::webhook::auth::{Secret, WebhookAuth};
use crate::webhook::{MAX_EVENTS_PER_PAYLOAD, RegistryHint, Source};

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
    /// How callers authenticate, unless a section says otherwise: every webhook sender, the
    /// API and `/metrics` inherit it.
    pub auth: Option<AuthConfig>,
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
    /// Who may read `/metrics`.
    pub admin: AdminConfig,
    /// Connection limits of every listener.
    pub http: HttpConfig,
    /// What one caller may queue.
    pub intake: IntakeConfig,
    /// How long finished bookkeeping and results are kept.
    pub retention: RetentionConfig,
    pub base_freshness: BaseFreshnessConfig,
}

/// `[base_freshness]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaseFreshnessConfig {
    /// Check whether the tag each stored image's base was built from still points at the
    /// base digest the image records (only registries `[registry] allow` permits).
    pub enabled: bool,
    /// How often each base tag is checked.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Most base tags checked per round (a round starts every minute): one manifest request
    /// each, plus the registry's ping and token.
    pub max_checks: u32,
}

impl Default for BaseFreshnessConfig {
    fn default() -> Self {
        BaseFreshnessConfig {
            enabled: true,
            interval: Duration::from_secs(6 * 3600),
            max_checks: 20,
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Done and failed jobs, event ids and sent notifications older than this are deleted
    /// (hourly); `"0s"` keeps them forever.
    #[serde(deserialize_with = "duration")]
    pub finished: Duration,
    /// Images nobody pushed, scanned or judged for this long lose their report, verdicts,
    /// SBOM and tags (hourly; an image asked for again is scanned again); `"0s"` keeps them.
    #[serde(deserialize_with = "duration")]
    pub results: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            finished: Duration::from_secs(30 * 24 * 3600),
            results: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `bearer` or `header` (the same keys as `[auth]`); default: `[auth]`. Callers with it
    /// see every image.
    pub auth: Option<AuthConfig>,
    /// Further bearer tokens that see public images and the private ones of some namespaces.
    pub readers: Vec<ReaderConfig>,
}

/// `[[api.readers]]`: a token for one team.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
    /// Kubernetes namespaces whose privately pulled images this token may read.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Who may read `/metrics` (`/healthz` and `/readyz` reveal nothing and stay open for
    /// probes); default: `[auth]`.
    pub auth: Option<AuthConfig>,
}

/// `[http]`: limits of every listener (API and webhooks, admin, admission).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Longest wait for a request's headers, from the first byte or between keep-alive
    /// requests: a client that opens a connection and trickles (or sends nothing) is cut off.
    #[serde(deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// Longest wait for a request body to arrive once its headers are in.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Open connections per listener; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// After SIGTERM, the longest Gantry takes to stop, whatever is still open: below the
    /// pod's terminationGracePeriodSeconds.
    #[serde(deserialize_with = "duration")]
    pub shutdown_deadline: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_deadline: Duration::from_secs(28),
        }
    }
}

/// `[intake]`: what callers may queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// Requests per second one client address may
    /// make to the webhooks and `POST /v1/scan`, after `burst`.
    pub rate_per_second: u32,
    /// Requests one caller may make at once before the rate applies.
    pub burst: u32,
    /// Queued scans above which webhooks and scan requests are refused with 429.
    pub max_queued: u64,
    /// Images one webhook request may name.
    pub max_images_per_request: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            rate_per_second: 50,
            burst: 200,
            max_queued: 10_000,
            max_images_per_request: 100,
        }
    }
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
            admin: AdminConfig::default(),
            http: HttpConfig::default(),
            intake: IntakeConfig::default(),
            retention: RetentionConfig::default(),
            base_freshness: BaseFreshnessConfig::default(),
            auth: None,
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
    /// Replaced by `platforms`; kept only to say so.
    pub platform: Option<String>,
    /// Platforms judged of a multi-platform image; empty (the default): every platform it
    /// offers. A pod whose nodeSelector names an architecture is judged on that one only.
    pub platforms: Vec<String>,
    /// CA bundle (PEM) that signed the API server's client certificate: reviews come only
    /// from an API server configured to present one (docs/admission.md).
    pub client_ca: Option<PathBuf>,
    /// DNS names (subjectAltName) the client certificate must carry; empty: any the CA signed.
    pub client_names: Vec<String>,
    /// Take reviews from any client, for clusters whose API server cannot present a client
    /// certificate (managed control planes). Reviews are then not trusted with pull secrets:
    /// pods' imagePullSecrets are not read.
    pub allow_unauthenticated_clients: bool,
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
            platform: None,
            platforms: Vec::new(),
            client_ca: None,
            client_names: Vec::new(),
            allow_unauthenticated_clients: false,
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
    /// Longest a verdict is reused before the policy is evaluated again over the stored
    /// facts (rules may read the time); sooner when an exception it relied on expires.
    #[serde(deserialize_with = "duration")]
    pub verdict_ttl: Duration,
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
            verdict_ttl: Duration::from_secs(24 * 3600),
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
    /// Default: `[auth]`. `type = "none"` accepts anonymous callers on purpose.
    pub auth: Option<AuthConfig>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            enabled: true,
            registry: None,
            auth: None,
        }
    }
}

/// How callers authenticate; secrets inline or from an environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    /// Anyone may call (what a loopback listener gets when nothing is configured).
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
    /// A secret in the URL's query string, for senders that set nothing but a URL (Docker
    /// Hub, Quay): `https://gantry.example/webhooks/dockerhub?token=…`.
    Query {
        #[serde(default = "query_param")]
        name: String,
        #[serde(default)]
        value: Option<String>,
        #[serde(default)]
        value_env: Option<String>,
    },
}

fn query_param() -> String {
    "token".to_string()
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

/// A team's read token of the API.
#[derive(Debug, Clone)]
pub struct Reader {
    pub token: Secret,
    /// Namespaces whose privately pulled images it sees (besides public ones).
    pub namespaces: Vec<String>,
}

/// Who may call `/v1/…`.
#[derive(Debug, Clone)]
pub struct ApiAuth {
    /// Sees every image; `None` on a loopback listener without configured auth.
    pub operator: WebhookAuth,
    pub readers: Vec<Reader>,
}

/// Connection limits of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_deadline: Duration,
}

/// What callers may queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    pub rate_per_second: std::num::NonZeroU32,
    pub burst: std::num::NonZeroU32,
    pub max_queued: u64,
    pub max_images_per_request: usize,
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
    pub verdict_ttl: Duration,
    pub layer_limits: gantry_layer::Limits,
    pub registry: RegistryAccess,
    /// Enabled endpoints only.
    pub endpoints: BTreeMap<Source, Endpoint>,
    pub notify: Option<Notify>,
    /// The admission webhook, when a certificate is configured.
    pub admission: Option<crate::admission::AdmissionSettings>,
    /// Authentication of `/v1/…` callers.
    pub api_auth: ApiAuth,
    /// Authentication of `/metrics` readers.
    pub admin_auth: WebhookAuth,
    pub http: HttpLimits,
    pub intake: IntakeLimits,
    /// Age after which finished jobs, events and notifications are pruned (`None`: never).
    pub retention: Option<Duration>,
    /// Age after which images not seen are pruned (`None`: never).
    pub results_retention: Option<Duration>,
    /// Base-tag checks, when enabled.
    pub base_freshness: Option<BaseFreshness>,
}

/// How base tags are checked (`[base_freshness]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseFreshness {
    pub interval: Duration,
    pub max_checks: u32,
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
        AuthConfig::Query {
            name,
            value,
            value_env,
        } => {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(invalid(
                    key,
                    format!("{name:?} is not a query parameter name ([A-Za-z0-9_-]+)"),
                ));
            }
            WebhookAuth::Query {
                name: name.clone(),
                value: Secret::new(secret(key, value, value_env, "value")?),
            }
        }
    })
}

fn check_header_name(key: &str, name: &str) -> Result<(), ConfigError> {
    axum::http::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| invalid(key, format!("{name:?} is not a valid header name")))
}

/// The auth a section uses: its own, else `[auth]`, else anonymous — and whether anonymous
/// was asked for in so many words (`type = "none"` in the section itself).
fn effective<'a>(
    own: Option<&'a AuthConfig>,
    default: Option<&'a AuthConfig>,
) -> (&'a AuthConfig, bool) {
    match (own, default) {
        (Some(a), _) => (a, matches!(a, AuthConfig::None)),
        // An inherited "none" is no opt-out: one top-level line must not open every sender
        // and /metrics at once; each section says so itself.
        (None, Some(d)) => (d, false),
        (None, None) => (&AuthConfig::None, false),
    }
}

/// What to say when anonymous callers would reach `what` on a listener others can reach.
fn open_listener(key: &str, what: &str, listen: SocketAddr, opt_out: Option<&str>) -> ConfigError {
    let mut message = format!(
        "{what} would accept anonymous callers on {listen}, which is not a loopback address. Set \
         [auth] (every endpoint inherits it, e.g. type = \"bearer\" with token_env = \
         \"GANTRY_AUTH_TOKEN\"), or {key}, or listen on 127.0.0.1 behind a proxy that \
         authenticates"
    );
    if let Some(o) = opt_out {
        message.push_str(&format!(
            ", or set {o} to accept anonymous callers on purpose"
        ));
    }
    invalid(key, message)
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
        let policy = resolve_policy(&config)?;
        resolve_workers(&config.workers)?;
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
        if s.verdict_ttl < Duration::from_secs(1) {
            return Err(invalid("scan.verdict_ttl", "must be at least 1s"));
        }
        let (layer_limits, fetch_limits) = resolve_limits(&s.limits)?;
        let registry = resolve_registry(&config.registry, fetch_limits)?;
        let endpoints = resolve_endpoints(&config)?;
        let notify = config.notify.as_ref().map(resolve_notify).transpose()?;
        let admission = crate::admission::AdmissionSettings::resolve(&config.admission)?;
        let api_auth = resolve_api_auth(&config)?;
        let admin_auth = resolve_admin_auth(&config)?;
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
            verdict_ttl: s.verdict_ttl,
            layer_limits,
            registry,
            endpoints,
            notify,
            admission,
            api_auth,
            admin_auth,
            http: resolve_http(&config.http)?,
            intake: resolve_intake(&config.intake)?,
            retention: Some(config.retention.finished).filter(|d| !d.is_zero()),
            results_retention: Some(config.retention.results).filter(|d| !d.is_zero()),
            base_freshness: resolve_base_freshness(&config.base_freshness)?,
        })
    }

    /// Webhook endpoints that accept anonymous callers on a listener others can reach (only
    /// those configured so on purpose; any other such configuration does not resolve).
    pub fn open_endpoints(&self) -> Vec<Source> {
        if self.listen.ip().is_loopback() {
            return Vec::new();
        }
        self.endpoints
            .iter()
            .filter(|(_, e)| e.auth.is_anonymous())
            .map(|(s, _)| *s)
            .collect()
    }
}

fn resolve_policy(config: &ServeConfig) -> Result<Arc<Policy>, ConfigError> {
    Ok(Arc::new(Policy::load(
        config.policy.as_deref(),
        config.policy_data.as_deref(),
        &PolicyLimits::default(),
    )?))
}

fn resolve_workers(w: &WorkersConfig) -> Result<(), ConfigError> {
    if w.max_attempts == 0 {
        return Err(invalid("workers.max_attempts", "must be at least 1"));
    }
    if w.lease < Duration::from_secs(1) {
        return Err(invalid("workers.lease", "must be at least 1s"));
    }
    if w.poll_interval.is_zero() {
        return Err(invalid("workers.poll_interval", "must be more than 0"));
    }
    Ok(())
}

fn resolve_limits(
    limits: &BTreeMap<String, LimitValue>,
) -> Result<(gantry_layer::Limits, FetchLimits), ConfigError> {
    let mut layer_limits = gantry_layer::Limits::default();
    let mut fetch_limits = FetchLimits::default();
    let mut args = Vec::new();
    for (name, value) in limits {
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
    Ok((layer_limits, fetch_limits))
}

fn resolve_registry(
    r: &RegistryConfig,
    fetch_limits: FetchLimits,
) -> Result<RegistryAccess, ConfigError> {
    if let Some(path) = &r.docker_config
        && !path.exists()
    {
        return Err(invalid(
            "registry.docker_config",
            format!("{} does not exist", path.display()),
        ));
    }
    let mut credentials = BTreeMap::new();
    for (i, c) in r.credentials.iter().enumerate() {
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
    let rules = r
        .allow
        .iter()
        .map(|rule| {
            rule.parse::<AllowRule>()
                .map_err(|e| invalid("registry.allow", e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(RegistryAccess {
        egress: Egress::allowlist(rules),
        insecure: r.insecure.clone(),
        docker_config: r.docker_config.clone(),
        credentials,
        fetch_limits,
    })
}

fn resolve_endpoints(config: &ServeConfig) -> Result<BTreeMap<Source, Endpoint>, ConfigError> {
    let loopback = config.listen.ip().is_loopback();
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
        let (auth, on_purpose) = effective(ep.auth.as_ref(), config.auth.as_ref());
        if matches!(auth, AuthConfig::None) && !loopback && !on_purpose {
            return Err(open_listener(
                &format!("{key}.auth"),
                &format!("the /webhooks/{} endpoint", source.as_str()),
                config.listen,
                Some(&format!(
                    "{key}.auth.type = \"none\" (or {key}.enabled = false to turn it off)"
                )),
            ));
        }
        let auth = webhook_auth(&format!("{key}.auth"), auth)?;
        endpoints.insert(source, Endpoint { auth, hint });
    }
    Ok(endpoints)
}

fn resolve_notify(n: &NotifyConfig) -> Result<Notify, ConfigError> {
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
    Ok(Notify {
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

/// A GET has no body to sign, and a URL secret would end up in access logs: the API and
/// `/metrics` take a bearer token or a header.
fn header_auth(key: &str, auth: &AuthConfig) -> Result<WebhookAuth, ConfigError> {
    match auth {
        AuthConfig::HmacSha256 { .. } | AuthConfig::Query { .. } => Err(invalid(
            key,
            "callers authenticate with type \"bearer\" or \"header\" here (a GET has no body to \
             sign, and a secret in the URL ends up in logs); give this section an auth of its \
             own if [auth] is of another type",
        )),
        other => webhook_auth(key, other),
    }
}

fn resolve_api_auth(config: &ServeConfig) -> Result<ApiAuth, ConfigError> {
    let (auth, _) = effective(config.api.auth.as_ref(), config.auth.as_ref());
    // No opt-out: the API reveals image data and starts scans.
    if matches!(auth, AuthConfig::None) && !config.listen.ip().is_loopback() {
        return Err(open_listener(
            "api.auth",
            "the API (/v1/…)",
            config.listen,
            None,
        ));
    }
    let key = if config.api.auth.is_some() {
        "api.auth"
    } else {
        "auth"
    };
    let operator = header_auth(key, auth)?;
    let mut readers = Vec::new();
    for (i, r) in config.api.readers.iter().enumerate() {
        let key = format!("api.readers[{i}]");
        let token = Secret::new(secret(&key, &r.token, &r.token_env, "token")?);
        if r.namespaces.is_empty() {
            return Err(invalid(
                format!("{key}.namespaces"),
                "name the namespaces whose images this token reads",
            ));
        }
        readers.push(Reader {
            token,
            namespaces: r.namespaces.clone(),
        });
    }
    if operator.is_anonymous() && !readers.is_empty() {
        return Err(invalid(
            "api.readers",
            "reader tokens need [api.auth] or [auth]: otherwise every caller sees every image",
        ));
    }
    Ok(ApiAuth { operator, readers })
}

fn resolve_admin_auth(config: &ServeConfig) -> Result<WebhookAuth, ConfigError> {
    let (auth, on_purpose) = effective(config.admin.auth.as_ref(), config.auth.as_ref());
    if matches!(auth, AuthConfig::None) && !config.admin_listen.ip().is_loopback() && !on_purpose {
        return Err(open_listener(
            "admin.auth",
            "/metrics",
            config.admin_listen,
            Some("admin.auth.type = \"none\""),
        ));
    }
    let key = if config.admin.auth.is_some() {
        "admin.auth"
    } else {
        "auth"
    };
    header_auth(key, auth)
}

fn resolve_base_freshness(b: &BaseFreshnessConfig) -> Result<Option<BaseFreshness>, ConfigError> {
    if !b.enabled {
        return Ok(None);
    }
    if b.interval < Duration::from_secs(1) {
        return Err(invalid("base_freshness.interval", "must be at least 1s"));
    }
    if b.max_checks == 0 {
        return Err(invalid(
            "base_freshness.max_checks",
            "must be at least 1 (set base_freshness.enabled = false to turn checks off)",
        ));
    }
    Ok(Some(BaseFreshness {
        interval: b.interval,
        max_checks: b.max_checks,
    }))
}

fn resolve_http(h: &HttpConfig) -> Result<HttpLimits, ConfigError> {
    for (key, d) in [
        ("http.header_timeout", h.header_timeout),
        ("http.body_timeout", h.body_timeout),
        ("http.shutdown_deadline", h.shutdown_deadline),
    ] {
        if d < Duration::from_millis(100) {
            return Err(invalid(key, "must be at least 100ms"));
        }
    }
    if h.max_connections == 0 {
        return Err(invalid("http.max_connections", "must be at least 1"));
    }
    Ok(HttpLimits {
        header_timeout: h.header_timeout,
        body_timeout: h.body_timeout,
        max_connections: h.max_connections,
        shutdown_deadline: h.shutdown_deadline,
    })
}

fn resolve_intake(i: &IntakeConfig) -> Result<IntakeLimits, ConfigError> {
    let nonzero = |key: &str, v: u32| {
        std::num::NonZeroU32::new(v).ok_or_else(|| invalid(key, "must be at least 1"))
    };
    if i.max_queued == 0 {
        return Err(invalid("intake.max_queued", "must be at least 1"));
    }
    if i.max_images_per_request == 0 || i.max_images_per_request > MAX_EVENTS_PER_PAYLOAD {
        return Err(invalid(
            "intake.max_images_per_request",
            format!("must be between 1 and {MAX_EVENTS_PER_PAYLOAD}"),
        ));
    }
    Ok(IntakeLimits {
        rate_per_second: nonzero("intake.rate_per_second", i.rate_per_second)?,
        burst: nonzero("intake.burst", i.burst)?,
        max_queued: i.max_queued,
        max_images_per_request: i.max_images_per_request,
    })
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
        for (toml, key) in [
            (
                "[base_freshness]\ninterval = \"0s\"",
                "base_freshness.interval",
            ),
            (
                "[base_freshness]\nmax_checks = 0",
                "base_freshness.max_checks",
            ),
        ] {
            let e = Settings::resolve(from_toml(toml).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
        let off = from_toml("[base_freshness]\nenabled = false\nmax_checks = 0").unwrap();
        assert_eq!(Settings::resolve(off).unwrap().base_freshness, None);
        let on = Settings::resolve(ServeConfig::default()).unwrap();
        assert_eq!(
            on.base_freshness,
            Some(BaseFreshness {
                interval: Duration::from_secs(6 * 3600),
                max_checks: 20
            })
        );
    }

    #[test]
    fn auth_limits_and_disabled_endpoints() {
        let c = from_toml(
            r#"
listen = "0.0.0.0:8080"
[auth]
type = "bearer"
token = "default-token"
[scan.limits]
"layer-entries" = 10
"read-timeout" = "5s"
[webhooks.distribution]
registry = "Registry.Example.com:5000"
[webhooks.distribution.auth]
type = "header"
name = "X-Token"
value = "s3cret"
[webhooks.dockerhub.auth]
type = "query"
value = "hub-secret"
[webhooks.gitlab.auth]
type = "none"
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
        assert!(matches!(d.auth, WebhookAuth::Header { .. }));
        // Every sender without auth of its own inherits [auth]; so do the API and /metrics.
        for source in [Source::Harbor, Source::Generic] {
            assert!(matches!(
                s.endpoints[&source].auth,
                WebhookAuth::Bearer { .. }
            ));
        }
        assert!(matches!(
            s.endpoints[&Source::DockerHub].auth,
            WebhookAuth::Query { .. }
        ));
        assert!(matches!(s.api_auth.operator, WebhookAuth::Bearer { .. }));
        // Only the sender that opted out is open.
        assert_eq!(s.open_endpoints(), [Source::Gitlab]);
    }

    /// Off loopback nothing is anonymous unless a section says so itself; the API never is.
    #[test]
    fn anonymous_callers_off_loopback_refuse_to_start() {
        let e = Settings::resolve(from_toml("listen = \"0.0.0.0:8080\"").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("webhooks.distribution.auth") && e.contains("[auth]"),
            "{e}"
        );
        // Only the API left open: still refused, with no opt-out offered.
        let c = from_toml(
            r#"
listen = "0.0.0.0:8080"
[webhooks.distribution]
enabled = false
[webhooks.harbor]
enabled = false
[webhooks.dockerhub]
enabled = false
[webhooks.gitlab]
enabled = false
[webhooks.quay]
enabled = false
[webhooks.generic]
enabled = false
"#,
        )
        .unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("api.auth") && !e.contains("on purpose"), "{e}");
        // An explicit [auth] type "none" is not an opt-out for the API either (the senders,
        // each opted out on its own, are let through to show it).
        let mut senders = String::new();
        for s in [
            "distribution",
            "harbor",
            "dockerhub",
            "gitlab",
            "quay",
            "generic",
        ] {
            senders.push_str(&format!("[webhooks.{s}.auth]\ntype = \"none\"\n"));
        }
        let c = from_toml(&format!(
            "listen = \"0.0.0.0:8080\"\n[auth]\ntype = \"none\"\n{senders}"
        ))
        .unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("api.auth"), "{e}");
        // Nor for a sender or /metrics: only the section itself opts out.
        let c = from_toml(
            "listen = \"0.0.0.0:8080\"\nadmin_listen = \"0.0.0.0:9090\"\n[auth]\ntype = \"none\"\n\
             [api.auth]\ntype = \"bearer\"\ntoken = \"t\"\n[admin.auth]\ntype = \"bearer\"\ntoken = \"t\"",
        )
        .unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("webhooks.") && e.contains("anonymous"), "{e}");
        let c = from_toml("admin_listen = \"0.0.0.0:9090\"\n[auth]\ntype = \"none\"").unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("admin.auth"), "{e}");
        // /metrics on a public admin listener needs auth too, or an explicit opt-out.
        let c = from_toml("admin_listen = \"0.0.0.0:9090\"").unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("admin.auth"), "{e}");
        let c =
            from_toml("admin_listen = \"0.0.0.0:9090\"\n[admin.auth]\ntype = \"none\"").unwrap();
        assert!(Settings::resolve(c).unwrap().admin_auth.is_anonymous());
        // Loopback: anonymous is fine.
        let s = Settings::resolve(from_toml("").unwrap()).unwrap();
        assert!(s.api_auth.operator.is_anonymous() && s.admin_auth.is_anonymous());
    }

    #[test]
    fn api_takes_bearer_or_header_and_reader_tokens() {
        let c = from_toml("[auth]\ntype = \"query\"\nvalue = \"x\"").unwrap();
        let e = Settings::resolve(c).unwrap_err().to_string();
        assert!(e.contains("bearer"), "{e}");
        let c = from_toml(
            "[api.auth]\ntype = \"bearer\"\ntoken = \"op\"\n[[api.readers]]\ntoken = \"a\"\nnamespaces = [\"team-a\"]",
        )
        .unwrap();
        let s = Settings::resolve(c).unwrap();
        assert_eq!(s.api_auth.readers[0].namespaces, ["team-a"]);
        let c = from_toml("[[api.readers]]\ntoken = \"a\"\nnamespaces = [\"team-a\"]").unwrap();
        assert!(
            Settings::resolve(c).is_err(),
            "readers without an operator token"
        );
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

    /// The config the Kubernetes manifests ship resolves (with its certificate paths), once
    /// the token it takes from the environment is there.
    #[test]
    fn kubernetes_config_resolves() {
        let c = ServeConfig::load(&repo("deploy/kubernetes/base/gantry.toml")).unwrap();
        assert!(c.admission.tls_cert.is_some());
        assert!(matches!(
            &c.auth,
            Some(AuthConfig::Bearer { token_env: Some(var), token: None }) if var == "GANTRY_AUTH_TOKEN"
        ));
        let s = Settings::resolve(ServeConfig {
            data_dir: Some(std::env::temp_dir()),
            auth: Some(AuthConfig::Bearer {
                token: Some("from-the-secret".to_string()),
                token_env: None,
            }),
            ..c
        })
        .unwrap();
        assert!(s.admission.is_some());
        assert!(!s.api_auth.operator.is_anonymous() && !s.admin_auth.is_anonymous());
    }
}
