//! Registry credentials from a Pod's `imagePullSecrets`, read from the Kubernetes API with the
//! service account Gantry runs as (RBAC: `get` on `secrets`, deploy/kubernetes/base/rbac.yaml).
//!
//! The client is written here rather than taken from `kube`: Gantry needs one GET of one
//! Secret, and the `kube` client would bring a second HTTP stack and its config loading for it.
//! The request is the in-cluster one every client makes: `https://$KUBERNETES_SERVICE_HOST:
//! $KUBERNETES_SERVICE_PORT`, the service account token (re-read each time: it is rotated) and
//! the cluster CA mounted beside it.
//!
//! Credentials learnt from a Secret are kept in memory per registry for a few minutes, so the
//! scan that the review starts (a job, maybe run a moment later) can pull with them. They are
//! never written to the store.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How long a Secret read from the API is reused.
const SECRET_TTL: Duration = Duration::from_secs(60);
/// How long credentials learnt from a Secret stay usable for pulls.
const CREDENTIAL_TTL: Duration = Duration::from_secs(600);
/// Largest Secret read (Kubernetes caps Secrets at 1 MiB of data).
const MAX_SECRET_BYTES: u64 = 2 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_ENTRIES: usize = 10_000;

/// The Kubernetes API, in-cluster.
#[derive(Debug)]
pub struct KubeApi {
    host: String,
    port: u16,
    token_file: PathBuf,
    tls: Arc<rustls::ClientConfig>,
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
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca_file.display()))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Some(KubeApi {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            token_file,
            tls: Arc::new(tls),
        }))
    }

    /// `GET /api/v1/namespaces/{namespace}/secrets/{name}`; `None` when it does not exist or
    /// Gantry may not read it.
    fn secret(&self, namespace: &str, name: &str) -> Result<Option<Value>, String> {
        let token = std::fs::read_to_string(&self.token_file)
            .map_err(|e| format!("reading {}: {e}", self.token_file.display()))?;
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} has no address", self.host))?;
        let server_name =
            ServerName::try_from(self.host.clone()).map_err(|e| format!("{}: {e}", self.host))?;
        let conn = rustls::ClientConnection::new(Arc::clone(&self.tls), server_name)
            .map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| tcp.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let request = format!(
            "GET /api/v1/namespaces/{namespace}/secrets/{name} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\naccept: application/json\r\nuser-agent: gantry\r\nconnection: close\r\n\r\n",
            self.host,
            token.trim()
        );
        tls.write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        match (&mut tls).take(MAX_SECRET_BYTES).read_to_end(&mut raw) {
            Ok(_) => {}
            // Servers may close without close_notify after `connection: close`.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(format!("reading the API answer: {e}")),
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("the API answer has no header end")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let body = &raw[split + 4..];
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("the API answer has no status")?;
        match status {
            200 => {}
            403 | 404 => return Ok(None),
            other => return Err(format!("the API answered {other}")),
        }
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(body).ok_or("malformed chunked body")?
        } else {
            body.to_vec()
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| format!("the Secret is not JSON: {e}"))
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
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

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Secrets read, by (namespace, name), with when; `None` when absent or unreadable.
type SecretCache = HashMap<(String, String), (Instant, Option<Value>)>;
/// User and password by registry, with when they were learnt.
type CredentialCache = HashMap<String, (Instant, (String, String))>;

/// Pull credentials learnt from the Secrets pods name.
#[derive(Debug, Default)]
pub struct PullSecrets {
    api: Option<Arc<KubeApi>>,
    secrets: Mutex<SecretCache>,
    credentials: Mutex<CredentialCache>,
}

impl PullSecrets {
    /// Over `api` (`None`: outside a cluster; pods' pull secrets are then not read).
    pub fn new(api: Option<KubeApi>) -> PullSecrets {
        PullSecrets {
            api: api.map(Arc::new),
            ..PullSecrets::default()
        }
    }

    /// Reads the Secrets `names` of `namespace` (cached briefly) and remembers the credentials
    /// they hold for each of `registries`. Failures are logged: the pull is then anonymous
    /// (or uses the configured credentials), as the kubelet would try.
    pub async fn learn(&self, namespace: &str, names: &[String], registries: &[String]) {
        let Some(api) = &self.api else { return };
        if !valid_name(namespace) {
            return;
        }
        for name in names.iter().filter(|n| valid_name(n)) {
            let key = (namespace.to_string(), name.clone());
            let cached = self.secrets.lock().ok().and_then(|m| {
                m.get(&key)
                    .filter(|(at, _)| at.elapsed() < SECRET_TTL)
                    .map(|(_, v)| v.clone())
            });
            let secret = match cached {
                Some(s) => s,
                None => {
                    let (api, ns, n) = (Arc::clone(api), namespace.to_string(), name.clone());
                    let fetched = tokio::task::spawn_blocking(move || api.secret(&ns, &n))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r);
                    let secret = match fetched {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(namespace, secret = %name, error = %e, "cannot read an imagePullSecret");
                            None
                        }
                    };
                    if let Ok(mut m) = self.secrets.lock() {
                        if m.len() >= MAX_ENTRIES {
                            m.clear();
                        }
                        m.insert(key, (Instant::now(), secret.clone()));
                    }
                    secret
                }
            };
            let Some(config) = secret.as_ref().and_then(docker_config) else {
                continue;
            };
            for registry in registries {
                let origin = format!("secret {namespace}/{name}");
                match gantry_registry::docker_config_credentials(&config, registry, &origin) {
                    Ok(Some(creds)) => {
                        if let Ok(mut m) = self.credentials.lock() {
                            if m.len() >= MAX_ENTRIES {
                                m.clear();
                            }
                            m.insert(registry.to_ascii_lowercase(), (Instant::now(), creds));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "unusable imagePullSecret"),
                }
            }
        }
    }

    /// Credentials for `registry` learnt in the last minutes, if any.
    pub fn credentials(&self, registry: &str) -> Option<(String, String)> {
        let m = self.credentials.lock().ok()?;
        m.get(&registry.to_ascii_lowercase())
            .filter(|(at, _)| at.elapsed() < CREDENTIAL_TTL)
            .map(|(_, c)| c.clone())
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
    fn chunked_bodies_and_names() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"zz\r\n").is_none());
        assert!(valid_name("regcred") && !valid_name("../x") && !valid_name("A"));
    }
}
