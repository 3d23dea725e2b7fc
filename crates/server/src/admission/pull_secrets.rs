//! Registry credentials from a Pod's `imagePullSecrets`, read from the Kubernetes API with the
//! service account Gantry runs as.
//!
//! Credentials belong to the namespace whose Secret holds them: they are looked up by
//! (namespace, secret names, registry) each time, used only to pull for that namespace's pods
//! (a job records the namespace and the secret names, never the credentials), and what such a
//! pull finds is visible to that namespace only (`gantry_store::Scope::Namespace`). Secrets
//! are kept in memory for a minute, so the scan a review starts — maybe on another replica,
//! which reads them itself — and the next reviews do not each cost an API call.
//!
//! The API is reached as every in-cluster client does: `https://$KUBERNETES_SERVICE_HOST:
//! $KUBERNETES_SERVICE_PORT`, the service account token (re-read for each request: the kubelet
//! rotates it) and the cluster CA mounted beside it, through the `reqwest` client the registry
//! code already uses (the `kube` client would bring a second HTTP stack and config loading for
//! one GET).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How long a Secret read from the API is reused.
const SECRET_TTL: Duration = Duration::from_secs(60);
/// Largest Secret read (Kubernetes caps Secrets at 1 MiB of data; base64 and JSON add a third).
const MAX_SECRET_BYTES: usize = 2 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Whole request, body included: the API answers a GET of a Secret in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 10_000;

/// Why the Kubernetes API did not give a Secret.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("reading the service account token {path}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("request to the Kubernetes API failed")]
    Http(#[source] reqwest::Error),
    #[error("the Kubernetes API answered {status}")]
    Status { status: u16 },
    #[error("the Secret is larger than {MAX_SECRET_BYTES} bytes")]
    TooLarge,
    #[error("the Secret is not JSON")]
    Json(#[source] serde_json::Error),
}

/// Why no credentials came from a namespace's pull secrets.
#[derive(Debug, thiserror::Error)]
pub enum PullSecretError {
    /// Gantry does not run in a cluster (or was not given the API's address).
    #[error(
        "the pull secrets of namespace {namespace} cannot be read: Gantry is not in a Kubernetes cluster"
    )]
    NoCluster { namespace: String },
    #[error("reading Secret {namespace}/{name}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: KubeError,
    },
    /// Every named Secret was read (or is absent, or Gantry may not read it) and none has
    /// credentials for the registry.
    #[error(
        "none of the pull secrets {names:?} of namespace {namespace} holds credentials for {registry} (or Gantry may not read them: see docs/admission.md)"
    )]
    NoCredentials {
        namespace: String,
        names: Vec<String>,
        registry: String,
    },
}

impl PullSecretError {
    /// An API failure may pass; a Secret that holds nothing for the registry will not.
    pub fn is_transient(&self) -> bool {
        matches!(self, PullSecretError::Api { .. })
    }
}

/// The Kubernetes API, in-cluster.
#[derive(Debug)]
pub struct KubeApi {
    base: String,
    token_file: PathBuf,
    client: reqwest::Client,
}

impl KubeApi {
    /// The API of the cluster Gantry runs in, or `None` outside a cluster. The token and CA
    /// files can be moved with `GANTRY_KUBE_TOKEN_FILE` and `GANTRY_KUBE_CA_FILE`.
    pub fn from_env() -> Result<Option<KubeApi>, String> {
        let (Ok(host), Ok(port)) = (
            std::env::var("KUBERNETES_SERVICE_HOST"),
            std::env::var("KUBERNETES_SERVICE_PORT"),
        ) else {
            return Ok(None);
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("KUBERNETES_SERVICE_PORT={port:?} is not a port"))?;
        let dir = PathBuf::from(SERVICE_ACCOUNT_DIR);
        let token_file = std::env::var_os("GANTRY_KUBE_TOKEN_FILE")
            .map_or_else(|| dir.join("token"), PathBuf::from);
        let ca_file = std::env::var_os("GANTRY_KUBE_CA_FILE")
            .map_or_else(|| dir.join("ca.crt"), PathBuf::from);
        let ca = std::fs::read(&ca_file)
            .map_err(|e| format!("reading the cluster CA {}: {e}", ca_file.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&ca)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate in the file", ca_file.display()));
        }
        let client = reqwest::Client::builder()
            .tls_certs_only(certs)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A Secret GET is never redirected; a redirect would carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the Kubernetes API client: {e}"))?;
        let host = host.trim_matches(['[', ']']);
        let base = if host.contains(':') {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        };
        Ok(Some(KubeApi {
            base,
            token_file,
            client,
        }))
    }

