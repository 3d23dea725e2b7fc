//! A small OCI Distribution client over reqwest: transport choice, the `/v2/` challenge, the
//! token request, and authenticated requests — every connection through the [`Egress`] checks.
//!
//! Gantry's own rather than oci-client's because oci-client builds its own `reqwest::Client`
//! (no resolver hook, no redirect policy) and runs the token dance itself, so it cannot check
//! the addresses it connects to, the redirects it follows, or the realm it sends credentials
//! to (docs/design/registry.md).
//!
//! Every request goes through [`Client::send`]: the one place where authorization is added,
//! a 401 renews the token, and — later — 429/5xx retries with `Retry-After` and pushes
//! (`PUT`/`POST` with a body rebuilt per attempt) belong.

use std::time::{Duration, Instant};

use gantry_model::ImageRef;
use reqwest::header::{ACCEPT, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{self, Credentials};
use crate::egress::{self, CheckedResolver, DOCKER_HUB_HOSTS, Egress, Refused};
use crate::error::{Ctx, RegistryError, from_reqwest};
use crate::source::{FetchLimits, SourceOptions};

const USER_AGENT: &str = concat!("gantry/", env!("CARGO_PKG_VERSION"));
/// Largest error body read from a failed request: enough for any OCI error envelope.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Largest token response read. Real ones are a JWT of a few KiB (Docker Hub's are ~5 KiB, with
/// `token` and `access_token` both set); 1 MiB leaves room for large claim sets and stops a
/// realm from streaming without end.
const MAX_TOKEN_BYTES: usize = 1 << 20;
/// Redirect hops followed per request: registries send a blob to storage in one or two (a CDN,
/// a signed URL); ten is reqwest's default and far above that.
const MAX_REDIRECTS: usize = 10;
/// How long the HTTPS probe of a loopback registry may take before plain HTTP is tried. A TLS
/// handshake on loopback takes milliseconds; a plain-HTTP server that got a ClientHello may
/// instead sit waiting for a request line until its own read timeout.
const LOOPBACK_HTTPS_PROBE: Duration = Duration::from_secs(2);
/// The distribution token spec: "if `expires_in` is absent or under 60, assume 60 seconds".
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token this close to expiry is renewed before use rather than after a 401.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(10);

/// How a registry may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// HTTPS with certificate verification; a registry that only speaks HTTP is refused.
    HttpsOnly,
    /// HTTPS first without certificate verification, then plain HTTP (listed insecure
    /// registries, and loopback registries the egress policy lists, as Docker treats them).
    HttpsThenHttp,
}

/// Whether `host[:port]` is in the insecure list (`host` for any port, or `host:port`; a
/// scheme prefix and trailing `/` are ignored).
fn insecure_listed(host: &str, port: Option<u16>, insecure: &[String]) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let with_port = port.map(|p| {
        if host.contains(':') {
            format!("[{host}]:{p}")
        } else {
            format!("{host}:{p}")
        }
    });
    insecure.iter().any(|entry| {
        let e = entry.trim().to_ascii_lowercase();
        let e = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .unwrap_or(&e)
            .trim_end_matches('/');
        e == host
            || Some(e) == with_port.as_deref()
            || e.trim_start_matches('[').trim_end_matches(']') == host
    })
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether plain HTTP may be spoken to `host[:port]`: listed as insecure, or a loopback host
/// the egress policy lists.
fn plain_http_allowed(host: &str, port: Option<u16>, insecure: &[String], egress: &Egress) -> bool {
    insecure_listed(host, port, insecure)
        || (is_loopback_host(host) && egress.is_listed(host, port))
}

/// Decides the transport of `image`'s registry.
pub(crate) fn transport_for(image: &ImageRef, insecure: &[String], egress: &Egress) -> Transport {
    let port = image
        .registry()
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok());
    if insecure_listed(image.host(), port, insecure)
        || (image.is_loopback() && egress.lists_registry(image))
    {
        Transport::HttpsThenHttp
    } else {
        Transport::HttpsOnly
    }
}

/// What the registry's `/v2/` (or a 401) asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// No authentication asked for (yet).
    None,
    /// `Basic realm=…`: credentials on every request.
    Basic,
    /// `Bearer realm=…,service=…`: a token from the realm.
    Bearer { realm: Url, service: Option<String> },
}

/// A bearer token and when to renew it.
#[derive(Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The OCI error envelope, only the codes.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    token: Option<Token>,
}

