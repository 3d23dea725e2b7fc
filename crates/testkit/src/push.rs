//! A small blocking client for the OCI distribution API: enough to push test artifacts and
//! to read back manifests and blobs, with Basic and Bearer (token server) auth.
//!
//! Deliberately independent of gantry-registry: the images a test scans must reach the
//! registry by a path that is not the code under test.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_model::Digest;
use ureq::http;

use crate::blob::Blob;
use crate::error::{Error, Result};

/// Where a registry answers: anything that knows its base URL (`http://127.0.0.1:PORT`).
pub trait Target {
    /// Base URL without a trailing slash.
    fn base_url(&self) -> String;
}

impl Target for str {
    /// `"127.0.0.1:5000"` or `"http://127.0.0.1:5000/"` both work.
    fn base_url(&self) -> String {
        let s = self.trim_end_matches('/');
        if s.starts_with("http://") || s.starts_with("https://") {
            s.to_string()
        } else {
            format!("http://{s}")
        }
    }
}

impl Target for String {
    fn base_url(&self) -> String {
        self.as_str().base_url()
    }
}

/// What a push produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Digest of the root manifest or index.
    pub digest: Digest,
    /// `host:port/repo@sha256:…`.
    pub by_digest: String,
    /// `host:port/repo:tag`, when pushed with a tag.
    pub by_tag: Option<String>,
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body (empty for HEAD).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        s.chars().take(2000).collect()
    }
}

/// A manifest read back from a registry.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes as served.
    pub bytes: Vec<u8>,
    /// The `Content-Type` served.
    pub media_type: String,
    /// The `Docker-Content-Digest` header.
    pub digest: Option<Digest>,
}

/// Request body that can be sent again after an auth challenge.
#[derive(Clone, Copy)]
enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    Blob(&'a Blob),
}

/// Largest response body read into memory (manifests, errors, test blobs).
const MAX_RESPONSE: u64 = 512 * 1024 * 1024;

/// Whole-request timeout: generous for big test blobs on loopback, finite so a wedged
/// registry fails the test instead of hanging it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A blocking distribution-API client for tests.
#[derive(Debug)]
pub struct RegistryClient {
    agent: ureq::Agent,
    base: String,
    creds: Option<(String, String)>,
    /// The `Authorization` value that last worked; reused until a new challenge.
    auth: Mutex<Option<String>>,
}

impl RegistryClient {
    /// A client for `target`, answering challenges with `creds` (anonymous when `None`).
    pub fn new(target: &(impl Target + ?Sized), creds: Option<(&str, &str)>) -> RegistryClient {
        Self::with_timeout(target, creds, DEFAULT_TIMEOUT)
    }

