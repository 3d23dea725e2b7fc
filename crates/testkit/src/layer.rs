//! [`LayerBuilder`]: a layer recipe (ordinary entries plus hostile ones on purpose) and its
//! rendering into a real tar, compressed with gzip, zstd or nothing.
//!
//! Entries are written in the order they are added — no sorting, no implied parent
//! directories — because tests about order (a whiteout before or after a file, duplicate
//! paths) need exact control. Every header has mtime 0, uid/gid 0 unless given, and empty
//! user/group names, so the same recipe always gives the same bytes and digests.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use gantry_model::Digest;
use gantry_model::oci::{Compression, media_type};
use tar::{EntryType, Header};

use crate::blob::{Blob, HashWriter, Spool};
use crate::error::{Error, IoContext, Result};

const BLOCK: usize = 512;

/// A recipe for one layer.
///
/// ```
/// use gantry_model::oci::Compression;
/// use gantry_testkit::LayerBuilder;
/// let layer = LayerBuilder::new(Compression::Gzip)
///     .dir("etc")
///     .file("etc/os-release", "ID=alpine\n")
///     .whiteout("etc/secret")
///     .build()?;
/// assert!(layer.size > 0);
/// # Ok::<(), gantry_testkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LayerBuilder {
    compression: Compression,
    entries: Vec<Entry>,
    damage: Damage,
    /// zstd window log of the encoder (and long-distance matching), when set.
    zstd_window_log: Option<u32>,
}

#[derive(Debug, Clone)]
enum Entry {
    Regular {
        path: Vec<u8>,
        data: Arc<[u8]>,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    Dir {
        path: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    Symlink {
        path: Vec<u8>,
        target: Vec<u8>,
    },
    Hardlink {
        path: Vec<u8>,
        target: Vec<u8>,
    },
    /// Character device (`kind` Char) or FIFO.
    Special {
        path: Vec<u8>,
        kind: EntryType,
        major: u32,
        minor: u32,
    },
    /// Name bytes copied into the ustar header as written, `..` and leading `/` included.
    RawPath {
        path: Vec<u8>,
        data: Arc<[u8]>,
    },
    PaxPath {
        path: Vec<u8>,
        data: Arc<[u8]>,
    },
    GnuPath {
        path: Vec<u8>,
        data: Arc<[u8]>,
    },
    /// Ends the stream: nothing after it is written.
    HugePax {
        claimed: u64,
    },
    Zeros {
        path: Vec<u8>,
        len: u64,
    },
    ManyFiles {
        prefix: String,
        n: u64,
    },
    /// A regular file whose content is read from disk while the tar is written, so layers
    /// made from real trees (a debootstrap rootfs, a pip install) never sit in memory.
    DiskFile {
        path: Vec<u8>,
        source: PathBuf,
        size: u64,
        mode: u32,
        uid: u64,
        gid: u64,
    },
}

/// Damage applied to the compressed blob after it is made. The descriptor digest and size are
/// those of the damaged bytes (so a registry accepts the push) while `diff_id` and
/// `uncompressed_size` stay those of the intact tar: readers meet the damage when they
/// decompress or walk, not at digest verification.
#[derive(Debug, Clone, Default)]
struct Damage {
    truncate: Option<u64>,
    corrupt: bool,
    garbage: Option<Vec<u8>>,
}

impl Damage {
    fn any(&self) -> bool {
        self.truncate.is_some() || self.corrupt || self.garbage.is_some()
    }
}

fn clean(path: &str) -> Vec<u8> {
    // Layers name entries relative to the root; "/etc/passwd" in a recipe means "etc/passwd".
    path.trim_start_matches('/').as_bytes().to_vec()
}

impl LayerBuilder {
    /// An empty layer with the given compression.
    pub fn new(compression: Compression) -> LayerBuilder {
        LayerBuilder {
            compression,
            entries: Vec::new(),
            damage: Damage::default(),
            zstd_window_log: None,
        }
    }

    /// The compression this layer's blob gets.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// A regular file, mode 0644, owned by root. A leading `/` is dropped.
    pub fn file(self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.file_owned(path, data, 0o644, 0, 0)
    }

    /// A regular file with a mode (e.g. `0o4755` for a setuid binary).
    pub fn file_mode(self, path: &str, data: impl AsRef<[u8]>, mode: u32) -> Self {
        self.file_owned(path, data, mode, 0, 0)
    }

    /// A regular file with mode and owner.
    pub fn file_owned(
        mut self,
        path: &str,
        data: impl AsRef<[u8]>,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Self {
        self.entries.push(Entry::Regular {
            path: clean(path),
            data: Arc::from(data.as_ref()),
            mode,
            uid,
            gid,
        });
        self
    }

    /// A directory, mode 0755 (written with a trailing `/`, as Docker and BuildKit do).
    pub fn dir(self, path: &str) -> Self {
        self.dir_owned(path, 0o755, 0, 0)
    }

    /// A directory with a mode (e.g. `0o1777` for `/tmp`) and owner.
    pub fn dir_owned(mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Self {
        let mut p = clean(path);
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        self.entries.push(Entry::Dir {
            path: p,
            mode,
            uid,
            gid,
        });
        self
    }

    /// A symbolic link; `target` is written as given (absolute and `..` targets allowed).
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(Entry::Symlink {
            path: clean(path),
            target: target.as_bytes().to_vec(),
        });
        self
    }

    /// A hard link to `target` (another entry of a layer), written as given.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(Entry::Hardlink {
            path: clean(path),
            target: target.as_bytes().to_vec(),
        });
        self
    }

