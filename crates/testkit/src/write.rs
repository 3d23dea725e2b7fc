//! Writers: OCI image layout (directory and tar), and `docker save` archives.
//!
//! Everything is written deterministically (mtime 0, sorted blobs), so two writes of the
//! same artifact give identical files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use gantry_model::oci::{ImageManifest, media_type};
use gantry_model::{Digest, ImageRef};
use serde::Serialize;

use crate::blob::{Blob, HashWriter, sha256};
use crate::error::{Error, IoContext, Result, json};
use crate::image::{BuiltImage, descriptor};
use crate::index::BuiltIndex;
use crate::push::{Pushed, RegistryClient, Target};

/// Annotation naming a tag in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One content-addressed object of an artifact: a layer, a config, or a manifest.
#[derive(Debug, Clone)]
pub struct Content {
    /// Digest of the bytes.
    pub digest: Digest,
    /// Media type (from the referencing descriptor).
    pub media_type: String,
    /// The bytes.
    pub blob: Blob,
    /// True for manifests and indexes (pushed to `/manifests/`, not `/blobs/`).
    pub is_manifest: bool,
}

/// Something that can be written as an OCI layout or pushed: a [`BuiltImage`] or a [`BuiltIndex`].
pub trait Artifact {
    /// The top document: the image manifest, or the index.
    fn root(&self) -> Content;

    /// Every other object, each once, in push order: the blobs of a manifest before the
    /// manifest, children before the index.
    fn contents(&self) -> Vec<Content>;

    /// Writes an OCI image layout directory: `oci-layout`, `index.json` (one entry for the
    /// root, with an `org.opencontainers.image.ref.name` annotation when `tag` is given), and
    /// `blobs/sha256/<hex>` for every object. `dir` is created if missing.
    fn write_oci_layout(&self, dir: &Path, tag: Option<&str>) -> Result<()> {
        for (path, blob) in layout_files(&self.root(), &self.contents(), tag)? {
            let full = dir.join(&path);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
            }
            let mut f =
                BufWriter::new(File::create(&full).ctx(|| format!("creating {}", full.display()))?);
            io::copy(&mut blob.reader()?, &mut f).ctx(|| format!("writing {}", full.display()))?;
            f.flush().ctx(|| format!("writing {}", full.display()))?;
        }
        Ok(())
    }

    /// Writes the same layout as a tar file (`oci-archive:` in skopeo's terms).
    fn write_oci_archive(&self, file: &Path, tag: Option<&str>) -> Result<()> {
        let mut tar = TarOut::create(file)?;
        tar.dir("blobs/")?;
        tar.dir("blobs/sha256/")?;
        for (path, blob) in layout_files(&self.root(), &self.contents(), tag)? {
            tar.blob(&path, &blob)?;
        }
        tar.finish()
    }

    /// Pushes to a registry over the distribution API: every blob (skipped when the registry
    /// has it), child manifests by digest, then the root by `tag` (or by digest when `None`).
    /// `creds` answer a Basic challenge or are sent to the token server of a Bearer one.
    fn push(
        &self,
        target: &(impl Target + ?Sized),
        repo: &str,
        tag: Option<&str>,
        creds: Option<(&str, &str)>,
    ) -> Result<Pushed>
    where
        Self: Sized,
    {
        let client = RegistryClient::new(&target.base_url(), creds);
        for c in self.contents() {
            push_content(&client, repo, &c.digest.to_string(), &c)?;
        }
        let root = self.root();
        let digest_ref = root.digest.to_string();
        push_content(&client, repo, tag.unwrap_or(&digest_ref), &root)?;
        let host = client.host().to_string();
        Ok(Pushed {
            by_digest: format!("{host}/{repo}@{}", root.digest),
            by_tag: tag.map(|t| format!("{host}/{repo}:{t}")),
            digest: root.digest,
        })
    }
}

/// Pushes one piece of an artifact: a manifest under `reference`, or a blob (skipped when the
/// registry has it). Here, not in `push.rs`, so the registry client knows nothing of artifacts.
fn push_content(client: &RegistryClient, repo: &str, reference: &str, c: &Content) -> Result<()> {
    if c.is_manifest {
        let bytes = c.blob.to_vec()?;
        client
            .put_manifest(repo, reference, &c.media_type, &bytes)
            .map(|_| ())
    } else {
        client.push_blob(repo, &c.digest, &c.blob)
    }
}

impl Artifact for BuiltImage {
    fn root(&self) -> Content {
        manifest_content(self)
    }

    fn contents(&self) -> Vec<Content> {
        let mut out = Vec::new();
        image_blobs(self, &mut out);
        dedup(out)
    }
}

impl Artifact for BuiltIndex {
    fn root(&self) -> Content {
        Content {
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            blob: Blob::from_vec(self.index.clone()),
            is_manifest: true,
        }
    }

    fn contents(&self) -> Vec<Content> {
        let mut out = Vec::new();
        for child in self.children() {
            image_blobs(child, &mut out);
            out.push(manifest_content(child));
        }
        dedup(out)
    }
}