    /// Like [`RegistryClient::new`] with a whole-request timeout (short ones for tests
    /// against a hanging [`crate::FaultyRegistry`]).
    pub fn with_timeout(
        target: &(impl Target + ?Sized),
        creds: Option<(&str, &str)>,
        timeout: Duration,
    ) -> RegistryClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(5).min(timeout)))
            .timeout_global(Some(timeout))
            .build();
        RegistryClient {
            agent: config.new_agent(),
            base: target.base_url(),
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
            auth: Mutex::new(None),
        }
    }

    /// `host:port` of the registry (for references).
    pub fn host(&self) -> &str {
        self.base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    /// Any request; `path` is `/v2/…` or a full URL. Answers one auth challenge, then returns
    /// whatever status comes (errors only when there is no answer at all).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse> {
        self.send(method, path, headers, ReqBody::Empty)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody<'_>,
    ) -> Result<RawResponse> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let auth = self.auth.lock().map(|a| a.clone()).unwrap_or(None);
        let first = self.send_once(method, &url, headers, body, auth.as_deref())?;
        if first.status != 401 {
            return Ok(first);
        }
        let Some(challenge) = first.header("www-authenticate").map(str::to_string) else {
            return Ok(first);
        };
        let Some(new_auth) = self.answer(&challenge)? else {
            return Ok(first);
        };
        if let Ok(mut a) = self.auth.lock() {
            *a = Some(new_auth.clone());
        }
        self.send_once(method, &url, headers, body, Some(&new_auth))
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: ReqBody<'_>,
        auth: Option<&str>,
    ) -> Result<RawResponse> {
        let transport = |source: ureq::Error| Error::Transport {
            method: method.to_string(),
            url: url.to_string(),
            source: Box::new(source),
        };
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let send_body = match body {
            ReqBody::Empty => {
                if matches!(method, "POST" | "PUT" | "PATCH") {
                    b = b.header("content-length", "0");
                }
                ureq::SendBody::none()
            }
            ReqBody::Bytes(bytes) => {
                b = b.header("content-length", bytes.len().to_string());
                ureq::SendBody::from_owned_reader(std::io::Cursor::new(bytes.to_vec()))
            }
            ReqBody::Blob(blob) => {
                b = b.header("content-length", blob.len().to_string());
                ureq::SendBody::from_owned_reader(blob.reader()?)
            }
        };
        let req = b
            .body(send_body)
            .map_err(|e| transport(ureq::Error::Http(e)))?;
        let mut resp = self.agent.run(req).map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(MAX_RESPONSE)
                .read_to_vec()
                .map_err(transport)?
        };
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// The `Authorization` value answering a challenge, or `None` when it cannot be answered.
    fn answer(&self, challenge: &str) -> Result<Option<String>> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self
            .creds
            .as_ref()
            .map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))));
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        let Some(realm) = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
        else {
            return Ok(None);
        };
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| format!("{k}={}", pct(v)))
            .collect();
        let url = if query.is_empty() {
            realm
        } else {
            format!(
                "{realm}{}{}",
                if realm.contains('?') { '&' } else { '?' },
                query.join("&")
            )
        };
        let mut headers = Vec::new();
        if let Some(b) = &basic {
            headers.push(("authorization", b.as_str()));
        }
        let resp = self.send_once("GET", &url, &headers, ReqBody::Empty, None)?;
        if resp.status != 200 {
            // Wrong or missing credentials: the caller sees the registry's own 401.
            return Ok(None);
        }
        let v: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|source| Error::Json {
                what: format!("token response from {url}"),
                source,
            })?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str());
        Ok(token.map(|t| format!("Bearer {t}")))
    }

    fn expect(
        &self,
        method: &str,
        path: &str,
        resp: RawResponse,
        ok: &[u16],
    ) -> Result<RawResponse> {
        if ok.contains(&resp.status) {
            Ok(resp)
        } else {
            Err(Error::Http {
                method: method.to_string(),
                url: format!("{}{}", self.base, path),
                status: resp.status,
                body: resp.body_text(),
            })
        }
    }

    /// GETs a manifest with an `Accept` of every manifest type Gantry knows.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let accept = gantry_model::oci::media_type::ACCEPTED_MANIFESTS.join(", ");
        let resp = self.request("GET", &path, &[("accept", &accept)])?;
        let resp = self.expect("GET", &path, resp, &[200])?;
        Ok(FetchedManifest {
            media_type: resp.header("content-type").unwrap_or_default().to_string(),
            digest: resp
                .header("docker-content-digest")
                .and_then(|d| d.parse().ok()),
            bytes: resp.body,
        })
    }

    /// GETs a blob.
    pub fn get_blob(&self, repo: &str, digest: &Digest) -> Result<Vec<u8>> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.request("GET", &path, &[])?;
        Ok(self.expect("GET", &path, resp, &[200])?.body)
    }

    /// True when the registry has the blob.
    pub fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.request("HEAD", &path, &[])?;
        match resp.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => self.expect("HEAD", &path, resp, &[200]).map(|_| false),
        }
    }

    /// Monolithic upload: `POST /blobs/uploads/`, then `PUT <location>&digest=…` with the bytes.
    pub fn push_blob(&self, repo: &str, digest: &Digest, blob: &Blob) -> Result<()> {
        if self.has_blob(repo, digest)? {
            return Ok(());
        }
        let path = format!("/v2/{repo}/blobs/uploads/");
        let resp = self.send("POST", &path, &[], ReqBody::Empty)?;
        let resp = self.expect("POST", &path, resp, &[202])?;
        let location = resp.header("location").ok_or_else(|| Error::Http {
            method: "POST".to_string(),
            url: format!("{}{path}", self.base),
            status: resp.status,
            body: "no Location header".to_string(),
        })?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", pct(&digest.to_string()));
        let resp = self.send(
            "PUT",
            &put,
            &[("content-type", "application/octet-stream")],
            ReqBody::Blob(blob),
        )?;
        self.expect("PUT", &put, resp, &[201]).map(|_| ())
    }

    /// PUTs a manifest under a tag or digest; returns the registry's `Docker-Content-Digest`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<Digest>> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self.send(
            "PUT",
            &path,
            &[("content-type", media_type)],
            ReqBody::Bytes(bytes),
        )?;
        let resp = self.expect("PUT", &path, resp, &[201])?;
        Ok(resp
            .header("docker-content-digest")
            .and_then(|d| d.parse().ok()))
    }
}

/// Splits `Bearer realm="…",service="…"` into the scheme and its parameters.
pub(crate) fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.push((key.to_ascii_lowercase(), value));
    }
    (scheme.to_string(), params)
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="svc",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p[0],
            ("realm".to_string(), "http://127.0.0.1:1/token".to_string())
        );
        assert_eq!(
            p[2],
            ("scope".to_string(), "repository:a/b:pull,push".to_string())
        );
        let (s, p) = parse_challenge(r#"Basic realm="x""#);
        assert_eq!((s.as_str(), p.len()), ("Basic", 1));
    }
}