    /// A character device node (e.g. `dev/null` is 1, 3), mode 0666.
    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        self.entries.push(Entry::Special {
            path: clean(path),
            kind: EntryType::Char,
            major,
            minor,
        });
        self
    }

    /// A named pipe, mode 0644.
    pub fn fifo(mut self, path: &str) -> Self {
        self.entries.push(Entry::Special {
            path: clean(path),
            kind: EntryType::Fifo,
            major: 0,
            minor: 0,
        });
        self
    }

    /// A whiteout: deletes `path` from lower layers by writing the empty file `dir/.wh.name`.
    pub fn whiteout(self, path: &str) -> Self {
        let p = path.trim_start_matches('/').trim_end_matches('/');
        let wh = match p.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{p}"),
        };
        self.file(&wh, [])
    }

    /// An opaque whiteout: hides everything below `dir` in lower layers (`dir/.wh..wh..opq`).
    pub fn opaque(self, dir: &str) -> Self {
        let d = dir.trim_start_matches('/').trim_end_matches('/');
        let p = if d.is_empty() {
            ".wh..wh..opq".to_string()
        } else {
            format!("{d}/.wh..wh..opq")
        };
        self.file(&p, [])
    }

    /// Hostile: a regular file whose ustar name field holds `path` byte for byte
    /// (`"../evil"`, `"/etc/x"`, `"a/../../b"`), truncated to the field's 100 bytes.
    pub fn raw_path_file(mut self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.entries.push(Entry::RawPath {
            path: path.as_bytes().to_vec(),
            data: Arc::from(data.as_ref()),
        });
        self
    }

    /// A regular file whose name is carried by a PAX `x` header (`path=` record), however long
    /// it is; the ustar name holds a truncated placeholder, as Go's archive/tar writes it.
    pub fn pax_long_path(mut self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.entries.push(Entry::PaxPath {
            path: clean(path),
            data: Arc::from(data.as_ref()),
        });
        self
    }

    /// A regular file whose name is carried by a GNU `L` (`././@LongLink`) header.
    pub fn gnu_long_path(mut self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.entries.push(Entry::GnuPath {
            path: clean(path),
            data: Arc::from(data.as_ref()),
        });
        self
    }

    /// Hostile: a PAX header whose size field claims `claimed_size` bytes (e.g. 8 GiB), followed
    /// by 1 KiB of records and then the end of the stream — no more entries, no end-of-archive
    /// blocks. A reader that trusts the size allocates or waits for bytes that never come.
    /// Entries added after this one are not written.
    pub fn huge_pax_header(mut self, claimed_size: u64) -> Self {
        self.entries.push(Entry::HugePax {
            claimed: claimed_size,
        });
        self
    }

    /// Compresses a zstd layer as `zstd --long=LOG` does: a window of 2^`log` bytes (and
    /// long-distance matching), which the frame header asks every decoder to allocate.
    /// Level 3, BuildKit's default, uses 2^21; `--long` 2^27; the format allows 2^31.
    pub fn zstd_window_log(mut self, log: u32) -> Self {
        self.zstd_window_log = Some(log);
        self
    }

    /// A regular file of `len` zero bytes, streamed when the layer is built (never held in
    /// memory): with gzip or zstd it is a decompression bomb.
    pub fn zeros(mut self, path: &str, len: u64) -> Self {
        self.entries.push(Entry::Zeros {
            path: clean(path),
            len,
        });
        self
    }

    /// `n` empty regular files `prefix/0`, `prefix/1`, … (generated while writing, so
    /// millions cost no memory): for entry-count limits.
    pub fn many_files(mut self, prefix: &str, n: u64) -> Self {
        self.entries.push(Entry::ManyFiles {
            prefix: prefix
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string(),
            n,
        });
        self
    }

    /// Every entry of the directory tree `root` (recursively, sorted by path, so the same
    /// tree gives the same layer): directories, regular files (streamed from disk when the
    /// layer is written, with their mode, uid and gid), symlinks, and hard links (a second
    /// path to an inode already added becomes a link to the first). Sockets and devices are
    /// skipped: fixtures made from real root filesystems (debootstrap, pip/npm installs) never
    /// need them.
    pub fn from_dir(mut self, root: &std::path::Path) -> Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let mut stack = vec![root.to_path_buf()];
        let mut paths = Vec::new();
        while let Some(dir) = stack.pop() {
            let rd = std::fs::read_dir(&dir).ctx(|| format!("reading {}", dir.display()))?;
            for e in rd {
                let p = e.ctx(|| format!("reading {}", dir.display()))?.path();
                let md = std::fs::symlink_metadata(&p).ctx(|| format!("stat {}", p.display()))?;
                if md.is_dir() {
                    stack.push(p.clone());
                }
                paths.push(p);
            }
        }
        paths.sort();
        let mut inodes: std::collections::HashMap<(u64, u64), Vec<u8>> =
            std::collections::HashMap::new();
        for p in paths {
            let rel = p
                .strip_prefix(root)
                .map_err(|e| Error::Recipe(e.to_string()))?;
            let rel = rel.to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).ctx(|| format!("stat {}", p.display()))?;
            let ft = md.file_type();
            let mode = md.mode() & 0o7777;
            if ft.is_dir() {
                let mut path = clean(&rel);
                path.push(b'/');
                self.entries.push(Entry::Dir {
                    path,
                    mode,
                    uid: 0,
                    gid: 0,
                });
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&p).ctx(|| format!("readlink {}", p.display()))?;
                self.entries.push(Entry::Symlink {
                    path: clean(&rel),
                    target: target.to_string_lossy().as_bytes().to_vec(),
                });
            } else if ft.is_file() {
                let key = (md.dev(), md.ino());
                if md.nlink() > 1
                    && let Some(first) = inodes.get(&key)
                {
                    self.entries.push(Entry::Hardlink {
                        path: clean(&rel),
                        target: first.clone(),
                    });
                    continue;
                }
                inodes.insert(key, clean(&rel));
                self.entries.push(Entry::DiskFile {
                    path: clean(&rel),
                    source: p.clone(),
                    size: md.len(),
                    mode,
                    uid: u64::from(md.uid()),
                    gid: u64::from(md.gid()),
                });
            }
        }
        Ok(self)
    }

    /// Keeps only the first `len` bytes of the compressed blob (like `Vec::truncate`).
    pub fn truncate_blob(mut self, len: u64) -> Self {
        self.damage.truncate = Some(len);
        self
    }

    /// Flips (XOR 0xff) up to 8 bytes in the middle of the compressed blob.
    pub fn corrupt_blob(mut self) -> Self {
        self.damage.corrupt = true;
        self
    }

    /// Appends bytes after the end of the compressed stream.
    pub fn trailing_garbage(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.damage.garbage = Some(bytes.as_ref().to_vec());
        self
    }

    /// Renders the layer: the blob, its digest, and the diff ID of the uncompressed tar.
    /// The media type is the OCI one for the compression; [`crate::ImageBuilder`] sets the
    /// Docker one when asked.
    pub fn build(&self) -> Result<BuiltLayer> {
        let recipe = Some(Arc::new(self.clone()));
        let (blob, diff_id, uncompressed_size) = match self.compression {
            Compression::None => {
                let mut w = HashWriter::new(Spool::new());
                self.write_tar(&mut w)
                    .ctx(|| "writing layer tar".to_string())?;
                let (spool, diff_id, n) = w.finish();
                (spool.into_blob()?, diff_id, n)
            }
            Compression::Gzip => {
                // mtime 0 and OS "unknown" keep the gzip header, and so the digest, fixed.
                let enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(Spool::new(), flate2::Compression::default());
                let mut w = HashWriter::new(enc);
                self.write_tar(&mut w)
                    .ctx(|| "writing gzip layer".to_string())?;
                let (enc, diff_id, n) = w.finish();
                let spool = enc.finish().ctx(|| "finishing gzip stream".to_string())?;
                (spool.into_blob()?, diff_id, n)
            }
            Compression::Zstd => {
                let mut enc = zstd::Encoder::new(Spool::new(), 3)
                    .ctx(|| "starting zstd stream".to_string())?;
                if let Some(log) = self.zstd_window_log {
                    enc.window_log(log)
                        .and_then(|()| enc.long_distance_matching(true))
                        .ctx(|| format!("setting zstd window log {log}"))?;
                }
                let mut w = HashWriter::new(enc);
                self.write_tar(&mut w)
                    .ctx(|| "writing zstd layer".to_string())?;
                let (enc, diff_id, n) = w.finish();
                let spool = enc.finish().ctx(|| "finishing zstd stream".to_string())?;
                (spool.into_blob()?, diff_id, n)
            }
        };
        let blob = if self.damage.any() {
            self.damage(&blob)?
        } else {
            blob
        };
        Ok(BuiltLayer {
            digest: blob.digest()?,
            diff_id,
            media_type: layer_media_type(self.compression, false).to_string(),
            size: blob.len(),
            uncompressed_size,
            compression: self.compression,
            blob,
            recipe,
        })
    }

    fn damage(&self, blob: &Blob) -> Result<Blob> {
        let d = &self.damage;
        let len = d.truncate.map_or(blob.len(), |t| t.min(blob.len()));
        let flip = if d.corrupt {
            len / 2..(len / 2 + 8).min(len)
        } else {
            0..0
        };
        let mut out = Spool::new();
        let mut r = blob.reader()?.take(len);
        let mut buf = vec![0u8; 64 * 1024];
        let mut pos = 0u64;
        loop {
            let n = r
                .read(&mut buf)
                .ctx(|| "reading blob to damage".to_string())?;
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter_mut().enumerate() {
                if flip.contains(&(pos + i as u64)) {
                    *b ^= 0xff;
                }
            }
            pos += n as u64;
            out.write_all(&buf[..n])
                .ctx(|| "writing damaged blob".to_string())?;
        }
        if let Some(g) = &d.garbage {
            out.write_all(g).ctx(|| "appending garbage".to_string())?;
        }
        out.into_blob()
    }

    /// Writes the uncompressed tar stream of this recipe.
    pub fn write_tar(&self, w: &mut dyn Write) -> io::Result<()> {
        for e in &self.entries {
            match e {
                Entry::Regular {
                    path,
                    data,
                    mode,
                    uid,
                    gid,
                } => {
                    let mut h = ustar(EntryType::Regular, data.len() as u64, *mode);
                    h.set_uid(*uid);
                    h.set_gid(*gid);
                    write_named(w, h, path, None, data)?;
                }
                Entry::Dir {
                    path,
                    mode,
                    uid,
                    gid,
                } => {
                    let mut h = ustar(EntryType::Directory, 0, *mode);
                    h.set_uid(*uid);
                    h.set_gid(*gid);
                    write_named(w, h, path, None, &[])?
                }
                Entry::Symlink { path, target } => write_named(
                    w,
                    ustar(EntryType::Symlink, 0, 0o777),
                    path,
                    Some(target),
                    &[],
                )?,
                Entry::Hardlink { path, target } => {
                    write_named(w, ustar(EntryType::Link, 0, 0o644), path, Some(target), &[])?
                }
                Entry::Special {
                    path,
                    kind,
                    major,
                    minor,
                } => {
                    let mode = if *kind == EntryType::Char {
                        0o666
                    } else {
                        0o644
                    };
                    let mut h = ustar(*kind, 0, mode);
                    h.set_device_major(*major)?;
                    h.set_device_minor(*minor)?;
                    write_named(w, h, path, None, &[])?;
                }
                Entry::RawPath { path, data } => {
                    let mut h = ustar(EntryType::Regular, data.len() as u64, 0o644);
                    set_field(&mut h.as_old_mut().name, path);
                    write_entry(w, h, data)?;
                }
                Entry::PaxPath { path, data } => {
                    write_pax(w, path, &[(b"path", path)])?;
                    let mut h = ustar(EntryType::Regular, data.len() as u64, 0o644);
                    set_field(&mut h.as_old_mut().name, path);
                    write_entry(w, h, data)?;
                }
                Entry::GnuPath { path, data } => {
                    let mut long = path.clone();
                    long.push(0);
                    let mut lh = Header::new_gnu();
                    lh.set_entry_type(EntryType::GNULongName);
                    lh.set_size(long.len() as u64);
                    lh.set_mode(0o644);
                    set_field(&mut lh.as_old_mut().name, b"././@LongLink");
                    write_entry(w, lh, &long)?;
                    let mut h = Header::new_gnu();
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    set_field(&mut h.as_old_mut().name, path);
                    write_entry(w, h, data)?;
                }
                Entry::HugePax { claimed } => {
                    let mut h = ustar(EntryType::XHeader, *claimed, 0o644);
                    set_field(&mut h.as_old_mut().name, b"PaxHeaders.0/huge");
                    h.set_cksum();
                    w.write_all(h.as_bytes())?;
                    let mut records = format!("{claimed} path=").into_bytes();
                    records.resize(1024, b'a');
                    w.write_all(&records)?;
                    return Ok(());
                }
                Entry::Zeros { path, len } => {
                    write_pax_if_long(w, path, None)?;
                    let mut h = ustar(EntryType::Regular, *len, 0o644);
                    set_field(&mut h.as_old_mut().name, path);
                    h.set_cksum();
                    w.write_all(h.as_bytes())?;
                    io::copy(&mut io::repeat(0).take(*len), w)?;
                    pad(w, *len)?;
                }
                Entry::DiskFile {
                    path,
                    source,
                    size,
                    mode,
                    uid,
                    gid,
                } => {
                    write_pax_if_long(w, path, None)?;
                    let mut h = ustar(EntryType::Regular, *size, *mode);
                    h.set_uid(*uid);
                    h.set_gid(*gid);
                    set_field(&mut h.as_old_mut().name, path);
                    h.set_cksum();
                    w.write_all(h.as_bytes())?;
                    // Exactly `size` bytes, even if the file changed since it was listed: the
                    // header already promised that many.
                    let copied = io::copy(&mut std::fs::File::open(source)?.take(*size), w)?;
                    io::copy(&mut io::repeat(0).take(size - copied), w)?;
                    pad(w, *size)?;
                }
                Entry::ManyFiles { prefix, n } => {
                    for i in 0..*n {
                        let p = if prefix.is_empty() {
                            i.to_string()
                        } else {
                            format!("{prefix}/{i}")
                        };
                        write_named(
                            w,
                            ustar(EntryType::Regular, 0, 0o644),
                            p.as_bytes(),
                            None,
                            &[],
                        )?;
                    }
                }
            }
        }
        // End of archive: two zero blocks.
        w.write_all(&[0u8; 2 * BLOCK])
    }
}

