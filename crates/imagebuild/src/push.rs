//! [`push`]: sends the image to a registry with oci-client, byte for byte as written to the
//! OCI layout, so the pushed manifest has the digest the layout names.

use std::path::PathBuf;

use gantry_testkit::Artifact;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

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
/// digest when it has none).
pub async fn push(image: &Image, reference: &str, options: &PushOptions) -> Result<Pushed> {
    let target: Reference = reference.parse().map_err(|source| Error::Reference {
        reference: reference.to_string(),
        source,
    })?;
    let registry = target.resolve_registry().to_string();
    let protocol = if options.insecure_registries.is_empty() {
        ClientProtocol::Https
    } else {
        ClientProtocol::HttpsExcept(options.insecure_registries.clone())
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    });
    let auth = match &options.credentials {
        Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
        None => docker_config_auth(&registry, options.docker_config.as_ref())?,
    };
    let failed = |what: String| {
        let reference = reference.to_string();
        move |source| Error::Push {
            what,
            reference,
            source,
        }
    };
    client
        .auth(&target, &auth, RegistryOperation::Push)
        .await
        .map_err(failed("authentication".to_string()))?;
    for content in image.built.contents() {
        let digest = content.digest.to_string();
        let exists = client
            .blob_exists(&target, &digest)
            .await
            .map_err(failed(format!("blob {digest}")))?;
        if exists {
            continue;
        }
        let bytes = content
            .blob
            .to_vec()
            .map_err(|source| Error::Assemble { source })?;
        client
            .push_blob(&target, bytes, &digest)
            .await
            .map_err(failed(format!("blob {digest}")))?;
    }
    let root = image.built.root();
    let manifest = root
        .blob
        .to_vec()
        .map_err(|source| Error::Assemble { source })?;
    let content_type = root
        .media_type
        .parse()
        .map_err(|_| Error::MediaType(root.media_type.clone()))?;
    let digest = root.digest.to_string();
    let by = match target.tag() {
        Some(_) => target.clone(),
        None => target.clone_with_digest(digest.clone()),
    };
    client
        .push_manifest_raw(&by, manifest, content_type)
        .await
        .map_err(failed("manifest".to_string()))?;
    Ok(Pushed {
        pinned: format!("{registry}/{}@{digest}", target.repository()),
        digest,
    })
}

/// Basic credentials for `registry` from the Docker config file, or anonymous.
fn docker_config_auth(registry: &str, file: Option<&PathBuf>) -> Result<RegistryAuth> {
    let path = match file {
        Some(p) => Some(p.clone()),
        None => std::env::var_os("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            }),
    };
    let Some(path) = path else {
        return Ok(RegistryAuth::Anonymous);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {
            return Ok(RegistryAuth::Anonymous);
        }
        Err(source) => return Err(Error::Read { path, source }),
    };
    let found =
        gantry_registry::docker_config_credentials(&bytes, registry, &path.to_string_lossy())
            .map_err(|source| Error::Credentials { source })?;
    Ok(match found {
        Some((user, password)) => RegistryAuth::Basic(user, password),
        None => RegistryAuth::Anonymous,
    })
}
