//! [`RegistryHarness`]: Debian's real `docker-registry` (distribution 2.8) on a free
//! 127.0.0.1 port, in a temp dir, killed on drop.
//!
//! The config is written as JSON — a subset of YAML, so the registry's YAML parser reads it
//! and we never hand-quote YAML. `REGISTRY_*` variables are removed from the child's
//! environment so a developer's shell cannot change what the tests run against.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Error, IoContext, Result};
use crate::push::{RegistryClient, Target};
use crate::token::{ISSUER, SERVICE, TokenServer};

/// How long the registry gets to answer `GET /v2/` after spawning. It is usually ready in
/// ~100 ms; 10 s leaves room for a loaded CI machine without hanging a test forever.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts with a fresh port when the one we picked was taken in between (the free-port
/// race: we learn a free port by binding and releasing it, and someone may grab it).
const START_ATTEMPTS: usize = 3;
/// Where Debian installs the binary.
const DEFAULT_BINARY: &str = "/usr/bin/docker-registry";
/// Overrides the binary path (e.g. a distribution v3 `registry` build).
pub const BINARY_ENV: &str = "GANTRY_DOCKER_REGISTRY";

/// Who may use the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// Anyone, anonymously.
    #[default]
    None,
    /// htpasswd (bcrypt) with one user: challenges `Basic realm=…`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// Bearer tokens from an in-process token server that knows one user: challenges
    /// `Bearer realm="http://127.0.0.1:PORT/token",service="gantry-test",scope=…`.
    Token {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl Auth {
    /// `Auth::Basic` from string slices.
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// `Auth::Token` from string slices.
    pub fn token(user: &str, password: &str) -> Auth {
        Auth::Token {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    fn credentials(&self) -> Option<(String, String)> {
        match self {
            Auth::None => None,
            Auth::Basic { user, password } | Auth::Token { user, password } => {
                Some((user.clone(), password.clone()))
            }
        }
    }
}

/// Everything configurable about a harness registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Authentication.
    pub auth: Auth,
    /// When set, a `notifications` endpoint named `gantry` posting events to this URL
    /// (timeout 3s, threshold 3, backoff 1s; blob events ignored — which also makes
    /// `ignore.actions` work on 2.8.2, see interfaces.md §0.4).
    pub notify_url: Option<String>,
    /// A JSON merge patch (RFC 7386) applied to the generated config, for anything else
    /// (`{"notifications": {"endpoints": [...]}}`, `{"log": {"level": "debug"}}`, …).
    pub config_patch: Option<serde_json::Value>,
}

/// A running `docker-registry`. Dropping it kills and reaps exactly that child process.
#[derive(Debug)]
pub struct RegistryHarness {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
    creds: Option<(String, String)>,
    /// Kept alive as long as the registry: it validates tokens against this server's cert.
    _token: Option<TokenServer>,
    dir: TempDir,
}

impl RegistryHarness {
    /// An anonymous registry.
    pub fn start() -> Result<RegistryHarness> {
        Self::start_with_options(RegistryOptions::default())
    }

    /// A registry with the given authentication.
    pub fn start_with(auth: Auth) -> Result<RegistryHarness> {
        Self::start_with_options(RegistryOptions {
            auth,
            ..RegistryOptions::default()
        })
    }

    /// A registry with all options.
    pub fn start_with_options(options: RegistryOptions) -> Result<RegistryHarness> {
        let binary = find_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()
            .ctx(|| "creating the registry temp dir".to_string())?;
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).ctx(|| format!("creating {}", storage.display()))?;

        let mut config = serde_json::json!({
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": true}},
            "storage": {
                "filesystem": {"rootdirectory": storage.display().to_string()},
                "delete": {"enabled": true},
            },
            "http": {"addr": ""},
        });
        let token = match &options.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                let hash = bcrypt::hash_with_result(password, 4)
                    .map_err(|e| Error::Crypto(format!("bcrypt: {e}")))?
                    .format_for_version(bcrypt::Version::TwoY);
                let path = dir.path().join("htpasswd");
                fs::write(&path, format!("{user}:{hash}\n"))
                    .ctx(|| format!("writing {}", path.display()))?;
                config["auth"] = serde_json::json!({"htpasswd": {"realm": "gantry-test", "path": path.display().to_string()}});
                None
            }
            Auth::Token { user, password } => {
                let server = TokenServer::start(user, password)?;
                let bundle = dir.path().join("token-ca.pem");
                fs::write(&bundle, server.cert_pem())
                    .ctx(|| format!("writing {}", bundle.display()))?;
                config["auth"] = serde_json::json!({"token": {
                    "realm": server.realm(),
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": bundle.display().to_string(),
                }});
                Some(server)
            }
        };
        if let Some(url) = &options.notify_url {
            config["notifications"] = serde_json::json!({
                "events": {"includereferences": true},
                "endpoints": [{
                    "name": "gantry",
                    "url": url,
                    "headers": {},
                    "timeout": "3s",
                    "threshold": 3,
                    "backoff": "1s",
                    "ignore": {"mediatypes": ["application/octet-stream"]},
                }],
            });
        }
        if let Some(patch) = &options.config_patch {
            crate::image::merge_patch(&mut config, patch);
        }

        let log = dir.path().join("registry.log");
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let addr = free_port()?;
            config["http"]["addr"] = serde_json::Value::String(addr.to_string());
            let config_path = dir.path().join("config.yml");
            fs::write(
                &config_path,
                crate::error::json("registry config", &config)?,
            )
            .ctx(|| format!("writing {}", config_path.display()))?;
            let mut child = spawn(&binary, &config_path, &log)?;
            match wait_ready(&mut child, addr, &log) {
                Ok(()) => {
                    return Ok(RegistryHarness {
                        child: Some(child),
                        addr,
                        log,
                        creds: options.auth.credentials(),
                        _token: token,
                        dir,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let retry = tail(&log).contains("address already in use");
                    last_err = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::RegistryStart {
            reason: "no start attempt was made".to_string(),
            log_tail: String::new(),
        }))
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT/repo:tag`.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }

    /// The configured user and password, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// A client using the configured credentials.
    pub fn client(&self) -> RegistryClient {
        RegistryClient::new(self, self.credentials())
    }

    /// An anonymous client.
    pub fn anonymous_client(&self) -> RegistryClient {
        RegistryClient::new(self, None)
    }

    /// The last lines of the registry's log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// The temp dir holding config, storage and log (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the registry now (same as dropping it).
    pub fn stop(self) {}
}

impl Target for RegistryHarness {
    fn base_url(&self) -> String {
        self.url()
    }
}

impl Drop for RegistryHarness {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Exactly our child, by its handle; wait() reaps it so no zombie is left.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(BINARY_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::RegistryMissing { path: p })
        };
    }
    let default = PathBuf::from(DEFAULT_BINARY);
    if default.is_file() {
        return Ok(default);
    }
    let in_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("docker-registry"))
        .find(|p| p.is_file());
    in_path.ok_or(Error::RegistryMissing { path: default })
}

/// A port that was free a moment ago (see [`START_ATTEMPTS`] for the race).
fn free_port() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")
        .ctx(|| "binding 127.0.0.1:0 to find a free port".to_string())?;
    l.local_addr().ctx(|| "reading the free port".to_string())
}

fn spawn(binary: &Path, config: &Path, log: &Path) -> Result<Child> {
    let out = File::create(log).ctx(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .ctx(|| format!("cloning {}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(&k);
        }
    }
    cmd.spawn()
        .ctx(|| format!("spawning {} serve {}", binary.display(), config.display()))
}

fn wait_ready(child: &mut Child, addr: SocketAddr, log: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::RegistryStart {
                reason: format!("it exited with {status}"),
                log_tail: tail(log),
            });
        }
        if answers_v2(addr) {
            return Ok(());
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(Error::RegistryStart {
                reason: format!("GET http://{addr}/v2/ got no answer within {READY_TIMEOUT:?}"),
                log_tail: tail(log),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// True when `GET /v2/` gets any HTTP answer (200 anonymous, 401 with auth).
fn answers_v2(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let req = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && (head.ends_with(b"200") || head.ends_with(b"401"))
}

/// Last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