/// What a connection may do in its repository: the `actions` of the token scope it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    /// Pull and push (`repository:NAME:pull,push`).
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

/// A request body that can be sent again (after a 401 renews the token).
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) content_type: String,
    pub(crate) bytes: bytes::Bytes,
}

/// A connection to one repository of one registry.
pub(crate) struct Client {
    access: Access,
    http: reqwest::Client,
    image: ImageRef,
    /// `scheme://host[:port]` of the registry API (Docker Hub's is `index.docker.io`).
    base: Url,
    egress: Egress,
    insecure: Vec<String>,
    credentials: Credentials,
    auth: tokio::sync::RwLock<AuthState>,
    limits: FetchLimits,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the reference against the policy, picks HTTPS or HTTP, and answers the
    /// registry's challenge (a token request when it asks for one).
    pub(crate) async fn connect(
        image: &ImageRef,
        opts: &SourceOptions,
    ) -> Result<Client, RegistryError> {
        Client::connect_for(image, opts, Access::Pull).await
    }

    /// [`Client::connect`] for `access`.
    pub(crate) async fn connect_for(
        image: &ImageRef,
        opts: &SourceOptions,
        access: Access,
    ) -> Result<Client, RegistryError> {
        let egress = opts.egress.clone();
        egress.check_reference(image)?;
        let limits = opts.limits.clone();
        let transport = transport_for(image, &opts.insecure_registries, &egress);
        let insecure = transport == Transport::HttpsThenHttp;
        let ctx = ctx(image, &limits, "registry", image.registry().to_string());
        let http = build_http(&egress, &opts.insecure_registries, &limits, insecure)
            .map_err(|e| from_reqwest(e, &ctx))?;
        let host = if DOCKER_HUB_HOSTS.contains(&image.registry()) {
            "index.docker.io"
        } else {
            image.registry()
        };
        let url = |scheme: &str| {
            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                ctx.protocol(
                    format!("registry host {host} does not make a URL"),
                    Some(Box::new(e)),
                )
            })
        };
        let https = url("https")?;
        egress.check_url(&https).map_err(|r| ctx.refused(r))?;
        let (base, pinged) = match transport {
            Transport::HttpsOnly => {
                match ping(&http, &https, limits.request_timeout_manifest, &ctx).await {
                    Ok(p) => (https, p),
                    Err(RegistryError::Connect {
                        registry,
                        source: cause,
                    }) => {
                        // Tell "speaks only HTTP" apart from "unreachable": ask the same host over
                        // HTTP (a credential-free GET /v2/).
                        if ping(&http, &url("http")?, limits.connect_timeout, &ctx)
                            .await
                            .is_ok()
                        {
                            return Err(RegistryError::InsecureNotAllowed { registry });
                        }
                        return Err(RegistryError::Connect {
                            registry,
                            source: cause,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            Transport::HttpsThenHttp => {
                let probe = if image.is_loopback() {
                    LOOPBACK_HTTPS_PROBE.min(limits.request_timeout_manifest)
                } else {
                    limits.request_timeout_manifest
                };
                match ping(&http, &https, probe, &ctx).await {
                    Ok(p) => (https, p),
                    Err(e @ RegistryError::AddressNotAllowed { .. }) => return Err(e),
                    Err(https_err) => {
                        tracing::debug!(registry = %host, error = %https_err, "HTTPS failed, trying plain HTTP");
                        let http_url = url("http")?;
                        let p =
                            ping(&http, &http_url, limits.request_timeout_manifest, &ctx).await?;
                        (http_url, p)
                    }
                }
            }
        };
        let credentials = auth::credentials_for(
            image.registry(),
            opts.credentials.as_ref(),
            opts.docker_config.as_deref(),
        )?;
        tracing::debug!(registry = %host, scheme = base.scheme(), ?credentials, "connecting");
        let client = Client {
            access,
            http,
            image: image.clone(),
            base,
            egress,
            insecure: opts.insecure_registries.clone(),
            credentials,
            auth: tokio::sync::RwLock::new(AuthState::default()),
            limits,
        };
        let (status, headers) = pinged;
        // The distribution spec's end-1: a registry answers `GET /v2/` with 200 or 401 (403,
        // 429 and 5xx are a registry refusing or failing, reported as such later). Any other
        // answer — 404, 400, a redirect — is something else listening there: saying "not
        // found" later would tell a caller that something answered.
        let refusing = matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        );
        if !(status.is_success() || status.is_server_error() || refusing) {
            return Err(ctx.protocol(
                format!("GET /v2/ answered {status}: not an OCI distribution registry (a registry answers 200 or 401)"),
                None,
            ));
        }
        if status == StatusCode::UNAUTHORIZED {
            client.answer_challenge(&headers, &ctx).await?;
        } else {
            client.auth.write().await.challenge = Some(Challenge::None);
        }
        Ok(client)
    }

    /// The registry's reference, for error contexts.
    pub(crate) fn image(&self) -> &ImageRef {
        &self.image
    }

    pub(crate) fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// `base` + `path` (`/v2/…`).
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Sends `method url` with the registry's authorization; a 401 renews the challenge and
    /// token once. Returns a success response, or the status mapped to an error.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        ctx: &Ctx,
    ) -> Result<reqwest::Response, RegistryError> {
        self.send_body(method, url, accept, None, ctx).await
    }

    /// [`Client::send`] with a request body (uploads, manifest PUTs).
    pub(crate) async fn send_body(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        body: Option<&Body>,
        ctx: &Ctx,
    ) -> Result<reqwest::Response, RegistryError> {
        self.egress.check_url(&url).map_err(|r| ctx.refused(r))?;
        let mut renewed = false;
        loop {
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(accept) = accept {
                req = req.header(ACCEPT, accept);
            }
            if let Some(body) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, &body.content_type)
                    .body(body.bytes.clone());
            }
            let req = self.authorize(req, ctx).await?;
            let mut resp = req.send().await.map_err(|e| from_reqwest(e, ctx))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // A token expired during a long scan, or the registry asks for auth only now
                // (a repository-level challenge): answer the new challenge once.
                renewed = true;
                if self.answer_challenge(resp.headers(), ctx).await? {
                    continue;
                }
            }
            if !status.is_success() {
                let body = read_error_body(&mut resp).await;
                let codes: Vec<String> = serde_json::from_slice::<Envelope>(&body)
                    .map(|env| env.errors.into_iter().map(|e| e.code).collect())
                    .unwrap_or_default();
                return Err(ctx.status(status.as_u16(), &codes));
            }
            return Ok(resp);
        }
    }

    /// Adds the token or basic credentials the challenge asked for; renews a token about to
    /// expire.
    async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        ctx: &Ctx,
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        let (challenge, token) = {
            let state = self.auth.read().await;
            (state.challenge.clone(), state.token.clone())
        };
        Ok(match challenge {
            Some(Challenge::Bearer { realm, service }) => {
                let token = match token {
                    Some(t) if Instant::now() < t.renew_at => t,
                    _ => {
                        let t = self.fetch_token(&realm, service.as_deref(), ctx).await?;
                        self.auth.write().await.token = Some(t.clone());
                        t
                    }
                };
                req.bearer_auth(token.value)
            }
            Some(Challenge::Basic) => match &self.credentials {
                Credentials::Basic(u, p) => req.basic_auth(u, Some(p)),
                Credentials::Anonymous => req,
            },
            Some(Challenge::None) | None => req,
        })
    }

    /// Reads the challenge of a 401 (or the `/v2/` answer), checks a token realm, and fetches
    /// a token. `false` when there is nothing new to try (no usable challenge, or Basic
    /// without credentials).
    async fn answer_challenge(
        &self,
        headers: &HeaderMap,
        ctx: &Ctx,
    ) -> Result<bool, RegistryError> {
        let challenge = match parse_challenge(headers) {
            Some(Parsed::Bearer { realm, service }) => {
                let realm = self.check_realm(&realm, ctx)?;
                Challenge::Bearer { realm, service }
            }
            Some(Parsed::Basic) => Challenge::Basic,
            None => {
                tracing::debug!(registry = %self.image.registry(), "no usable WWW-Authenticate challenge");
                Challenge::None
            }
        };
        let token = match &challenge {
            Challenge::Bearer { realm, service } => {
                Some(self.fetch_token(realm, service.as_deref(), ctx).await?)
            }
            Challenge::Basic => None,
            Challenge::None => {
                self.auth.write().await.challenge = Some(Challenge::None);
                return Ok(false);
            }
        };
        let useful = token.is_some() || matches!(self.credentials, Credentials::Basic(..));
        let mut state = self.auth.write().await;
        state.challenge = Some(challenge);
        state.token = token;
        Ok(useful)
    }

    fn check_realm(&self, realm: &str, ctx: &Ctx) -> Result<Url, RegistryError> {
        let url = check_realm(realm, &self.image, &self.insecure, &self.egress, ctx)?;
        egress::note_cross_host_realm(
            self.base.host_str().unwrap_or(""),
            url.host_str().unwrap_or(""),
        );
        Ok(url)
    }

    /// `GET realm?service=…&scope=repository:NAME:pull[,push]`, with basic credentials when there
    /// are some (anonymous tokens otherwise).
    async fn fetch_token(
        &self,
        realm: &Url,
        service: Option<&str>,
        ctx: &Ctx,
    ) -> Result<Token, RegistryError> {
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair(
                "scope",
                &format!(
                    "repository:{}:{}",
                    self.image.repository(),
                    self.access.actions()
                ),
            );
        }
        let mut req = self.http.get(url).header(ACCEPT, "application/json");
        if let Credentials::Basic(u, p) = &self.credentials {
            req = req.basic_auth(u, Some(p));
        }
        let work = async {
            let mut resp = req.send().await.map_err(|e| from_reqwest(e, ctx))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                tracing::debug!(registry = %ctx.registry, %status, "token request refused");
                return Err(ctx.status(401, &[]));
            }
            if !status.is_success() {
                return Err(ctx.status(status.as_u16(), &[]));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| from_reqwest(e, ctx))? {
                if body.len() + chunk.len() > MAX_TOKEN_BYTES {
                    return Err(
                        ctx.protocol(format!("token response over {MAX_TOKEN_BYTES} bytes"), None)
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let body = within(self.limits.request_timeout_manifest, ctx, work).await??;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ctx.protocol("token response could not be decoded", Some(Box::new(e))))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ctx.protocol("token response has no token", None))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(0)).max(MIN_TOKEN_LIFETIME);
        Ok(Token {
            value,
            renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_RENEW_MARGIN),
        })
    }
}

