//! Images in a registry, through the project's Distribution client ([`crate::client`]).
//!
//! Manifests and configs are read with a byte cap (`max_manifest_bytes + 1` at most) and
//! digest-checked here; layer blobs are streamed raw: the layer walker hashes and counts them
//! as it reads (one SHA-256 pass per layer, not two).

use std::fmt;

use futures_util::TryStreamExt;
use gantry_model::oci::{Descriptor, media_type};
use gantry_model::{Digest, DigestAlgorithm, ImageRef};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use tokio_util::io::StreamReader;

use crate::client::{Client, ctx, within};
use crate::document::{Document, check_announced_size, digest_of, verify_content, verify_digest};
use crate::error::{Ctx, RegistryError, from_reqwest};
use crate::source::{BlobStream, FetchLimits, ImageSource, SourceOptions};

const DOCKER_CONTENT_DIGEST: &str = "Docker-Content-Digest";

/// A manifest response, read within the limit.
struct Fetched {
    bytes: Vec<u8>,
    content_type: Option<String>,
    header_digest: Option<String>,
}

/// A registry repository.
pub(crate) struct RegistrySource {
    image: ImageRef,
    client: Client,
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
            .field("client", &self.client)
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

    /// Connects and authenticates (see [`Client::connect`]).
    pub(crate) async fn connect(
        image: &ImageRef,
        opts: &SourceOptions,
    ) -> Result<RegistrySource, RegistryError> {
        let client = Client::connect(image, opts).await?;
        Ok(RegistrySource {
            image: client.image().clone(),
            limits: client.limits().clone(),
            client,
            root: tokio::sync::OnceCell::new(),
        })
    }

    fn ctx(&self, what: &'static str, reference: String) -> Ctx {
        ctx(&self.image, &self.limits, what, reference)
    }

    fn blob_url(&self, digest: &Digest) -> reqwest::Url {
        self.client
            .url(&format!("/v2/{}/blobs/{digest}", self.image.repository()))
    }

    /// GET a manifest by tag or digest, within the size and time limits.
    async fn get_manifest(
        &self,
        reference: &str,
        what: &'static str,
        label: &str,
    ) -> Result<Fetched, RegistryError> {
        let url = self.client.url(&format!(
            "/v2/{}/manifests/{reference}",
            self.image.repository()
        ));
        let ctx = self.ctx(what, label.to_string());
        let limit = self.limits.max_manifest_bytes;
        let accept = media_type::ACCEPTED_MANIFESTS.join(", ");
        let work = async {
            let mut resp = self
                .client
                .send(Method::GET, url, Some(&accept), &ctx)
                .await?;
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let content_type = header(CONTENT_TYPE.as_str());
            let header_digest = header(DOCKER_CONTENT_DIGEST).filter(|d| !d.is_empty());
            let bytes =
                read_capped(&mut resp, limit, &format!("manifest of {label}"), &ctx).await?;
            Ok(Fetched {
                bytes,
                content_type,
                header_digest,
            })
        };
        within(self.limits.request_timeout_manifest, &ctx, work).await?
    }
}

/// Reads a whole body of at most `limit` bytes: an announced or actual size over it is
/// `TooLarge` without reading further.
async fn read_capped(
    resp: &mut reqwest::Response,
    limit: u64,
    what: &str,
    ctx: &Ctx,
) -> Result<Vec<u8>, RegistryError> {
    if let Some(len) = resp.content_length().filter(|&l| l > limit) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            size: len,
            limit,
        });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| from_reqwest(e, ctx))? {
        let size = (bytes.len() + chunk.len()) as u64;
        if size > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                size,
                limit,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
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
        let work = async {
            let mut resp = self
                .client
                .send(Method::GET, self.blob_url(&desc.digest), None, &ctx)
                .await?;
            read_capped(&mut resp, limit, &what, &ctx).await
        };
        let bytes = within(self.limits.request_timeout_manifest, &ctx, work).await??;
        verify_content(&what, desc, &bytes)?;
        Ok(bytes)
    }

    async fn blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        let ctx = self.ctx("blob", format!("{}@{}", self.image.name(), desc.digest));
        // The registry's own blob URL only: foreign-layer `urls` of a manifest are never
        // fetched (they name any host).
        let work = self
            .client
            .send(Method::GET, self.blob_url(&desc.digest), None, &ctx);
        let resp = within(self.limits.request_timeout_manifest, &ctx, work).await??;
        if let Some(len) = resp.content_length().filter(|&l| l != desc.size) {
            return Err(RegistryError::SizeMismatch {
                what: format!("blob {}", ctx.reference),
                expected: desc.size,
                actual: len,
            });
        }
        // Raw bytes: the layer walker verifies the digest (and the diff ID) as it reads.
        let stream = resp
            .bytes_stream()
            .map_err(move |e| from_reqwest(e, &ctx).into_io());
        Ok(Box::pin(StreamReader::new(stream)))
    }
}
