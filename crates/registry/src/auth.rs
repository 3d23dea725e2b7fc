//! Registry credentials: explicit, from Docker's `config.json`, or none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::egress::DOCKER_HUB_HOSTS;
use crate::error::RegistryError;

/// Largest `config.json` read. Real ones hold a handful of registries (well under 64 KiB);
/// 1 MiB only stops a wrong path (a huge file) from being read whole.
const MAX_DOCKER_CONFIG_BYTES: u64 = 1 << 20;
/// The key Docker writes for Docker Hub (`docker login` without a server).
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials to present to a registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// No credentials (anonymous token or no auth).
    Anonymous,
    /// User name and password (or access token used as password).
    Basic(String, String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic(user, _) => write!(f, "Basic({user:?}, <redacted>)"),
        }
    }
}

/// `config.json` as Docker writes it (only what Gantry reads).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Where Docker looks for `config.json`: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Credentials for `registry` (`host[:port]` as in the image reference): explicit ones win,
/// then the Docker config (`explicit_config` or the default location), then anonymous.
pub(crate) fn credentials_for(
    registry: &str,
    explicit: Option<&(String, String)>,
    explicit_config: Option<&Path>,
) -> Result<Credentials, RegistryError> {
    if let Some((user, pass)) = explicit {
        return Ok(Credentials::Basic(user.clone(), pass.clone()));
    }
    let (path, required) = match explicit_config {
        Some(p) if p.is_dir() => (p.join("config.json"), true),
        Some(p) => (p.to_path_buf(), true),
        None => match default_config_path() {
            Some(p) => (p, false),
            None => return Ok(Credentials::Anonymous),
        },
    };
    let Some(config) = load(&path, required)? else {
        return Ok(Credentials::Anonymous);
    };
    config.lookup(registry, &path)
}

