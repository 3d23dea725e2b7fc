//! gantry-imagebuild: Gantry's own container image, assembled without a daemon.
//!
//! [`Recipe`] names the inputs — the `gantry` executable, the CA bundle, the version, git
//! revision, source URL and `SOURCE_DATE_EPOCH` — and [`build`] turns them into one image
//! with the project's own writer (`gantry-testkit`'s [`ImageBuilder`]/[`LayerBuilder`]):
//!
//! - one gzip layer, `FROM scratch`: `/usr/local/bin/gantry`; exactly the shared libraries
//!   the dynamic loader resolves for it (`ldd`, the DT_NEEDED closure) plus the loader, at
//!   the paths the loader looks them up, with the host's symlinks on the way; the CA bundle
//!   at `/etc/ssl/certs/ca-certificates.crt`; `/etc/passwd` and `/etc/group` with `nonroot`
//!   (65532); `/tmp` and `/home/nonroot`; for each Debian package those files come from, its
//!   status paragraph in `/var/lib/dpkg/status.d/` and its copyright file (as distroless
//!   does), so scanners — Gantry's first — list them;
//! - `USER 65532:65532`, no shell, the `org.opencontainers.image.*` labels and annotations
//!   (version, revision, source, licenses, created, title, description);
//! - reproducible: every timestamp is the recipe's epoch, every tar header fixed, every list
//!   sorted, so the same inputs give the same digest.
//!
//! [`Image::write_layout`] writes an OCI image layout (`gantry scan oci:DIR` reads it) and
//! [`push`] sends the same bytes to a registry.
//!
//! ```no_run
//! use gantry_imagebuild::{Recipe, build};
//! let recipe = Recipe::new("target/release/gantry", "0.1.0", "0123abcd", 1_704_067_200);
//! let image = build(&recipe)?;
//! image.write_layout(std::path::Path::new("out"), Some("0.1.0"))?;
//! # Ok::<(), gantry_imagebuild::Error>(())
//! ```

mod error;
mod push;
mod rootfs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, BuiltImage, ImageBuilder, LayerBuilder};

pub use error::{Error, Result};
pub use push::{PushOptions, Pushed, push};
pub use rootfs::{DebianPackage, Rootfs, SharedLibrary};

/// Where the binary sits in the image (and the entrypoint).
pub const BINARY_PATH: &str = "/usr/local/bin/gantry";

/// The non-root user and group the image runs as (distroless' `nonroot`).
pub const NONROOT: u32 = 65532;

/// The CA bundle Debian's `ca-certificates` generates, and where the image keeps it.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The licence of Gantry itself (`org.opencontainers.image.licenses`).
pub const LICENSE: &str = "Apache-2.0";

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The `gantry` executable to ship.
    pub binary: PathBuf,
    /// The CA bundle to ship (default: the machine's [`CA_BUNDLE`]).
    pub ca_bundle: PathBuf,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision` (the git commit).
    pub revision: String,
    /// `org.opencontainers.image.source`: where the source lives; no label when unknown.
    pub source: Option<String>,
    /// `SOURCE_DATE_EPOCH`: `created` of the config, history and labels.
    pub epoch: i64,
}

impl Recipe {
    /// A recipe with the machine's CA bundle and no source URL.
    pub fn new(binary: impl Into<PathBuf>, version: &str, revision: &str, epoch: i64) -> Recipe {
        Recipe {
            binary: binary.into(),
            ca_bundle: PathBuf::from(CA_BUNDLE),
            version: version.to_string(),
            revision: revision.to_string(),
            source: None,
            epoch,
        }
    }
}

/// A built image: its bytes and what its file system holds.
#[derive(Debug, Clone)]
pub struct Image {
    /// Manifest, config and layer, ready to write or push.
    pub built: BuiltImage,
    /// What the layer holds (libraries, packages).
    pub rootfs: Rootfs,
}

impl Image {
    /// The manifest digest (what `--push` prints and what to pin a Deployment to).
    pub fn digest(&self) -> String {
        self.built.manifest_digest.to_string()
    }

    /// Writes an OCI image layout into `dir` (created if missing), `tag` as its ref name.
    pub fn write_layout(&self, dir: &Path, tag: Option<&str>) -> Result<()> {
        self.built
            .write_oci_layout(dir, tag)
            .map_err(|source| Error::Write {
                path: dir.to_path_buf(),
                source,
            })
    }
}

/// Assembles the image (see the crate docs for what is in it).
pub fn build(recipe: &Recipe) -> Result<Image> {
    let created = gantry_model::time::rfc3339(recipe.epoch);
    let rootfs = Rootfs::collect(&recipe.binary, &recipe.ca_bundle)?;
    let layer = rootfs.layer(LayerBuilder::new(Compression::Gzip))?;

    let mut labels = BTreeMap::from([
        ("org.opencontainers.image.title", "gantry".to_string()),
        (
            "org.opencontainers.image.description",
            "Gate between a container registry and the clusters that run its images".to_string(),
        ),
        ("org.opencontainers.image.version", recipe.version.clone()),
        ("org.opencontainers.image.revision", recipe.revision.clone()),
        ("org.opencontainers.image.licenses", LICENSE.to_string()),
        ("org.opencontainers.image.created", created.clone()),
    ]);
    if let Some(source) = &recipe.source {
        labels.insert("org.opencontainers.image.source", source.clone());
    }
    let user = format!("{NONROOT}:{NONROOT}");
    let mut image = ImageBuilder::new()
        .created(&created)
        .user(&user)
        .env("PATH", "/usr/local/bin")
        .env("SSL_CERT_FILE", CA_BUNDLE)
        .entrypoint([BINARY_PATH])
        .cmd(["serve"])
        .workdir("/home/nonroot")
        // FROM scratch: no base image, so no org.opencontainers.image.base.* (nothing to pin).
        .layer_with_history(layer, "gantry-imagebuild: gantry, its shared libraries, CA certificates, passwd/group (FROM scratch)")
        .empty_history(&format!("USER {user}"));
    for (key, value) in &labels {
        image = image.label(key, value).annotation(key, value);
    }
    let built = image.build().map_err(|source| Error::Assemble { source })?;
    Ok(Image { built, rootfs })
}