fn manifest_content(image: &BuiltImage) -> Content {
    Content {
        digest: image.manifest_digest.clone(),
        media_type: image.manifest_media_type.clone(),
        blob: Blob::from_vec(image.manifest.clone()),
        is_manifest: true,
    }
}

fn image_blobs(image: &BuiltImage, out: &mut Vec<Content>) {
    for l in &image.layers {
        out.push(Content {
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            blob: l.blob().clone(),
            is_manifest: false,
        });
    }
    out.push(Content {
        digest: image.config_digest.clone(),
        media_type: image.config_media_type.clone(),
        blob: Blob::from_vec(image.config.clone()),
        is_manifest: false,
    });
}

fn dedup(contents: Vec<Content>) -> Vec<Content> {
    let mut seen = std::collections::BTreeSet::new();
    contents
        .into_iter()
        .filter(|c| seen.insert(c.digest.clone()))
        .collect()
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

/// The files of an OCI layout, in archive order: `oci-layout`, `index.json`, then blobs sorted.
fn layout_files(
    root: &Content,
    contents: &[Content],
    tag: Option<&str>,
) -> Result<Vec<(String, Blob)>> {
    let mut entry = descriptor(&root.media_type, &root.digest, root.blob.len());
    if let Some(t) = tag {
        entry.annotations = Some(BTreeMap::from([(REF_NAME.to_string(), t.to_string())]));
    }
    let index = gantry_model::oci::ImageIndex {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_string()),
        manifests: vec![entry],
        annotations: None,
    };
    let mut files = vec![
        (
            "oci-layout".to_string(),
            Blob::from_vec(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ),
        (
            "index.json".to_string(),
            Blob::from_vec(json("index.json", &index)?),
        ),
    ];
    let mut blobs: BTreeMap<String, Blob> = contents
        .iter()
        .map(|c| (blob_path(&c.digest), c.blob.clone()))
        .collect();
    blobs.insert(blob_path(&root.digest), root.blob.clone());
    files.extend(blobs);
    Ok(files)
}

/// Layout of a `docker save` archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DockerArchiveStyle {
    /// Docker before 25: `<diffid hex>/layer.tar`, `<config hex>.json`, `manifest.json`, `repositories`.
    #[default]
    Legacy,
    /// Docker 25+: an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…`) whose manifest
    /// lists the uncompressed layer tars (`application/vnd.oci.image.layer.v1.tar`, digest =
    /// diff ID), plus `manifest.json` and `repositories` pointing into `blobs/`. That manifest
    /// is derived, so its digest differs from [`BuiltImage::manifest_digest`].
    OciBlobs,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl BuiltImage {
    /// Writes a legacy `docker save` archive ([`DockerArchiveStyle::Legacy`]). Layers are
    /// uncompressed tars, as `docker save` writes them. `repo_tag` is `"name:tag"` (`:latest`
    /// added when no tag is given); `None` writes `"RepoTags": null` and no `repositories`.
    pub fn write_docker_archive(&self, file: &Path, repo_tag: Option<&str>) -> Result<()> {
        self.write_docker_archive_with(file, repo_tag, DockerArchiveStyle::Legacy)
    }

    /// Writes a `docker save` archive in the given style.
    pub fn write_docker_archive_with(
        &self,
        file: &Path,
        repo_tag: Option<&str>,
        style: DockerArchiveStyle,
    ) -> Result<()> {
        let tagged = repo_tag.map(split_repo_tag);
        let repo_tags = tagged.as_ref().map(|(r, t)| vec![format!("{r}:{t}")]);
        let mut tar = TarOut::create(file)?;
        let mut layer_paths = Vec::new();
        let mut written = std::collections::BTreeSet::new();
        let config_path = match style {
            DockerArchiveStyle::Legacy => format!("{}.json", self.config_digest.hex()),
            DockerArchiveStyle::OciBlobs => blob_path(&self.config_digest),
        };
        if style == DockerArchiveStyle::OciBlobs {
            tar.dir("blobs/")?;
            tar.dir("blobs/sha256/")?;
        }
        for l in &self.layers {
            let hex = l.diff_id.hex();
            let path = match style {
                DockerArchiveStyle::Legacy => format!("{hex}/layer.tar"),
                DockerArchiveStyle::OciBlobs => blob_path(&l.diff_id),
            };
            if written.insert(path.clone()) {
                if style == DockerArchiveStyle::Legacy {
                    tar.dir(&format!("{hex}/"))?;
                    tar.bytes(&format!("{hex}/VERSION"), b"1.0")?;
                }
                tar.stream(&path, l.uncompressed_size, &l.diff_id, |w| l.write_tar(w))?;
            }
            layer_paths.push(path);
        }
        tar.bytes(&config_path, &self.config)?;
        if style == DockerArchiveStyle::OciBlobs {
            let manifest = json(
                "docker-save OCI manifest",
                &ImageManifest {
                    schema_version: 2,
                    media_type: Some(media_type::OCI_MANIFEST.to_string()),
                    config: descriptor(
                        media_type::OCI_CONFIG,
                        &self.config_digest,
                        self.config.len() as u64,
                    ),
                    layers: self
                        .layers
                        .iter()
                        .map(|l| {
                            descriptor(media_type::OCI_LAYER_TAR, &l.diff_id, l.uncompressed_size)
                        })
                        .collect(),
                    annotations: None,
                    subject: None,
                    artifact_type: None,
                },
            )?;
            let digest = sha256(&manifest);
            tar.bytes(&blob_path(&digest), &manifest)?;
            let mut entry = descriptor(media_type::OCI_MANIFEST, &digest, manifest.len() as u64);
            if let Some((repo, tag)) = &tagged {
                let full = format!("{repo}:{tag}")
                    .parse::<ImageRef>()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| format!("{repo}:{tag}"));
                entry.annotations = Some(BTreeMap::from([
                    ("io.containerd.image.name".to_string(), full),
                    (REF_NAME.to_string(), tag.clone()),
                ]));
            }
            let index = gantry_model::oci::ImageIndex {
                schema_version: 2,
                media_type: Some(media_type::OCI_INDEX.to_string()),
                manifests: vec![entry],
                annotations: None,
            };
            tar.bytes("index.json", &json("index.json", &index)?)?;
        }
        let entries = [DockerManifestEntry {
            config: config_path,
            repo_tags,
            layers: layer_paths.clone(),
        }];
        tar.bytes("manifest.json", &json("manifest.json", &entries)?)?;
        if style == DockerArchiveStyle::OciBlobs {
            tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if let (Some((repo, tag)), Some(top)) = (&tagged, self.layers.last()) {
            // `repositories` maps repo → tag → top layer ID (legacy v1 metadata).
            let repos = BTreeMap::from([(
                repo.clone(),
                BTreeMap::from([(tag.clone(), top.diff_id.hex().to_string())]),
            )]);
            tar.bytes("repositories", &json("repositories", &repos)?)?;
        }
        tar.finish()
    }
}

/// `"host:5000/name:tag"` → (`"host:5000/name"`, `"tag"`); no tag → `latest`.
fn split_repo_tag(s: &str) -> (String, String) {
    match s.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (s.to_string(), "latest".to_string()),
    }
}