/// Reads and parses a config file; a missing default file is not an error.
pub(crate) fn load(path: &Path, required: bool) -> Result<Option<DockerConfig>, RegistryError> {
    let bad = |reason: String, source: Option<crate::error::BoxError>| RegistryError::Config {
        path: path.to_path_buf(),
        reason,
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => return Err(bad("cannot be read".into(), Some(Box::new(e)))),
    };
    if meta.len() > MAX_DOCKER_CONFIG_BYTES {
        return Err(bad(
            format!(
                "is {} bytes, over the limit of {MAX_DOCKER_CONFIG_BYTES}",
                meta.len()
            ),
            None,
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| bad("cannot be read".into(), Some(Box::new(e))))?;
    parse(&bytes).map(Some).map_err(|e| {
        bad(
            "is not valid JSON of the expected shape".into(),
            Some(Box::new(e)),
        )
    })
}

pub(crate) fn parse(bytes: &[u8]) -> Result<DockerConfig, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The user and password a Docker `config.json` document (`bytes`, as held by a Kubernetes
/// `kubernetes.io/dockerconfigjson` Secret) gives for `registry`, with Docker's key matching;
/// `None` when it has none. `origin` names the document in errors.
pub fn docker_config_credentials(
    bytes: &[u8],
    registry: &str,
    origin: &str,
) -> Result<Option<(String, String)>, RegistryError> {
    let config = parse(bytes).map_err(|e| RegistryError::Config {
        path: PathBuf::from(origin),
        reason: "not a Docker config.json document".to_string(),
        source: Some(Box::new(e)),
    })?;
    Ok(match config.lookup(registry, Path::new(origin))? {
        Credentials::Basic(user, password) => Some((user, password)),
        Credentials::Anonymous => None,
    })
}

/// `https://host:port/v1/` → `host:port` (Docker's `ConvertToHostname`), lowercased.
fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS.contains(&host)
}

impl DockerConfig {
    /// The `auths` entry for `registry`: the exact key first, then Docker Hub's legacy key,
    /// then any key that names the same host (with scheme or path).
    fn entry(&self, registry: &str) -> Option<(&str, &AuthEntry)> {
        let host = registry.to_ascii_lowercase();
        let hub = is_docker_hub(&host);
        if let Some((k, e)) = self.auths.get_key_value(registry) {
            return Some((k, e));
        }
        if hub && let Some((k, e)) = self.auths.get_key_value(DOCKER_HUB_KEY) {
            return Some((k, e));
        }
        self.auths
            .iter()
            .map(|(k, e)| (k.as_str(), e))
            .find(|(k, _)| {
                let h = key_host(k);
                h == host || (hub && is_docker_hub(&h))
            })
    }

    pub(crate) fn lookup(&self, registry: &str, path: &Path) -> Result<Credentials, RegistryError> {
        let bad = |reason: String, source: Option<crate::error::BoxError>| RegistryError::Config {
            path: path.to_path_buf(),
            reason,
            source,
        };
        if let Some((key, entry)) = self.entry(registry) {
            if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .or_else(|_| {
                        base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim())
                    })
                    .map_err(|e| {
                        bad(
                            format!("auths[{key:?}].auth is not base64"),
                            Some(Box::new(e)),
                        )
                    })?;
                let text = String::from_utf8(decoded).map_err(|e| {
                    bad(
                        format!("auths[{key:?}].auth is not UTF-8"),
                        Some(Box::new(e)),
                    )
                })?;
                let (user, pass) = text.split_once(':').ok_or_else(|| {
                    bad(
                        format!("auths[{key:?}].auth is not base64 of user:password"),
                        None,
                    )
                })?;
                return Ok(Credentials::Basic(user.to_string(), pass.to_string()));
            }
            if let (Some(user), Some(pass)) = (entry.username.as_deref(), entry.password.as_deref())
                && !user.is_empty()
            {
                return Ok(Credentials::Basic(user.to_string(), pass.to_string()));
            }
            if entry
                .identity_token
                .as_deref()
                .is_some_and(|t| !t.is_empty())
            {
                tracing::debug!(
                    registry,
                    key,
                    "docker config has an identity token for this registry; identity tokens are not supported, pulling anonymously"
                );
                return Ok(Credentials::Anonymous);
            }
        }
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| {
                key_host(k) == registry.to_ascii_lowercase()
                    || (is_docker_hub(registry) && is_docker_hub(&key_host(k)))
            })
            .map(|(_, v)| v.as_str())
            .or(self.creds_store.as_deref());
        if let Some(helper) = helper {
            tracing::warn!(
                registry,
                helper,
                "credential helpers are not supported yet; pulling anonymously (pass credentials explicitly to authenticate)"
            );
        }
        Ok(Credentials::Anonymous)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn lookup(json: &str, registry: &str) -> Result<Credentials, RegistryError> {
        parse(json.as_bytes())
            .unwrap()
            .lookup(registry, Path::new("config.json"))
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic(u.into(), p.into())
    }

    #[test]
    fn matches_keys_like_docker() {
        // "user:pass" → dXNlcjpwYXNz
        let cfg = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},
            "ghcr.io":{"auth":"dXNlcjpwYXNz"},
            "https://registry.example.com:5000/v2/":{"username":"u","password":"p:w"},
            "http://plain.example":{"auth":"YTpi"}
        }}"#;
        assert_eq!(lookup(cfg, "docker.io").unwrap(), basic("hub", "hubpw"));
        assert_eq!(lookup(cfg, "ghcr.io").unwrap(), basic("user", "pass"));
        assert_eq!(
            lookup(cfg, "registry.example.com:5000").unwrap(),
            basic("u", "p:w")
        );
        assert_eq!(lookup(cfg, "plain.example").unwrap(), basic("a", "b"));
        assert_eq!(
            lookup(cfg, "registry.example.com").unwrap(),
            Credentials::Anonymous
        );
        assert_eq!(lookup(cfg, "quay.io").unwrap(), Credentials::Anonymous);
        // Docker Hub under another spelling.
        assert_eq!(
            lookup(r#"{"auths":{"docker.io":{"auth":"YTpi"}}}"#, "docker.io").unwrap(),
            basic("a", "b")
        );
        assert_eq!(
            lookup(
                r#"{"auths":{"https://registry-1.docker.io":{"auth":"YTpi"}}}"#,
                "docker.io"
            )
            .unwrap(),
            basic("a", "b")
        );
    }

    #[test]
    fn skips_tokens_and_helpers() {
        let cfg = r#"{"auths":{"ghcr.io":{"identitytoken":"x"},"https://index.docker.io/v1/":{}},
                      "credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}"#;
        assert_eq!(lookup(cfg, "ghcr.io").unwrap(), Credentials::Anonymous);
        assert_eq!(lookup(cfg, "docker.io").unwrap(), Credentials::Anonymous);
        assert_eq!(lookup(cfg, "gcr.io").unwrap(), Credentials::Anonymous);
        assert_eq!(lookup("{}", "gcr.io").unwrap(), Credentials::Anonymous);
    }

    #[test]
    fn rejects_broken_entries() {
        let e = lookup(r#"{"auths":{"ghcr.io":{"auth":"%%%"}}}"#, "ghcr.io").unwrap_err();
        assert_eq!(e.code(), "invalid-docker-config");
        assert!(e.to_string().contains("ghcr.io"), "{e}");
        // base64 of "nocolon"
        let e = lookup(
            r#"{"auths":{"ghcr.io":{"auth":"bm9jb2xvbg=="}}}"#,
            "ghcr.io",
        )
        .unwrap_err();
        assert!(e.to_string().contains("user:password"), "{e}");
        // A broken entry for another registry does not matter.
        assert_eq!(
            lookup(r#"{"auths":{"other":{"auth":"%%%"}}}"#, "ghcr.io").unwrap(),
            Credentials::Anonymous
        );
        assert!(parse(br#"{"auths":[]}"#).is_err());
    }

    #[test]
    fn loads_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"r:5000":{"auth":"YTpi"}}}"#).unwrap();
        // A file or the directory holding it.
        assert_eq!(
            credentials_for("r:5000", None, Some(&path)).unwrap(),
            basic("a", "b")
        );
        assert_eq!(
            credentials_for("r:5000", None, Some(dir.path())).unwrap(),
            basic("a", "b")
        );
        // Explicit credentials win.
        let explicit = ("x".to_string(), "y".to_string());
        assert_eq!(
            credentials_for("r:5000", Some(&explicit), Some(&path)).unwrap(),
            basic("x", "y")
        );
        // An explicitly named config must exist and parse.
        let e =
            credentials_for("r:5000", None, Some(&dir.path().join("missing.json"))).unwrap_err();
        assert_eq!(e.code(), "invalid-docker-config");
        std::fs::write(&path, "{").unwrap();
        assert_eq!(
            credentials_for("r:5000", None, Some(&path))
                .unwrap_err()
                .code(),
            "invalid-docker-config"
        );
        // A missing default config is fine.
        assert!(
            load(&dir.path().join("nope.json"), false)
                .unwrap()
                .is_none()
        );
        assert!(format!("{:?}", basic("u", "secret")).contains("redacted"));
    }
}
