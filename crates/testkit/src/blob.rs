//! Content-addressed bytes: small ones in memory, large ones spilled to an unlinked-on-drop
//! temp file, so a "bomb" layer never has to fit in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;

use gantry_model::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::error::{IoContext, Result};

/// Above this many bytes a blob moves from memory to a temp file. Test images are mostly
/// tiny; only deliberately huge layers (zero bombs, many files) go to disk.
const SPILL_THRESHOLD: usize = 8 * 1024 * 1024;

/// Bytes of one blob (layer, config, manifest), cheap to clone.
#[derive(Debug, Clone)]
pub struct Blob {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Memory(Arc<Vec<u8>>),
    File { file: Arc<NamedTempFile>, len: u64 },
}

impl Blob {
    /// A blob held in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Blob {
        Blob {
            repr: Repr::Memory(Arc::new(bytes)),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match &self.repr {
            Repr::Memory(v) => v.len() as u64,
            Repr::File { len, .. } => *len,
        }
    }

    /// True when the blob has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A fresh reader over the whole blob.
    pub fn reader(&self) -> Result<Box<dyn Read + Send>> {
        match &self.repr {
            Repr::Memory(v) => Ok(Box::new(io::Cursor::new(SharedBytes(v.clone())))),
            Repr::File { file, .. } => {
                let path = file.path();
                let f =
                    File::open(path).ctx(|| format!("opening spilled blob {}", path.display()))?;
                Ok(Box::new(io::BufReader::new(f)))
            }
        }
    }

    /// The whole blob in memory (reads the temp file for spilled blobs).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        match &self.repr {
            Repr::Memory(v) => Ok(v.as_ref().clone()),
            Repr::File { .. } => {
                let mut out = Vec::new();
                self.reader()?
                    .read_to_end(&mut out)
                    .ctx(|| "reading spilled blob".to_string())?;
                Ok(out)
            }
        }
    }

    /// The in-memory bytes, when the blob was not spilled.
    pub fn as_slice(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Memory(v) => Some(v.as_slice()),
            Repr::File { .. } => None,
        }
    }

    /// SHA-256 digest of the bytes.
    pub fn digest(&self) -> Result<Digest> {
        let mut w = HashWriter::new(io::sink());
        io::copy(&mut self.reader()?, &mut w).ctx(|| "hashing blob".to_string())?;
        Ok(w.finish().1)
    }
}

struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// SHA-256 of a byte slice as a [`Digest`].
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &Sha256::digest(bytes))
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, Digest, u64) {
        let digest = Digest::from_bytes(DigestAlgorithm::Sha256, &self.hasher.finalize());
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Collects bytes in memory, moving to a temp file past [`SPILL_THRESHOLD`].
pub(crate) struct Spool {
    mem: Vec<u8>,
    file: Option<(NamedTempFile, io::BufWriter<File>)>,
    len: u64,
}

impl Spool {
    pub(crate) fn new() -> Spool {
        Spool {
            mem: Vec::new(),
            file: None,
            len: 0,
        }
    }

    pub(crate) fn into_blob(self) -> Result<Blob> {
        match self.file {
            None => Ok(Blob::from_vec(self.mem)),
            Some((tmp, mut w)) => {
                w.flush().ctx(|| "flushing spilled blob".to_string())?;
                Ok(Blob {
                    repr: Repr::File {
                        file: Arc::new(tmp),
                        len: self.len,
                    },
                })
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.mem.len() + buf.len() > SPILL_THRESHOLD {
            let tmp = NamedTempFile::new()?;
            let mut w = io::BufWriter::new(tmp.reopen()?);
            w.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some((tmp, w));
        }
        match &mut self.file {
            Some((_, w)) => w.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some((_, w)) => w.flush(),
            None => Ok(()),
        }
    }
}
