//! Files of local sources: a directory (OCI layout) or a tar archive (oci-archive,
//! docker-archive), behind one small `Store` trait.
//!
//! An archive is indexed once (entry path → data offset and size) by reading its headers; blobs
//! are then served by seeking into the file, so nothing is extracted and no layer is held in
//! memory.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use gantry_layer::header::{self as tar_header, BLOCK};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::RegistryError;
use crate::source::BlobStream;

/// Read access to the files of a layout or archive, by `/`-separated relative path.
#[async_trait::async_trait]
pub(crate) trait Store: Send + Sync + fmt::Debug {
    /// The directory or archive, for messages.
    fn location(&self) -> &Path;

    /// Size of the regular file at `path`, `None` when there is none.
    async fn size(&self, path: &str) -> Result<Option<u64>, RegistryError>;

    /// Streams the file at `path` (`NotFound` when absent).
    async fn open(&self, path: &str) -> Result<BlobStream, RegistryError>;
}

/// Reads a whole (small) file, failing with `TooLarge` past `limit` bytes.
pub(crate) async fn read_capped(
    store: &dyn Store,
    path: &str,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let size = store
        .size(path)
        .await?
        .ok_or_else(|| not_found(store, path))?;
    if size > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // limit + 1: a file that grew since it was measured is still caught.
    store
        .open(path)
        .await?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| RegistryError::io(store.location().join(path), e))?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Reads at most the first `n` bytes of a file (for sniffing compression).
pub(crate) async fn read_prefix(
    store: &dyn Store,
    path: &str,
    n: u64,
) -> Result<Vec<u8>, RegistryError> {
    let mut bytes = Vec::new();
    store
        .open(path)
        .await?
        .take(n)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| RegistryError::io(store.location().join(path), e))?;
    Ok(bytes)
}

pub(crate) fn not_found(store: &dyn Store, path: &str) -> RegistryError {
    RegistryError::NotFound {
        what: "file",
        reference: format!("{} in {}", path, store.location().display()),
    }
}

/// An OCI layout directory.
#[derive(Debug)]
pub(crate) struct DirStore {
    /// Canonical path of the directory: every file served must resolve inside it.
    root: PathBuf,
}

impl DirStore {
    pub(crate) async fn open(dir: &Path) -> Result<DirStore, RegistryError> {
        let root = tokio::fs::canonicalize(dir)
            .await
            .map_err(|e| RegistryError::io(dir, e))?;
        let meta = tokio::fs::metadata(&root)
            .await
            .map_err(|e| RegistryError::io(dir, e))?;
        if !meta.is_dir() {
            return Err(RegistryError::MalformedImage {
                reason: format!(
                    "{} is not a directory (an OCI layout is one; use oci-archive: for a tar)",
                    dir.display()
                ),
            });
        }
        Ok(DirStore { root })
    }

    /// Resolves `path` to a regular file inside the layout. Paths are built by this crate from
    /// fixed names and validated digests, so they hold no `..`; what is checked here is that
    /// symlinks inside the layout do not lead out of it.
    async fn resolve(&self, path: &str) -> Result<Option<(PathBuf, u64)>, RegistryError> {
        let joined = self.root.join(path);
        let real = match tokio::fs::canonicalize(&joined).await {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io(joined, e)),
        };
        if !real.starts_with(&self.root) {
            return Err(RegistryError::MalformedImage {
                reason: format!(
                    "{} resolves to {}, outside the layout {}",
                    path,
                    real.display(),
                    self.root.display()
                ),
            });
        }
        let meta = tokio::fs::metadata(&real)
            .await
            .map_err(|e| RegistryError::io(&real, e))?;
        if !meta.is_file() {
            return Err(RegistryError::MalformedImage {
                reason: format!(
                    "{} in layout {} is not a regular file",
                    path,
                    self.root.display()
                ),
            });
        }
        Ok(Some((real, meta.len())))
    }
}

#[async_trait::async_trait]
impl Store for DirStore {
    fn location(&self) -> &Path {
        &self.root
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, RegistryError> {
        Ok(self.resolve(path).await?.map(|(_, len)| len))
    }

    async fn open(&self, path: &str) -> Result<BlobStream, RegistryError> {
        let (real, _) = self
            .resolve(path)
            .await?
            .ok_or_else(|| not_found(self, path))?;
        let file = tokio::fs::File::open(&real)
            .await
            .map_err(|e| RegistryError::io(&real, e))?;
        Ok(Box::pin(file))
    }
}

/// A tar archive, indexed once.
#[derive(Debug)]
pub(crate) struct TarStore {
    file: PathBuf,
    index: TarIndex,
}

impl TarStore {
    pub(crate) async fn open(file: &Path) -> Result<TarStore, RegistryError> {
        let path = file.to_path_buf();
        let index = tokio::task::spawn_blocking(move || TarIndex::build(&path))
            .await
            .map_err(|e| RegistryError::io(file, io::Error::other(e)))??;
        Ok(TarStore {
            file: file.to_path_buf(),
            index,
        })
    }