/// A realm is where the registry's credentials go: HTTPS unless the registry itself may
/// be spoken to in plain HTTP, and on an address the policy allows (a realm on the
/// registry's own host shares its listing, whatever the port).
fn check_realm(
    realm: &str,
    image: &ImageRef,
    insecure: &[String],
    egress: &Egress,
    ctx: &Ctx,
) -> Result<Url, RegistryError> {
    let url = Url::parse(realm).map_err(|e| {
        ctx.protocol(
            format!("token realm {realm:?} is not a URL"),
            Some(Box::new(e)),
        )
    })?;
    let realm_host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let registry_port = image
        .registry()
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok());
    let registry_plain_ok = plain_http_allowed(image.host(), registry_port, insecure, egress);
    match url.scheme() {
        "https" => {}
        "http" if registry_plain_ok => {}
        "http" => {
            return Err(RegistryError::InsecureRealm {
                registry: image.registry().to_string(),
                realm: url.to_string(),
            });
        }
        other => {
            return Err(ctx.protocol(
                format!("token realm {realm:?} has scheme {other:?}, not https"),
                None,
            ));
        }
    }
    let same_host = realm_host.eq_ignore_ascii_case(image.host());
    if !(same_host && egress.lists_registry(image)) {
        egress.check_url(&url).map_err(|r| ctx.refused(r))?;
    }
    Ok(url)
}

