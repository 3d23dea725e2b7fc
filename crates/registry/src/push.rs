//! Writing to a registry: blobs and manifests, for publishing an image (Gantry's own, by
//! `gantry-imagebuild`) and for attaching documents to one. Same client, policy and
//! credentials as pulling; the token asks for `pull,push`.
//!
//! Blobs are uploaded monolithically (`POST …/blobs/uploads/`, then `PUT <location>?digest=`,
//! the distribution spec's end-4a/end-6), which every registry supports: Gantry pushes small
//! documents and images of a few tens of megabytes, where chunked uploads buy nothing.

use gantry_model::{Digest, ImageRef};
use reqwest::{Method, StatusCode, Url};

use crate::client::{Access, Body, Client, ctx};
use crate::error::RegistryError;
use crate::source::SourceOptions;

/// A connection that may push to one repository.
#[derive(Debug)]
pub struct Pusher {
    client: Client,
}

impl Pusher {
    /// Connects to the repository of `target` (its tag or digest is ignored here) with push
    /// rights, under `options`' policy and credentials.
    pub async fn connect(
        target: &ImageRef,
        options: &SourceOptions,
    ) -> Result<Pusher, RegistryError> {
        Ok(Pusher {
            client: Client::connect_for(target, options, Access::Push).await?,
        })
    }

    fn blobs(&self, rest: &str) -> Url {
        self.client.url(&format!(
            "/v2/{}/blobs/{rest}",
            self.client.image().repository()
        ))
    }

    /// Whether the repository already has the blob (`HEAD …/blobs/<digest>`).
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let image = self.client.image();
        let c = ctx(image, self.client.limits(), "blob", digest.to_string());
        match self
            .client
            .send(Method::HEAD, self.blobs(&digest.to_string()), None, &c)
            .await
        {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads `bytes` as the blob `digest` (the registry checks the digest).
    pub async fn push_blob(
        &self,
        digest: &Digest,
        bytes: bytes::Bytes,
    ) -> Result<(), RegistryError> {
        let image = self.client.image();
        let c = ctx(
            image,
            self.client.limits(),
            "blob upload",
            digest.to_string(),
        );
        let started = self
            .client
            .send(Method::POST, self.blobs("uploads/"), None, &c)
            .await?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(c.protocol(
                format!("starting an upload answered {}", started.status()),
                None,
            ));
        }
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| c.protocol("the upload answer has no Location", None))?;
        // Location may be relative to the registry, or absolute (another host: the policy
        // checks it before anything is sent there).
        let mut url =
            self.client.url("/").join(location).map_err(|e| {
                c.protocol(format!("upload location {location:?}"), Some(Box::new(e)))
            })?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let body = Body {
            content_type: "application/octet-stream".to_string(),
            bytes,
        };
        self.client
            .send_body(Method::PUT, url, None, Some(&body), &c)
            .await?;
        Ok(())
    }

    /// Stores `bytes` (of `media_type`) as the manifest `reference` — a tag, or its digest.
    pub async fn push_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<(), RegistryError> {
        let image = self.client.image();
        let c = ctx(
            image,
            self.client.limits(),
            "manifest upload",
            reference.to_string(),
        );
        let url = self
            .client
            .url(&format!("/v2/{}/manifests/{reference}", image.repository()));
        let body = Body {
            content_type: media_type.to_string(),
            bytes,
        };
        self.client
            .send_body(Method::PUT, url, None, Some(&body), &c)
            .await?;
        Ok(())
    }
}