    /// Paths of all regular files (and links resolved to them), for diagnostics and tests.
    #[cfg(test)]
    pub(crate) fn paths(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.index.files.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

#[async_trait::async_trait]
impl Store for TarStore {
    fn location(&self) -> &Path {
        &self.file
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, RegistryError> {
        Ok(self.index.get(path).map(|e| e.size))
    }

    async fn open(&self, path: &str) -> Result<BlobStream, RegistryError> {
        let entry = self.index.get(path).ok_or_else(|| not_found(self, path))?;
        let mut file = tokio::fs::File::open(&self.file)
            .await
            .map_err(|e| RegistryError::io(&self.file, e))?;
        file.seek(SeekFrom::Start(entry.offset))
            .await
            .map_err(|e| RegistryError::io(&self.file, e))?;
        Ok(Box::pin(file.take(entry.size)))
    }
}

/// Most entries an archive may have. An image archive holds one file per blob plus a few
/// metadata files and directories: even 50 platforms × 128 layers (the overlay limit) stays
/// far below this, while the index (≈ 100 bytes per entry) stays a few MiB.
const MAX_ENTRIES: usize = 100_000;
/// Longest entry or link path accepted (Linux `PATH_MAX`). Image archive paths are short
/// (`blobs/sha256/<64 hex>`); this bounds what a GNU long-name entry makes us read.
const MAX_PATH_BYTES: u64 = 4096;
/// Most path bytes of all entries together: keeps the index small (a few MiB) even when every
/// entry uses a long name.
const MAX_TOTAL_PATH_BYTES: usize = 16 << 20;
/// Largest PAX extended header read: a few keywords (path, linkpath, size, times) fit in far
/// less; this bounds what a hostile `x` entry makes us read.
const MAX_PAX_BYTES: u64 = 64 * 1024;
/// Symlink and hard-link hops followed when resolving a path (Docker's legacy `docker save`
/// writes `<id>/layer.tar` symlinks to the first copy of a shared layer: one hop).
const MAX_LINK_HOPS: usize = 16;

/// Where a file's data lies in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TarFile {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Default)]
struct TarIndex {
    files: HashMap<String, TarFile>,
}

enum Kind {
    File(TarFile),
    Link { target: String },
}

impl TarIndex {
    fn get(&self, path: &str) -> Option<TarFile> {
        self.files.get(path).copied()
    }

    /// Reads every header of the archive (seeking over file data) and records regular files;
    /// symlinks and hard links are resolved to the files they name.
    ///
    /// The loop is ours rather than `tar::Archive`'s so that GNU long names and PAX headers are
    /// read only up to a limit (the tar crate reads them whole) and PAX `size` records are
    /// honoured (layers over 8 GiB carry their size there). Numeric fields, the checksum and PAX
    /// records are parsed by gantry-layer's tar header parser (`gantry_layer::header`), the
    /// same code the layer walk uses; the tar crate gives the plain fields (type, names).
    fn build(path: &Path) -> Result<TarIndex, RegistryError> {
        let bad = |reason: String| RegistryError::Archive {
            path: path.to_path_buf(),
            reason,
        };
        let io_err = |e: io::Error| RegistryError::io(path, e);
        let mut file = std::fs::File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();

        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io_err)?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            return Err(bad(
                "is gzip-compressed; decompress it first (gunzip)".into()
            ));
        }
        if n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(bad(
                "is zstd-compressed; decompress it first (unzstd)".into()
            ));
        }

        let mut entries: HashMap<String, Kind> = HashMap::new();
        let mut pos = 0u64;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Vec<u8>> = None;
        let mut count = 0usize;
        let mut path_bytes = 0usize;
        let mut header = [0u8; BLOCK as usize];
        loop {
            if pos + BLOCK > len {
                if pos == len {
                    break; // no end-of-archive blocks: tolerated, as GNU tar does
                }
                return Err(bad(format!(
                    "truncated: header at byte {pos} runs past the end ({len} bytes)"
                )));
            }
            file.seek(SeekFrom::Start(pos)).map_err(io_err)?;
            file.read_exact(&mut header).map_err(io_err)?;
            if header.iter().all(|&b| b == 0) {
                break; // end-of-archive marker
            }
            count += 1;
            if count > MAX_ENTRIES {
                return Err(bad(format!("more than {MAX_ENTRIES} entries")));
            }
            let h = tar::Header::from_byte_slice(&header);
            tar_header::check_checksum(&header)
                .map_err(|m| bad(format!("{m} (header at byte {pos})")))?;
            let pax_records = pax.take();
            let mut size = tar_header::parse_numeric(&h.as_old().size)
                .ok_or_else(|| bad(format!("bad size in header at byte {pos}")))?;
            let mut name: Option<Vec<u8>> = long_name.take();
            let mut link: Option<Vec<u8>> = long_link.take();
            let typ = h.entry_type();
            let is_extension = typ.is_gnu_longname()
                || typ.is_gnu_longlink()
                || typ.is_pax_local_extensions()
                || typ.is_pax_global_extensions();
            if let Some(records) = pax_records.as_deref().filter(|_| !is_extension) {
                let records = tar_header::parse_pax(records)
                    .map_err(|m| bad(format!("bad PAX header before byte {pos}: {m}")))?;
                name = records.path.or(name);
                link = records.linkpath.or(link);
                size = records.size.unwrap_or(size);
            }
            let data = pos + BLOCK;
            let end = data.checked_add(size).filter(|&e| e <= len).ok_or_else(|| {
                bad(format!("truncated: entry at byte {pos} claims {size} bytes, past the end ({len} bytes)"))
            })?;
            let mut read_ext = |limit: u64, what: &str| -> Result<Vec<u8>, RegistryError> {
                if size > limit {
                    return Err(bad(format!(
                        "{what} at byte {pos} is {size} bytes, over the limit of {limit}"
                    )));
                }
                let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
                file.read_exact(&mut buf).map_err(io_err)?;
                Ok(buf)
            };
            if typ.is_gnu_longname() {
                long_name = Some(
                    tar_header::c_string(&read_ext(MAX_PATH_BYTES, "GNU long name")?).to_vec(),
                );
            } else if typ.is_gnu_longlink() {
                long_link = Some(
                    tar_header::c_string(&read_ext(MAX_PATH_BYTES, "GNU long link name")?).to_vec(),
                );
            } else if typ.is_pax_local_extensions() {
                pax = Some(read_ext(MAX_PAX_BYTES, "PAX header")?);
            } else if typ.is_pax_global_extensions() {
                // Global records (comments, mtimes) never change paths in image archives.
            } else {
                let name = name.unwrap_or_else(|| h.path_bytes().into_owned());
                if name.len() as u64 > MAX_PATH_BYTES {
                    return Err(bad(format!(
                        "path of entry at byte {pos} is longer than {MAX_PATH_BYTES} bytes"
                    )));
                }
                path_bytes += name.len();
                if path_bytes > MAX_TOTAL_PATH_BYTES {
                    return Err(bad(format!(
                        "entry paths add up to more than {MAX_TOTAL_PATH_BYTES} bytes"
                    )));
                }
                if let Some(key) = normalize(&name) {
                    let link = || {
                        link.clone()
                            .or_else(|| h.link_name_bytes().map(|c| c.into_owned()))
                    };
                    let kind = match typ {
                        tar::EntryType::Regular | tar::EntryType::Continuous => {
                            Some(Kind::File(TarFile { offset: data, size }))
                        }
                        tar::EntryType::Link => link()
                            .and_then(|t| normalize(&t))
                            .map(|target| Kind::Link { target }),
                        tar::EntryType::Symlink => link()
                            .and_then(|t| resolve_symlink(&key, &t))
                            .map(|target| Kind::Link { target }),
                        // Directories, devices, fifos and sparse files are never image blobs.
                        _ => None,
                    };
                    match kind {
                        Some(kind) => {
                            entries.insert(key, kind);
                        }
                        None => {
                            // A later non-file entry replaces an earlier file of that path.
                            entries.remove(&key);
                        }
                    }
                }
            }
            // Data is padded to whole blocks.
            pos = end
                .checked_add(BLOCK - 1)
                .map(|e| e / BLOCK * BLOCK)
                .ok_or_else(|| bad("size overflow".into()))?;
        }

        let mut files = HashMap::with_capacity(entries.len());
        for (path, kind) in &entries {
            let mut current = kind;
            let mut hops = 0;
            let resolved = loop {
                match current {
                    Kind::File(f) => break Some(*f),
                    Kind::Link { target } => {
                        hops += 1;
                        match entries.get(target) {
                            Some(next) if hops <= MAX_LINK_HOPS => current = next,
                            _ => break None,
                        }
                    }
                }
            };
            match resolved {
                Some(f) => {
                    files.insert(path.clone(), f);
                }
                None => {
                    tracing::debug!(archive = %path, "dangling or looping link in archive ignored")
                }
            }
        }
        Ok(TarIndex { files })
    }
}

/// `./a//b/` → `a/b`; `None` for non-UTF-8, empty or `..`-containing paths (never one of the
/// names an image archive uses).
fn normalize(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// Resolves a symlink target against the link's directory, staying inside the archive.
fn resolve_symlink(link: &str, target: &[u8]) -> Option<String> {
    let target = std::str::from_utf8(target).ok()?;
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = link.split('/').collect();
        p.pop();
        p
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(path: &str, typ: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(typ);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let bytes = b.into_inner().unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        f
    }

    async fn read(store: &TarStore, path: &str) -> Vec<u8> {
        read_capped(store, path, 1 << 20, path).await.unwrap()
    }

    #[tokio::test]
    async fn indexes_files_and_links() {
        let long = format!("blobs/sha256/{}", "a".repeat(200));
        let f = archive(|b| {
            b.append(
                &header("./index.json", tar::EntryType::Regular, 2),
                &b"{}"[..],
            )
            .unwrap();
            b.append(&header("blobs/", tar::EntryType::Directory, 0), io::empty())
                .unwrap();
            // GNU long name, written by the tar crate's append_data.
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_mode(0o644);
            b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
            let mut l = header("x/layer.tar", tar::EntryType::Symlink, 0);
            l.set_link_name("../y/layer.tar").unwrap();
            l.set_cksum();
            b.append(&l, io::empty()).unwrap();
            b.append(
                &header("y/layer.tar", tar::EntryType::Regular, 3),
                &b"abc"[..],
            )
            .unwrap();
            let mut hl = header("z", tar::EntryType::Link, 0);
            hl.set_link_name("y/layer.tar").unwrap();
            hl.set_cksum();
            b.append(&hl, io::empty()).unwrap();
            let mut esc = header("w", tar::EntryType::Symlink, 0);
            esc.set_link_name("../../etc/passwd").unwrap();
            esc.set_cksum();
            b.append(&esc, io::empty()).unwrap();
        });
        let store = TarStore::open(f.path()).await.unwrap();
        assert_eq!(
            store.paths(),
            vec![
                long.as_str(),
                "index.json",
                "x/layer.tar",
                "y/layer.tar",
                "z"
            ]
        );
        assert_eq!(read(&store, "index.json").await, b"{}");
        assert_eq!(read(&store, &long).await, b"hello");
        assert_eq!(read(&store, "x/layer.tar").await, b"abc");
        assert_eq!(read(&store, "z").await, b"abc");
        assert_eq!(store.size("w").await.unwrap(), None);
        assert_eq!(
            store.open("nope").await.err().map(|e| e.code()),
            Some("not-found")
        );
        let e = read_capped(&store, "y/layer.tar", 2, "layer")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                RegistryError::TooLarge {
                    size: 3,
                    limit: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(read_prefix(&store, "y/layer.tar", 2).await.unwrap(), b"ab");
    }

    #[tokio::test]
    async fn honours_pax_path_and_size() {
        let f = archive(|b| {
            let records = b"20 path=pax/renamed\n";
            b.append(
                &header(
                    "PaxHeaders/x",
                    tar::EntryType::XHeader,
                    records.len() as u64,
                ),
                &records[..],
            )
            .unwrap();
            b.append(&header("short", tar::EntryType::Regular, 4), &b"data"[..])
                .unwrap();
        });
        let store = TarStore::open(f.path()).await.unwrap();
        assert_eq!(store.paths(), vec!["pax/renamed"]);
        assert_eq!(read(&store, "pax/renamed").await, b"data");
    }

    /// The index reads headers with gantry-layer's parser, as the layer walk does: PAX values
    /// may hold newlines (the record length decides), sizes may be base-256, and a bad
    /// checksum or a malformed PAX record is refused with what was wrong.
    #[tokio::test]
    async fn headers_are_read_by_the_layer_parser() {
        let f = archive(|b| {
            let records = b"12 path=a\nb\n";
            b.append(
                &header(
                    "PaxHeaders/x",
                    tar::EntryType::XHeader,
                    records.len() as u64,
                ),
                &records[..],
            )
            .unwrap();
            b.append(&header("short", tar::EntryType::Regular, 2), &b"nl"[..])
                .unwrap();
            // Size 4 in GNU base-256 instead of octal.
            let mut h = header("big", tar::EntryType::Regular, 0);
            let size = &mut h.as_mut_bytes()[124..136];
            size.fill(0);
            size[0] = 0x80;
            size[11] = 4;
            h.set_cksum();
            b.append(&h, &b"data"[..]).unwrap();
        });
        let store = TarStore::open(f.path()).await.unwrap();
        assert_eq!(store.paths(), vec!["a\nb", "big"]);
        assert_eq!(read(&store, "a\nb").await, b"nl");
        assert_eq!(read(&store, "big").await, b"data");

        let mut h = header("x", tar::EntryType::Regular, 0);
        h.as_mut_bytes()[0] = b'y';
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        let e = TarStore::open(f.path()).await.unwrap_err();
        assert_eq!(e.code(), "invalid-archive");
        assert!(e.to_string().contains("checksum"), "{e}");

        let f = archive(|b| {
            let records = b"99 path=a\n";
            b.append(
                &header(
                    "PaxHeaders/x",
                    tar::EntryType::XHeader,
                    records.len() as u64,
                ),
                &records[..],
            )
            .unwrap();
            b.append(&header("x", tar::EntryType::Regular, 0), io::empty())
                .unwrap();
        });
        let e = TarStore::open(f.path()).await.unwrap_err();
        assert_eq!(e.code(), "invalid-archive");
        assert!(e.to_string().contains("PAX record length 99"), "{e}");
    }

    #[tokio::test]
    async fn refuses_hostile_archives() {
        // A GNU long name over the limit is refused before it is read.
        let f = archive(|b| {
            let big = vec![b'a'; 5000];
            b.append(
                &header(
                    "././@LongLink",
                    tar::EntryType::GNULongName,
                    big.len() as u64,
                ),
                &big[..],
            )
            .unwrap();
            b.append(&header("x", tar::EntryType::Regular, 0), io::empty())
                .unwrap();
        });
        let e = TarStore::open(f.path()).await.unwrap_err();
        assert!(e.to_string().contains("GNU long name"), "{e}");

        // An entry claiming more bytes than the file has.
        let mut bytes = header("x", tar::EntryType::Regular, 1 << 40)
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        let e = TarStore::open(f.path()).await.unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");

        // Garbage instead of a header.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&[7u8; 1024]).unwrap();
        let e = TarStore::open(f.path()).await.unwrap_err();
        assert_eq!(e.code(), "invalid-archive");

        // A gzip-compressed archive gets a precise message.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&[0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let e = TarStore::open(f.path()).await.unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e}");

        let e = TarStore::open(Path::new("/nonexistent/archive.tar"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "io-error");
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize(b"./a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalize(b"/a").as_deref(), Some("a"));
        assert_eq!(normalize(b"a/../b"), None);
        assert_eq!(normalize(b"./"), None);
        assert_eq!(resolve_symlink("a/b/c", b"../d").as_deref(), Some("a/d"));
        assert_eq!(resolve_symlink("a/b", b"/x/y").as_deref(), Some("x/y"));
        assert_eq!(resolve_symlink("a", b"../../x"), None);
    }

    #[tokio::test]
    async fn dir_store_stays_inside_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::fs::write(dir.path().join("ok"), b"ok").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("escape"))
            .unwrap();
        std::os::unix::fs::symlink("ok", dir.path().join("inner")).unwrap();
        let store = DirStore::open(dir.path()).await.unwrap();
        assert_eq!(read_capped(&store, "ok", 10, "ok").await.unwrap(), b"ok");
        assert_eq!(
            read_capped(&store, "inner", 10, "inner").await.unwrap(),
            b"ok"
        );
        assert_eq!(
            store.size("escape").await.unwrap_err().code(),
            "malformed-image"
        );
        assert_eq!(
            store.size("sub").await.unwrap_err().code(),
            "malformed-image"
        );
        assert_eq!(store.size("missing").await.unwrap(), None);
        assert_eq!(
            DirStore::open(&dir.path().join("ok"))
                .await
                .unwrap_err()
                .code(),
            "malformed-image"
        );
    }
}
