//! Images in a registry, through oci-client.
//!
//! oci-client does the `/v2/` challenge, the token request (anonymous or with basic
//! credentials), basic auth, and blob streams. Manifests are fetched here with the same
//! reqwest, because oci-client's `pull_manifest_raw` reads the body unbounded and drops the
//! `Content-Type`: a hostile registry could answer a manifest request with gigabytes. Our GET
//! reads at most `max_manifest_bytes + 1` bytes, keeps the media type, and maps the status
//! itself. It authenticates with the token oci-client obtained.

use std::fmt;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use gantry_model::oci::{Descriptor, media_type};
use gantry_model::{Digest, DigestAlgorithm, ImageRef};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio_util::io::StreamReader;

use crate::auth::{self, Credentials};
use crate::document::{Document, check_announced_size, digest_of, verify_content, verify_digest};
use crate::error::{Ctx, RegistryError, from_oci, from_reqwest, from_stream_io};
use crate::source::{BlobStream, FetchLimits, ImageSource, SourceOptions};

const USER_AGENT: &str = concat!("gantry/", env!("CARGO_PKG_VERSION"));
/// Largest error body read from a failed request: enough for any OCI error envelope.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
const DOCKER_CONTENT_DIGEST: &str = "Docker-Content-Digest";
/// How long the HTTPS probe of a loopback registry may take before plain HTTP is tried. A TLS
/// handshake on loopback takes milliseconds; a plain-HTTP server that got a ClientHello may
/// instead sit waiting for a request line until its own read timeout.
const LOOPBACK_HTTPS_PROBE: Duration = Duration::from_secs(2);

/// How a registry may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// HTTPS with certificate verification; a registry that only speaks HTTP is refused.
    HttpsOnly,
    /// HTTPS first without certificate verification, then plain HTTP (loopback registries and
    /// those listed as insecure, as Docker treats them).
    HttpsThenHttp,
}

/// Decides the transport: loopback is always allowed plain HTTP; otherwise only registries in
/// `insecure` (`host` for any port, or `host:port`; a scheme prefix is ignored).
pub(crate) fn transport_for(image: &ImageRef, insecure: &[String]) -> Transport {
    if image.is_loopback() {
        return Transport::HttpsThenHttp;
    }
    let registry = image.registry().to_ascii_lowercase();
    let host = image.host().to_ascii_lowercase();
    let allowed = insecure.iter().any(|entry| {
        let e = entry.trim().to_ascii_lowercase();
        let e = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .unwrap_or(&e)
            .trim_end_matches('/');
        e == registry || e == host || e.trim_start_matches('[').trim_end_matches(']') == host
    });
    if allowed {
        Transport::HttpsThenHttp
    } else {
        Transport::HttpsOnly
    }
}

fn oci_reference(image: &ImageRef) -> Reference {
    let registry = image.registry().to_string();
    let repository = image.repository().to_string();
    match (image.digest(), image.tag()) {
        (Some(d), _) => Reference::with_digest(registry, repository, d.to_string()),
        (None, Some(t)) => Reference::with_tag(registry, repository, t.to_string()),
        (None, None) => Reference::with_tag(registry, repository, "latest".to_string()),
    }
}

/// A manifest response, read within the limit.
struct Fetched {
    bytes: Vec<u8>,
    content_type: Option<String>,
    header_digest: Option<String>,
}

/// A registry repository.
pub(crate) struct RegistrySource {
    image: ImageRef,
    oci_ref: Reference,
    /// `scheme://host` of the registry API (Docker Hub's is `index.docker.io`).
    base: String,
    client: Client,
    http: reqwest::Client,
    credentials: Credentials,
    /// Bearer token for our manifest GETs (oci-client keeps its own copy for blobs).
    bearer: tokio::sync::RwLock<Option<String>>,
    limits: FetchLimits,
    /// The root document, fetched once per source: callers ask for it again while resolving
    /// (the digest first, then the image), and a tag that moves meanwhile must not give one
    /// scan two different roots.
    root: tokio::sync::OnceCell<Document>,
}