    /// `GET /api/v1/namespaces/{namespace}/secrets/{name}`; `None` when it does not exist or
    /// Gantry may not read it (403: the namespace did not grant it).
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Value>, KubeError> {
        let token =
            std::fs::read_to_string(&self.token_file).map_err(|source| KubeError::Token {
                path: self.token_file.clone(),
                source,
            })?;
        let url = format!("{}/api/v1/namespaces/{namespace}/secrets/{name}", self.base);
        let mut response = self
            .client
            .get(url)
            .bearer_auth(token.trim())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(KubeError::Http)?;
        match response.status().as_u16() {
            200 => {}
            403 | 404 => return Ok(None),
            status => return Err(KubeError::Status { status }),
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(KubeError::Http)? {
            if body.len() + chunk.len() > MAX_SECRET_BYTES {
                return Err(KubeError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(KubeError::Json)
    }
}

/// The Docker config document a pull Secret holds, whichever of the two types it is.
fn docker_config(secret: &Value) -> Option<Vec<u8>> {
    let data = secret.get("data")?;
    let decode = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    };
    match secret.get("type").and_then(Value::as_str) {
        Some("kubernetes.io/dockerconfigjson") => decode(".dockerconfigjson"),
        // The legacy format is the `auths` map alone.
        Some("kubernetes.io/dockercfg") => {
            let auths: Value = serde_json::from_slice(&decode(".dockercfg")?).ok()?;
            serde_json::to_vec(&serde_json::json!({ "auths": auths })).ok()
        }
        _ => None,
    }
}

/// A Kubernetes object name (DNS subdomain): anything else is not asked for.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with(['-', '.'])
}

/// Secrets read, by (namespace, name), with when; `None` when absent or unreadable.
type SecretCache = HashMap<(String, String), (Instant, Option<Value>)>;

/// Reads pods' pull secrets.
#[derive(Debug, Default)]
pub struct PullSecrets {
    api: Option<KubeApi>,
    secrets: Mutex<SecretCache>,
}

impl PullSecrets {
    /// Over `api` (`None`: outside a cluster; pods' pull secrets are then not read).
    pub fn new(api: Option<KubeApi>) -> PullSecrets {
        PullSecrets {
            api,
            secrets: Mutex::default(),
        }
    }

    /// Whether Secrets can be read at all.
    pub fn in_cluster(&self) -> bool {
        self.api.is_some()
    }

    async fn read(
        &self,
        api: &KubeApi,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, KubeError> {
        let key = (namespace.to_string(), name.to_string());
        let cached = self.secrets.lock().ok().and_then(|m| {
            m.get(&key)
                .filter(|(at, _)| at.elapsed() < SECRET_TTL)
                .map(|(_, v)| v.clone())
        });
        if let Some(secret) = cached {
            return Ok(secret);
        }
        let secret = api.secret(namespace, name).await?;
        if let Ok(mut m) = self.secrets.lock() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(key, (Instant::now(), secret.clone()));
        }
        Ok(secret)
    }

    /// The credentials for `registry` in the first of `names` (Secrets of `namespace`) that
    /// has some — as the kubelet tries a pod's pull secrets in order; `None` when none has.
    pub async fn lookup(
        &self,
        namespace: &str,
        names: &[String],
        registry: &str,
    ) -> Result<Option<(String, String)>, PullSecretError> {
        let Some(api) = &self.api else {
            return Err(PullSecretError::NoCluster {
                namespace: namespace.to_string(),
            });
        };
        if !valid_name(namespace) {
            return Ok(None);
        }
        let mut failure = None;
        for name in names.iter().filter(|n| valid_name(n)) {
            let secret = match self.read(api, namespace, name).await {
                Ok(s) => s,
                Err(source) => {
                    failure = Some(PullSecretError::Api {
                        namespace: namespace.to_string(),
                        name: name.clone(),
                        source,
                    });
                    continue;
                }
            };
            let Some(config) = secret.as_ref().and_then(docker_config) else {
                continue;
            };
            let origin = format!("secret {namespace}/{name}");
            match gantry_registry::docker_config_credentials(&config, registry, &origin) {
                Ok(Some(creds)) => return Ok(Some(creds)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "unusable imagePullSecret"),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// [`PullSecrets::lookup`], where finding none is an error (a job that was queued to pull
    /// with them).
    pub async fn credentials(
        &self,
        namespace: &str,
        names: &[String],
        registry: &str,
    ) -> Result<(String, String), PullSecretError> {
        self.lookup(namespace, names, registry)
            .await?
            .ok_or_else(|| PullSecretError::NoCredentials {
                namespace: namespace.to_string(),
                names: names.to_vec(),
                registry: registry.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_secret_types_give_a_docker_config() {
        let config = json!({"auths": {"registry.example.com": {"auth": "dTpw"}}}).to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&config);
        let s =
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64}});
        let bytes = docker_config(&s).unwrap();
        let creds = gantry_registry::docker_config_credentials(&bytes, "registry.example.com", "t")
            .unwrap();
        assert_eq!(creds, Some(("u".to_string(), "p".to_string())));
        let legacy = base64::engine::general_purpose::STANDARD
            .encode(json!({"https://registry.example.com": {"auth": "dTpw"}}).to_string());
        let s = json!({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": legacy}});
        let bytes = docker_config(&s).unwrap();
        let creds = gantry_registry::docker_config_credentials(&bytes, "registry.example.com", "t")
            .unwrap();
        assert_eq!(creds, Some(("u".to_string(), "p".to_string())));
        assert!(docker_config(&json!({"type": "Opaque", "data": {}})).is_none());
    }

    #[test]
    fn only_kubernetes_names_are_asked_for() {
        assert!(valid_name("regcred") && valid_name("team-a.creds"));
        for bad in ["../x", "A", "", "-x", "a/b", "a?b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