/// A challenge as the header says it, before the realm is checked.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The first usable challenge of the `WWW-Authenticate` headers, Bearer before Basic. Parsed
/// with `http-auth` (RFC 7235 grammar, quoted strings and escapes); other schemes are skipped.
fn parse_challenge(headers: &HeaderMap) -> Option<Parsed> {
    let mut basic = false;
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        let Ok(challenges) = http_auth::parse_challenges(text) else {
            tracing::debug!(header = text, "unparsable WWW-Authenticate");
            continue;
        };
        for c in challenges {
            if c.scheme.eq_ignore_ascii_case("bearer") {
                let param = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                if let Some(realm) = param("realm").filter(|r| !r.is_empty()) {
                    return Some(Parsed::Bearer {
                        realm,
                        service: param("service"),
                    });
                }
            } else if c.scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            }
        }
    }
    basic.then_some(Parsed::Basic)
}

/// The reqwest client of one source: the checking resolver, the checking redirect policy,
/// no proxies (a proxy would connect to addresses this process never sees).
fn build_http(
    egress: &Egress,
    insecure: &[String],
    limits: &FetchLimits,
    accept_invalid_certs: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    let hops = egress.clone();
    let insecure = insecure.to_vec();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let url = attempt.url();
        let host = url.host_str().unwrap_or("");
        let refused = if attempt.previous().len() >= MAX_REDIRECTS {
            Some(Refused::new(
                host,
                format!("more than {MAX_REDIRECTS} redirects"),
            ))
        } else if url.scheme() == "http" && !plain_http_allowed(host, url.port(), &insecure, &hops)
        {
            Some(Refused::new(
                host,
                format!("redirect to plain HTTP ({url})"),
            ))
        } else if url.scheme() != "http" && url.scheme() != "https" {
            Some(Refused::new(
                host,
                format!("redirect to scheme {}", url.scheme()),
            ))
        } else {
            hops.check_url(url).err()
        };
        match refused {
            None => attempt.follow(),
            Some(refused) => attempt.error(refused),
        }
    });
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(limits.connect_timeout)
        .read_timeout(limits.read_timeout)
        .danger_accept_invalid_certs(accept_invalid_certs)
        .dns_resolver(std::sync::Arc::new(CheckedResolver {
            egress: egress.clone(),
        }))
        .redirect(policy)
        .no_proxy()
        .build()
}