impl fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySource")
            .field("image", &self.image)
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RegistrySource {
    /// GETs the manifest or index the reference names and checks its digest.
    async fn fetch_root(&self) -> Result<Document, RegistryError> {
        let label = self.image.to_string();
        let what = format!("manifest of {label}");
        let (reference, not_found) = match (self.image.digest(), self.image.tag()) {
            (Some(d), _) => (d.to_string(), "manifest"),
            (None, t) => (t.unwrap_or("latest").to_string(), "tag"),
        };
        let fetched = self.get_manifest(&reference, not_found, &label).await?;
        let digest = match self.image.digest() {
            // By digest: the content must hash to it, whatever the registry's header says.
            Some(expected) => {
                verify_digest(&what, expected, &fetched.bytes)?;
                expected.clone()
            }
            // By tag: the registry's Docker-Content-Digest names the manifest; check it.
            None => match fetched.header_digest.as_deref().map(str::parse::<Digest>) {
                Some(Ok(d)) => {
                    verify_digest(&what, &d, &fetched.bytes)?;
                    d
                }
                Some(Err(e)) => {
                    tracing::debug!(image = %label, error = %e, "unusable Docker-Content-Digest header; hashing the manifest");
                    digest_of(DigestAlgorithm::Sha256, &fetched.bytes)
                }
                None => digest_of(DigestAlgorithm::Sha256, &fetched.bytes),
            },
        };
        Document::parse(digest, fetched.content_type, fetched.bytes, &what)
    }

    /// Picks HTTPS or HTTP, builds the clients and authenticates (a token request when the
    /// registry asks for one).
    pub(crate) async fn connect(
        image: &ImageRef,
        opts: &SourceOptions,
    ) -> Result<RegistrySource, RegistryError> {
        let limits = opts.limits.clone();
        let transport = transport_for(image, &opts.insecure_registries);
        let oci_ref = oci_reference(image);
        let host = oci_ref.resolve_registry().to_string();
        let insecure = transport == Transport::HttpsThenHttp;
        let ctx = ctx(image, &limits, "registry", image.registry().to_string());
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.read_timeout)
            .danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| from_reqwest(e, &ctx))?;
        let scheme = match transport {
            Transport::HttpsOnly => "https",
            Transport::HttpsThenHttp => {
                let probe = if image.is_loopback() {
                    LOOPBACK_HTTPS_PROBE.min(limits.request_timeout_manifest)
                } else {
                    limits.request_timeout_manifest
                };
                match ping(&http, "https", &host, probe, &ctx).await {
                    Ok(()) => "https",
                    Err(https_err) => {
                        tracing::debug!(registry = %host, error = %https_err, "HTTPS failed, trying plain HTTP");
                        ping(&http, "http", &host, limits.request_timeout_manifest, &ctx).await?;
                        "http"
                    }
                }
            }
        };
        let client = Client::try_from(ClientConfig {
            protocol: if scheme == "http" {
                ClientProtocol::HttpsExcept(vec![host.clone()])
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: insecure,
            platform_resolver: None,
            connect_timeout: Some(limits.connect_timeout),
            read_timeout: Some(limits.read_timeout),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        })
        .map_err(|e| from_oci(e, &ctx))?;
        let credentials = auth::credentials_for(
            image.registry(),
            opts.credentials.as_ref(),
            opts.docker_config.as_deref(),
        )?;
        tracing::debug!(registry = %host, scheme, ?credentials, "connecting");
        let source = RegistrySource {
            image: image.clone(),
            oci_ref,
            base: format!("{scheme}://{host}"),
            client,
            http,
            credentials,
            bearer: tokio::sync::RwLock::new(None),
            limits,
            root: tokio::sync::OnceCell::new(),
        };
        match source.authenticate().await {
            Err(RegistryError::Connect {
                registry,
                source: cause,
            }) if transport == Transport::HttpsOnly => {
                // Tell "speaks only HTTP" apart from "unreachable": ask the same host over HTTP
                // (a credential-free GET /v2/).
                if ping(
                    &source.http,
                    "http",
                    &host,
                    source.limits.connect_timeout,
                    &ctx,
                )
                .await
                .is_ok()
                {
                    return Err(RegistryError::InsecureNotAllowed { registry });
                }
                Err(RegistryError::Connect {
                    registry,
                    source: cause,
                })
            }
            Err(e) => Err(e),
            Ok(()) => Ok(source),
        }
    }

    fn ctx(&self, what: &'static str, reference: String) -> Ctx {
        ctx(&self.image, &self.limits, what, reference)
    }

    fn auth(&self) -> RegistryAuth {
        match &self.credentials {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic(u, p) => RegistryAuth::Basic(u.clone(), p.clone()),
        }
    }

    /// Runs oci-client's auth (challenge, then token request) and keeps the bearer token.
    async fn authenticate(&self) -> Result<(), RegistryError> {
        let ctx = self.ctx("repository", self.image.name());
        let auth = self.auth();
        let work = self
            .client
            .auth(&self.oci_ref, &auth, RegistryOperation::Pull);
        let token = within(self.limits.request_timeout_manifest, &ctx, work)
            .await?
            .map_err(|e| from_oci(e, &ctx))?;
        *self.bearer.write().await = token;
        Ok(())
    }

    async fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(token) = self.bearer.read().await.as_deref() {
            return req.bearer_auth(token);
        }
        match &self.credentials {
            Credentials::Basic(u, p) => req.basic_auth(u, Some(p)),
            Credentials::Anonymous => req,
        }
    }

    /// GET a manifest by tag or digest, within the size and time limits.
    async fn get_manifest(
        &self,
        reference: &str,
        what: &'static str,
        label: &str,
    ) -> Result<Fetched, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base,
            self.image.repository(),
            reference
        );
        let ctx = self.ctx(what, label.to_string());
        let limit = self.limits.max_manifest_bytes;
        let work = async {
            let mut refreshed = false;
            loop {
                let req = self
                    .http
                    .get(&url)
                    .header(ACCEPT, media_type::ACCEPTED_MANIFESTS.join(", "));
                let mut resp = self
                    .authorize(req)
                    .await
                    .send()
                    .await
                    .map_err(|e| from_reqwest(e, &ctx))?;
                let status = resp.status();
                if status == reqwest::StatusCode::UNAUTHORIZED
                    && !refreshed
                    && self.bearer.read().await.is_some()
                {
                    // The token may have expired during a long scan: get a new one once.
                    refreshed = true;
                    self.authenticate().await?;
                    continue;
                }
                if !status.is_success() {
                    let body = read_error_body(&mut resp).await;
                    let codes: Vec<OciErrorCode> = serde_json::from_slice::<OciEnvelope>(&body)
                        .map(|env| env.errors.into_iter().map(|e| e.code).collect())
                        .unwrap_or_default();
                    return Err(ctx.status(status.as_u16(), &codes));
                }
                let what_bytes = format!("manifest of {label}");
                if let Some(len) = resp.content_length().filter(|&l| l > limit) {
                    return Err(RegistryError::TooLarge {
                        what: what_bytes,
                        size: len,
                        limit,
                    });
                }
                let header = |name| {
                    resp.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let content_type = header(CONTENT_TYPE.as_str());
                let header_digest = header(DOCKER_CONTENT_DIGEST).filter(|d| !d.is_empty());
                let mut bytes = Vec::new();
                while let Some(chunk) = resp.chunk().await.map_err(|e| from_reqwest(e, &ctx))? {
                    let size = (bytes.len() + chunk.len()) as u64;
                    if size > limit {
                        return Err(RegistryError::TooLarge {
                            what: what_bytes,
                            size,
                            limit,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                return Ok(Fetched {
                    bytes,
                    content_type,
                    header_digest,
                });
            }
        };
        within(self.limits.request_timeout_manifest, &ctx, work).await?
    }
}

fn ctx(image: &ImageRef, limits: &FetchLimits, what: &'static str, reference: String) -> Ctx {
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
async fn within<T>(
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

/// `GET scheme://host/v2/`: succeeds on any HTTP answer (200, 401, …), which proves the
/// scheme is spoken.
async fn ping(
    http: &reqwest::Client,
    scheme: &str,
    host: &str,
    limit: Duration,
    ctx: &Ctx,
) -> Result<(), RegistryError> {
    let url = format!("{scheme}://{host}/v2/");
    within(limit, ctx, http.get(&url).send())
        .await?
        .map(drop)
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

#[async_trait::async_trait]
impl ImageSource for RegistrySource {
    fn describe(&self) -> String {
        self.image.to_string()
    }

    fn reference(&self) -> Option<&ImageRef> {
        Some(&self.image)
    }

    async fn root(&self) -> Result<Document, RegistryError> {
        self.root
            .get_or_try_init(|| self.fetch_root())
            .await
            .cloned()
    }

    async fn manifest(&self, desc: &Descriptor) -> Result<Document, RegistryError> {
        let label = format!("{}@{}", self.image.name(), desc.digest);
        let what = format!("manifest {label}");
        check_announced_size(&what, desc, self.limits.max_manifest_bytes)?;
        let fetched = self
            .get_manifest(&desc.digest.to_string(), "manifest", &label)
            .await?;
        verify_content(&what, desc, &fetched.bytes)?;
        // The descriptor's media type is digest-protected (it is in the parent); the
        // Content-Type is not.
        Document::parse(
            desc.digest.clone(),
            Some(desc.media_type.clone()),
            fetched.bytes,
            &what,
        )
    }

    async fn config(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let what = format!("config {} of {}", desc.digest, self.image);
        let limit = self.limits.max_config_bytes;
        check_announced_size(&what, desc, limit)?;
        let ctx = self.ctx("blob", format!("{}@{}", self.image.name(), desc.digest));
        let digest = desc.digest.to_string();
        let work = async {
            let mut stream = self
                .client
                .pull_blob_stream(&self.oci_ref, digest.as_str())
                .await
                .map_err(|e| from_oci(e, &ctx))?;
            if let Some(len) = stream.content_length.filter(|&l| l > limit) {
                return Err(RegistryError::TooLarge {
                    what: what.clone(),
                    size: len,
                    limit,
                });
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| from_stream_io(e, &ctx))?;
                let size = (bytes.len() + chunk.len()) as u64;
                if size > limit {
                    return Err(RegistryError::TooLarge {
                        what: what.clone(),
                        size,
                        limit,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        let bytes = within(self.limits.request_timeout_manifest, &ctx, work).await??;
        verify_content(&what, desc, &bytes)?;
        Ok(bytes)
    }

    async fn blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        let ctx = self.ctx("blob", format!("{}@{}", self.image.name(), desc.digest));
        let digest = desc.digest.to_string();
        // Passing the digest alone (no `urls`) keeps oci-client from fetching foreign-layer URLs
        // named by the manifest.
        let work = self.client.pull_blob_stream(&self.oci_ref, digest.as_str());
        let sized = within(self.limits.request_timeout_manifest, &ctx, work)
            .await?
            .map_err(|e| from_oci(e, &ctx))?;
        if let Some(len) = sized.content_length.filter(|&l| l != desc.size) {
            return Err(RegistryError::SizeMismatch {
                what: format!("blob {}", ctx.reference),
                expected: desc.size,
                actual: len,
            });
        }
        // oci-client verifies the digest at the end of the stream too; its errors (and
        // transport errors) are converted here so the reader sees a `RegistryError`.
        let stream = sized
            .stream
            .map_err(move |e| from_stream_io(e, &ctx).into_io());
        Ok(Box::pin(StreamReader::new(stream)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    #[test]
    fn https_is_required_off_loopback() {
        let none: Vec<String> = vec![];
        assert_eq!(
            transport_for(&image("ghcr.io/o/app"), &none),
            Transport::HttpsOnly
        );
        assert_eq!(
            transport_for(&image("10.0.0.5:5000/app"), &none),
            Transport::HttpsOnly
        );
        assert_eq!(
            transport_for(&image("127.0.0.1.nip.io/app"), &none),
            Transport::HttpsOnly
        );
        assert_eq!(transport_for(&image("alpine"), &none), Transport::HttpsOnly);
        for loopback in [
            "localhost:5000/app",
            "127.0.0.1:5000/app",
            "127.8.9.10/app",
            "[::1]:5000/app",
            "localhost/app",
        ] {
            assert_eq!(
                transport_for(&image(loopback), &none),
                Transport::HttpsThenHttp,
                "{loopback}"
            );
        }
    }

    #[test]
    fn insecure_registries_by_host_or_host_port() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = image("reg.internal:5000/app");
        assert_eq!(
            transport_for(&r, &list(&["reg.internal:5000"])),
            Transport::HttpsThenHttp
        );
        assert_eq!(
            transport_for(&r, &list(&["reg.internal"])),
            Transport::HttpsThenHttp
        );
        assert_eq!(
            transport_for(&r, &list(&["http://REG.internal:5000/"])),
            Transport::HttpsThenHttp
        );
        assert_eq!(
            transport_for(&r, &list(&["reg.internal:5001"])),
            Transport::HttpsOnly
        );
        assert_eq!(
            transport_for(&r, &list(&["other.internal"])),
            Transport::HttpsOnly
        );
        assert_eq!(
            transport_for(&image("reg.internal/app"), &list(&["reg.internal:5000"])),
            Transport::HttpsOnly
        );
    }

    #[test]
    fn oci_references_keep_registry_and_repository() {
        let r = oci_reference(&image("docker.io/library/alpine:3.20"));
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.resolve_registry(), "index.docker.io");
        assert_eq!(r.repository(), "library/alpine");
        assert_eq!(r.tag(), Some("3.20"));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = oci_reference(&image(&format!("127.0.0.1:5000/a/b:1@{d}")));
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.resolve_registry(), "127.0.0.1:5000");
    }
}
