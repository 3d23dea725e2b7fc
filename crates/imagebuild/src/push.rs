//! [`push`]: sends the image to a registry with gantry-registry's client (the same policy,
//! transport and credentials as Gantry's pulls), byte for byte as written to the OCI layout,
//! so the pushed manifest has the digest the layout names.

use std::path::PathBuf;

use gantry_model::ImageRef;
use gantry_registry::{Egress, Pusher, SourceOptions};
use gantry_testkit::Artifact;

use crate::Image;
use crate::error::{Error, Result};

/// Where and how to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Registries (`host[:port]`) reached over plain HTTP, like `gantry --insecure-registry`.
    pub insecure_registries: Vec<String>,
    /// User and password; when `None`, the Docker config file is consulted, then anonymous.
    pub credentials: Option<(String, String)>,
    /// The Docker config file (default `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
}

/// What the registry now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `registry/repository@sha256:…`: the pinned reference to deploy.
    pub pinned: String,
    /// The manifest digest.
    pub digest: String,
}

/// Pushes every blob the registry lacks, then the manifest under `reference`'s tag (or by
/// digest when it has none). Credentials: `options.credentials`, else the Docker config for the
/// registry, else anonymous — as every pull of Gantry's.
pub async fn push(image: &Image, reference: &str, options: &PushOptions) -> Result<Pushed> {
    let target: ImageRef = reference.parse().map_err(|source| Error::Reference {
        reference: reference.to_string(),
        source,
    })?;
    let source_options = SourceOptions {
        // The user names the target: its registry may be anywhere (a loopback registry too).
        egress: Egress::permissive(Some(&target), Vec::new()),
        insecure_registries: options.insecure_registries.clone(),
        docker_config: options.docker_config.clone(),
        credentials: options.credentials.clone(),
        ..SourceOptions::default()
    };
    let failed = |what: String| {
        let reference = reference.to_string();
        move |source| Error::Push {
            what,
            reference,
            source: Box::new(source),
        }
    };
    let pusher = Pusher::connect(&target, &source_options)
        .await
        .map_err(failed("connecting".to_string()))?;
    for content in image.built.contents() {
        let exists = pusher
            .blob_exists(&content.digest)
            .await
            .map_err(failed(format!("blob {}", content.digest)))?;
        if exists {
            continue;
        }
        let bytes = content
            .blob
            .to_vec()
            .map_err(|source| Error::Assemble { source })?;
        pusher
            .push_blob(&content.digest, bytes.into())
            .await
            .map_err(failed(format!("blob {}", content.digest)))?;
    }
    let root = image.built.root();
    let manifest = root
        .blob
        .to_vec()
        .map_err(|source| Error::Assemble { source })?;
    let digest = root.digest.to_string();
    let by = target.tag().map_or_else(|| digest.clone(), str::to_string);
    pusher
        .push_manifest(&by, &root.media_type, manifest.into())
        .await
        .map_err(failed("manifest".to_string()))?;
    Ok(Pushed {
        pinned: format!("{}@{digest}", target.name()),
        digest,
    })
}