/// The media type of a layer with this compression.
pub(crate) fn layer_media_type(c: Compression, docker: bool) -> &'static str {
    use media_type as m;
    match (c, docker) {
        (Compression::None, false) => m::OCI_LAYER_TAR,
        (Compression::Gzip, false) => m::OCI_LAYER_GZIP,
        (Compression::Zstd, false) => m::OCI_LAYER_ZSTD,
        (Compression::None, true) => m::DOCKER_LAYER_TAR,
        (Compression::Gzip, true) => m::DOCKER_LAYER_GZIP,
        (Compression::Zstd, true) => m::DOCKER_LAYER_ZSTD,
    }
}

fn ustar(kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// Copies `value` into a fixed-width header field, truncating, NUL-padding the rest.
fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes an entry with name (and link name), preceded by a PAX header when either is longer
/// than the 100-byte ustar field — Go's archive/tar (Docker, BuildKit) does the same.
fn write_named(
    w: &mut dyn Write,
    mut h: Header,
    path: &[u8],
    link: Option<&[u8]>,
    data: &[u8],
) -> io::Result<()> {
    write_pax_if_long(w, path, link)?;
    set_field(&mut h.as_old_mut().name, path);
    if let Some(l) = link {
        set_field(&mut h.as_old_mut().linkname, l);
    }
    write_entry(w, h, data)
}

fn write_pax_if_long(w: &mut dyn Write, path: &[u8], link: Option<&[u8]>) -> io::Result<()> {
    let mut records: Vec<(&[u8], &[u8])> = Vec::new();
    if path.len() > 100 {
        records.push((b"path", path));
    }
    if let Some(l) = link.filter(|l| l.len() > 100) {
        records.push((b"linkpath", l));
    }
    if records.is_empty() {
        Ok(())
    } else {
        write_pax(w, path, &records)
    }
}

fn write_pax(w: &mut dyn Write, path: &[u8], records: &[(&[u8], &[u8])]) -> io::Result<()> {
    let mut body = Vec::new();
    for (k, v) in records {
        body.extend_from_slice(&pax_record(k, v));
    }
    let base = path
        .rsplit(|b| *b == b'/')
        .find(|s| !s.is_empty())
        .unwrap_or(b"entry");
    let mut name = b"PaxHeaders.0/".to_vec();
    name.extend_from_slice(base);
    let mut h = ustar(EntryType::XHeader, body.len() as u64, 0o644);
    set_field(&mut h.as_old_mut().name, &name);
    write_entry(w, h, &body)
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `len` counts its own digits.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + base.to_string().len();
    if len.to_string().len() != base.to_string().len() {
        len = base + len.to_string().len();
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn write_entry(w: &mut dyn Write, mut h: Header, data: &[u8]) -> io::Result<()> {
    h.set_cksum();
    w.write_all(h.as_bytes())?;
    w.write_all(data)?;
    pad(w, data.len() as u64)
}

fn pad(w: &mut dyn Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 {
        Ok(())
    } else {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])
    }
}

/// A rendered layer.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// Digest of the blob as stored (compressed, damaged if asked).
    pub digest: Digest,
    /// Digest of the intact uncompressed tar (what the config's `rootfs.diff_ids` should say).
    pub diff_id: Digest,
    /// Media type of the descriptor.
    pub media_type: String,
    /// Size of the blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Compression of the blob.
    pub compression: Compression,
    blob: Blob,
    /// `None` for non-tar blobs (attestation statements): their "tar" is the blob itself.
    recipe: Option<Arc<LayerBuilder>>,
}