pub(crate) fn ctx(
    image: &ImageRef,
    limits: &FetchLimits,
    what: &'static str,
    reference: String,
) -> Ctx {
    Ctx {
        registry: image.registry().to_string(),
        repository: image.repository().to_string(),
        what,
        reference,
        connect_timeout: limits.connect_timeout,
        read_timeout: limits.read_timeout,
    }
}

/// Runs `work` within `limit`, reporting expiry as a `Timeout`.
pub(crate) async fn within<T>(
    limit: Duration,
    ctx: &Ctx,
    work: impl Future<Output = T>,
) -> Result<T, RegistryError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| RegistryError::Timeout {
            registry: ctx.registry.clone(),
            after: limit,
        })
}

/// `GET base/v2/` without credentials: any HTTP answer (200, 401, …) proves the scheme is
/// spoken; a 401's headers carry the challenge.
async fn ping(
    http: &reqwest::Client,
    base: &Url,
    limit: Duration,
    ctx: &Ctx,
) -> Result<(StatusCode, HeaderMap), RegistryError> {
    let mut url = base.clone();
    url.set_path("/v2/");
    within(limit, ctx, http.get(url).send())
        .await?
        .map(|r| (r.status(), r.headers().clone()))
        .map_err(|e| from_reqwest(e, ctx))
}