/// A tar file being written with fixed metadata.
struct TarOut {
    builder: tar::Builder<BufWriter<File>>,
    path: String,
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl TarOut {
    fn create(file: &Path) -> Result<TarOut> {
        let f = File::create(file).ctx(|| format!("creating {}", file.display()))?;
        Ok(TarOut {
            builder: tar::Builder::new(BufWriter::new(f)),
            path: file.display().to_string(),
        })
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        self.builder
            .append_data(&mut h, name, io::empty())
            .ctx(|| format!("writing {name} into {}", self.path))
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
        self.builder
            .append_data(&mut h, name, data)
            .ctx(|| format!("writing {name} into {}", self.path))
    }

    fn blob(&mut self, name: &str, blob: &Blob) -> Result<()> {
        let mut h = header(tar::EntryType::Regular, blob.len(), 0o644);
        let r = blob.reader()?;
        self.builder
            .append_data(&mut h, name, r)
            .ctx(|| format!("writing {name} into {}", self.path))
    }

    /// An entry whose data is produced by a writer callback (a layer tar regenerated from its
    /// recipe, which may be far too large for memory). The header goes first with the known
    /// size; the produced bytes are counted and hashed to prove they match it.
    fn stream(
        &mut self,
        name: &str,
        size: u64,
        expect: &Digest,
        f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<()> {
        let mut h = header(tar::EntryType::Regular, size, 0o644);
        h.set_path(name).ctx(|| format!("entry name {name}"))?;
        h.set_cksum();
        let out = self.builder.get_mut();
        out.write_all(h.as_bytes())
            .ctx(|| format!("writing {name} into {}", self.path))?;
        let mut hw = HashWriter::new(&mut *out);
        f(&mut hw).ctx(|| format!("writing {name} into {}", self.path))?;
        let (_, digest, n) = hw.finish();
        if n != size || &digest != expect {
            return Err(Error::Recipe(format!(
                "layer {name} regenerated as {n} bytes {digest}, expected {size} bytes {expect}"
            )));
        }
        let rem = (size % 512) as usize;
        if rem != 0 {
            out.write_all(&[0u8; 512][..512 - rem])
                .ctx(|| format!("padding {name}"))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let path = self.path;
        let mut w = self
            .builder
            .into_inner()
            .ctx(|| format!("finishing {path}"))?;
        w.flush().ctx(|| format!("flushing {path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_repo_tags() {
        assert_eq!(
            split_repo_tag("a/b:1"),
            ("a/b".to_string(), "1".to_string())
        );
        assert_eq!(
            split_repo_tag("127.0.0.1:5000/b"),
            ("127.0.0.1:5000/b".to_string(), "latest".to_string())
        );
        assert_eq!(
            split_repo_tag("alpine"),
            ("alpine".to_string(), "latest".to_string())
        );
    }
}