impl BuiltLayer {
    /// The blob bytes.
    pub fn blob(&self) -> &Blob {
        &self.blob
    }

    /// Streams the uncompressed tar (regenerated from the recipe, so even damaged or huge
    /// layers can be written out as plain tars).
    pub fn write_tar(&self, w: &mut dyn Write) -> io::Result<()> {
        match &self.recipe {
            Some(r) => r.write_tar(w),
            None => {
                let mut r = self.blob.reader().map_err(io::Error::other)?;
                io::copy(&mut r, w).map(|_| ())
            }
        }
    }

    /// The uncompressed tar in memory: only for small layers.
    pub fn tar_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.write_tar(&mut v)
            .ctx(|| "writing layer tar".to_string())?;
        Ok(v)
    }

    /// A non-tar blob used as a layer (an in-toto statement of an attestation manifest).
    pub(crate) fn from_bytes(bytes: Vec<u8>, media_type: &str) -> BuiltLayer {
        let digest = crate::blob::sha256(&bytes);
        let size = bytes.len() as u64;
        BuiltLayer {
            diff_id: digest.clone(),
            digest,
            media_type: media_type.to_string(),
            size,
            uncompressed_size: size,
            compression: Compression::None,
            blob: Blob::from_vec(bytes),
            recipe: None,
        }
    }

    pub(crate) fn with_media_type(mut self, mt: String) -> Self {
        self.media_type = mt;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record(b"path", b"a");
        assert_eq!(r, b"9 path=a\n");
        let v = vec![b'x'; 91];
        let r = pax_record(b"path", &v);
        assert_eq!(r.len().to_string(), String::from_utf8_lossy(&r[..3]));
    }
}