/// The start of an error body (for the OCI error envelope); read errors just end it.
async fn read_error_body(resp: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY_BYTES {
            body.truncate(MAX_ERROR_BODY_BYTES);
            break;
        }
    }
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn https_is_required_off_loopback_and_unlisted_loopback() {
        let none: Vec<String> = vec![];
        let public = Egress::public_only();
        for host in [
            "ghcr.io/o/app",
            "10.0.0.5:5000/app",
            "127.0.0.1.nip.io/app",
            "alpine",
        ] {
            assert_eq!(
                transport_for(&image(host), &none, &public),
                Transport::HttpsOnly,
                "{host}"
            );
        }
        for loopback in [
            "localhost:5000/app",
            "127.0.0.1:5000/app",
            "127.8.9.10/app",
            "[::1]:5000/app",
            "localhost/app",
        ] {
            let img = image(loopback);
            // Not listed: no plain HTTP (and the address check refuses it anyway).
            assert_eq!(
                transport_for(&img, &none, &public),
                Transport::HttpsOnly,
                "{loopback}"
            );
            let named = Egress::permissive(Some(&img), vec![]);
            assert_eq!(
                transport_for(&img, &none, &named),
                Transport::HttpsThenHttp,
                "{loopback}"
            );
        }
    }

    #[test]
    fn insecure_registries_by_host_or_host_port() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = Egress::public_only();
        let r = image("reg.internal:5000/app");
        for (entries, want) in [
            (&["reg.internal:5000"][..], Transport::HttpsThenHttp),
            (&["reg.internal"][..], Transport::HttpsThenHttp),
            (&["http://REG.internal:5000/"][..], Transport::HttpsThenHttp),
            (&["reg.internal:5001"][..], Transport::HttpsOnly),
            (&["other.internal"][..], Transport::HttpsOnly),
        ] {
            assert_eq!(transport_for(&r, &list(entries), &e), want, "{entries:?}");
        }
        assert_eq!(
            transport_for(
                &image("reg.internal/app"),
                &list(&["reg.internal:5000"]),
                &e
            ),
            Transport::HttpsOnly
        );
        assert!(insecure_listed("::1", Some(5000), &list(&["[::1]:5000"])));
    }

    #[test]
    fn token_realms_need_https_and_an_allowed_address() {
        let c = ctx(
            &image("registry.example.com/o/app"),
            &FetchLimits::default(),
            "repository",
            String::new(),
        );
        let public = Egress::public_only();
        let none: Vec<String> = vec![];
        let check = |realm: &str, img: &str, insecure: &[String], egress: &Egress| {
            check_realm(realm, &image(img), insecure, egress, &c).map(|u| u.to_string())
        };
        // HTTPS on a public host: fine, on any host.
        check(
            "https://auth.example.org/token",
            "registry.example.com/o/app",
            &none,
            &public,
        )
        .unwrap();
        // Plain HTTP for an HTTPS-only registry: its credentials would travel in clear.
        let e = check(
            "http://auth.example.org/token",
            "registry.example.com/o/app",
            &none,
            &public,
        )
        .unwrap_err();
        assert_eq!(e.code(), "insecure-token-realm", "{e}");
        assert!(
            e.to_string().contains("http://auth.example.org/token"),
            "{e}"
        );
        // … unless the registry is insecure-listed, or a loopback registry the policy lists.
        let insecure = vec!["registry.example.com".to_string()];
        check(
            "http://auth.example.org/token",
            "registry.example.com/o/app",
            &insecure,
            &public,
        )
        .unwrap();
        let named = image("127.0.0.1:5000/o/app");
        let listed = Egress::permissive(Some(&named), vec![]);
        check(
            "http://127.0.0.1:5001/token",
            "127.0.0.1:5000/o/app",
            &none,
            &listed,
        )
        .unwrap();
        // A loopback registry that is not listed gets no plain-HTTP realm, nor a loopback one.
        assert_eq!(
            check(
                "http://127.0.0.1:5001/token",
                "127.0.0.1:5000/o/app",
                &none,
                &public
            )
            .unwrap_err()
            .code(),
            "insecure-token-realm"
        );
        let e = check(
            "https://127.0.0.1:5001/token",
            "127.0.0.1:5000/o/app",
            &none,
            &public,
        )
        .unwrap_err();
        assert_eq!(e.code(), "address-not-allowed", "{e}");
        // The realm's host passes the address check: a private or metadata address is refused
        // for a public registry, before anything connects.
        for realm in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/token",
            "https://[::ffff:127.0.0.1]/token",
        ] {
            let e = check(realm, "registry.example.com/o/app", &none, &public).unwrap_err();
            assert_eq!(e.code(), "address-not-allowed", "{realm}: {e}");
        }
        // Not a URL, or another scheme.
        assert_eq!(
            check("token", "registry.example.com/o/app", &none, &public)
                .unwrap_err()
                .code(),
            "registry-protocol-error"
        );
        assert_eq!(
            check(
                "file:///etc/passwd",
                "registry.example.com/o/app",
                &none,
                &public
            )
            .unwrap_err()
            .code(),
            "registry-protocol-error"
        );
    }

    #[test]
    fn challenges_are_parsed() {
        assert_eq!(
            parse_challenge(&headers(&[
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ])),
            Some(Parsed::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(&headers(&[r#"Basic realm="Registry Realm""#])),
            Some(Parsed::Basic)
        );
        // Bearer wins over Basic, in one header or two; unknown schemes are skipped.
        assert!(matches!(
            parse_challenge(&headers(&[
                r#"Basic realm="x", Bearer realm="https://a/t""#
            ])),
            Some(Parsed::Bearer { .. })
        ));
        assert!(matches!(
            parse_challenge(&headers(&[r#"Negotiate"#, r#"bearer REALM="https://a/t""#])),
            Some(Parsed::Bearer { service: None, .. })
        ));
        // Escapes inside quoted strings.
        assert!(matches!(
            parse_challenge(&headers(&[r#"Bearer realm="https://a/t?x=\"y\"""#])),
            Some(Parsed::Bearer { realm, .. }) if realm == r#"https://a/t?x="y""#
        ));
        for bad in [
            "",
            "Bearer",
            r#"Bearer service="s""#,
            "Bearer realm=",
            "garbage ,,, =",
        ] {
            assert_eq!(parse_challenge(&headers(&[bad])), None, "{bad:?}");
        }
        assert_eq!(parse_challenge(&HeaderMap::new()), None);
    }
}
