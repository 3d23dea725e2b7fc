use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use gantry_model::Digest;
use gantry_scan::{CachedLayer, LayerCache};
use serde::{Deserialize, Serialize};

/// Entry format version; a different version is a miss.
const FORMAT: u32 = 1;

/// Entries larger than this are treated as corrupt. A layer report holds one line per file;
/// the walker caps a layer at 2 million entries, which serialises to well under 1 GiB.
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// The per-layer cache on the local filesystem: `ROOT/layers/FINGERPRINT/ALG/HEX.json`.
#[derive(Debug, Clone)]
pub struct DirLayerCache {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    fingerprint: String,
    layer: Digest,
    value: CachedLayer,
}

/// `$GANTRY_CACHE_DIR`, else `$XDG_CACHE_HOME/gantry`, else `~/.cache/gantry`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GANTRY_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("gantry"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("gantry"))
}

impl DirLayerCache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> DirLayerCache {
        DirLayerCache { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, fingerprint: &str, layer: &Digest) -> PathBuf {
        // Both parts are validated (the fingerprint is ours, the digest is lowercase hex), so
        // they are safe as path components.
        self.root
            .join("layers")
            .join(fingerprint)
            .join(layer.algorithm().as_str())
            .join(format!("{}.json", layer.hex()))
    }

    fn read(
        &self,
        path: &Path,
        fingerprint: &str,
        layer: &Digest,
    ) -> Result<Option<CachedLayer>, String> {
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return Err("entry too large".to_string());
        }
        let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if entry.format != FORMAT || entry.fingerprint != fingerprint || entry.layer != *layer {
            return Err("entry does not match its key".to_string());
        }
        if entry.value.stats.digest != *layer {
            return Err("entry describes another layer".to_string());
        }
        Ok(Some(entry.value))
    }

    fn write(&self, path: &Path, entry: &Entry) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), entry)?;
        tmp.as_file_mut().flush()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

impl LayerCache for DirLayerCache {
    fn get(&self, fingerprint: &str, layer: &Digest) -> Option<CachedLayer> {
        let path = self.path(fingerprint, layer);
        match self.read(&path, fingerprint, layer) {
            Ok(hit) => hit,
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "discarding corrupt layer-cache entry; the layer will be walked again");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    fn put(&self, fingerprint: &str, layer: &Digest, value: &CachedLayer) {
        let path = self.path(fingerprint, layer);
        let entry = Entry {
            format: FORMAT,
            fingerprint: fingerprint.to_string(),
            layer: layer.clone(),
            value: value.clone(),
        };
        if let Err(e) = self.write(&path, &entry) {
            tracing::warn!(path = %path.display(), error = %e, "could not write layer-cache entry");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gantry_analyze::LayerReport;
    use gantry_model::DigestAlgorithm;
    use gantry_model::fs::{EntryKind, FileEntry};
    use gantry_scan::WalkStats;

    use super::*;

    fn value(digest: &Digest) -> CachedLayer {
        CachedLayer {
            stats: WalkStats {
                digest: digest.clone(),
                diff_id: Digest::from_bytes(DigestAlgorithm::Sha256, &[2; 32]),
                compressed_size: 10,
                uncompressed_size: 20,
                entries: 1,
            },
            report: LayerReport {
                files: vec![FileEntry {
                    path: "etc/passwd".into(),
                    kind: EntryKind::File,
                    size: 5,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    link_target: None,
                }],
                ..LayerReport::default()
            },
        }
    }

    #[test]
    fn round_trips_and_survives_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::from_bytes(DigestAlgorithm::Sha256, &[1; 32]);
        let cache = DirLayerCache::new(dir.path());
        assert_eq!(cache.get("v1-x", &d), None);
        cache.put("v1-x", &d, &value(&d));
        let reopened = DirLayerCache::new(dir.path());
        assert_eq!(reopened.get("v1-x", &d), Some(value(&d)));
        assert_eq!(
            reopened.get("v1-other", &d),
            None,
            "another fingerprint is another key"
        );
    }

    #[test]
    fn corrupt_entry_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::from_bytes(DigestAlgorithm::Sha256, &[1; 32]);
        let cache = DirLayerCache::new(dir.path());
        cache.put("v1-x", &d, &value(&d));
        let path = cache.path("v1-x", &d);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(cache.get("v1-x", &d), None);
        assert!(!path.exists());
        // An entry filed under the wrong key is refused too.
        let other = Digest::from_bytes(DigestAlgorithm::Sha256, &[3; 32]);
        cache.put("v1-x", &other, &value(&d));
        assert_eq!(cache.get("v1-x", &other), None);
        // And the cache keeps working afterwards.
        cache.put("v1-x", &d, &value(&d));
        assert_eq!(cache.get("v1-x", &d), Some(value(&d)));
    }

    #[test]
    fn unwritable_root_is_only_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let cache = DirLayerCache::new(&file);
        let d = Digest::from_bytes(DigestAlgorithm::Sha256, &[1; 32]);
        cache.put("v1-x", &d, &value(&d));
        assert_eq!(cache.get("v1-x", &d), None);
    }
}
