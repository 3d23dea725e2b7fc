//! The tar walk: one pass over the uncompressed stream, pushing entries to the sink.
//!
//! Why not `tar::Archive::entries()`: it reads PAX and GNU long-name bodies fully into
//! memory with no size cap (a 512-byte header claiming 8 GiB is a header bomb). Its raw
//! mode (`entries()?.raw(true)`) avoids that but frames entries by the header's size field
//! only, so a PAX `size` record (how Go writes files over 8 GiB, and how a hostile layer
//! can make two parsers disagree about where the next header starts) cannot be honoured,
//! and GNU sparse extension blocks are misread as headers. So the framing loop is here,
//! reading 512-byte blocks from a `BufReader`; `tar::Header` still provides the field
//! layout (name, ustar prefix, link name, GNU sparse fields).
//!
//! The semantics follow Go's `archive/tar`, which containerd and Docker unpack layers with,
//! so the entries Gantry sees are the files the runtime creates: header-only types
//! (links, devices, directories, FIFOs) have no data whatever their size field says; a
//! PAX `x` header applies to the next entry; a PAX `g` header is validated but not applied
//! (Go returns it as an entry of its own and the runtime ignores it); a zero block followed
//! by a non-zero block is an error; end of stream at a header boundary ends the archive.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};

use gantry_model::fs::{EntryKind, FileEntry, Whiteout};
use gantry_model::oci::Compression;
use gantry_model::{Digest, DigestAlgorithm};

use crate::error::{LayerError, Stream};
use crate::header::{self, BLOCK, Pax};
use crate::limits::Limits;
use crate::path::{self, Meaning, PathError};
use crate::stream::{
    Decoder, Hasher, Inflated, Source, Trip, is_zstd_window_error, untag_source_error,
};

/// Buffer between the decompressor and the tar walk. Decompressors write straight into it
/// and small entries are parsed out of it without copies. Sizes from 64 KiB to 1 MiB
/// measured within ±3% of each other (docs/benchmarks.md); 128 KiB was at or near the best
/// for gzip, zstd and plain layers.
const TAR_BUFFER: usize = 128 * 1024;

/// What to walk: the blob's identity as the manifest and image config name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// The blob digest from the manifest; always verified.
    pub digest: Digest,
    /// The diff ID from the image config (digest of the uncompressed tar); verified when
    /// given.
    pub diff_id: Option<Digest>,
    /// From the layer media type.
    pub compression: Compression,
}

/// Receives a layer's entries, in tar order, as the walk reaches them.
pub trait EntrySink {
    /// Every non-whiteout entry in tar order. For regular files `body` yields the content
    /// (the sink reads as much as it wants; the walker skips the rest); for other kinds it
    /// is empty.
    ///
    /// Not delivered: the root directory entry (`./`), AUFS metadata (`.wh..wh.*`) and
    /// entries of unknown type (all still counted in [`LayerWalk::entries`]).
    ///
    /// If reading `body` fails, the walk fails with the underlying cause whatever the sink
    /// returns.
    fn file(&mut self, entry: &FileEntry, body: &mut dyn Read) -> io::Result<()>;

    /// Every whiteout (plain or opaque), in tar order.
    fn whiteout(&mut self, whiteout: &Whiteout) -> io::Result<()>;
}

/// What a completed walk measured. The digests are those of the bytes actually read, and
/// have been checked against the [`LayerSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerWalk {
    /// Digest of the whole blob (every byte, including any trailing bytes after the
    /// compressed stream), in the algorithm of [`LayerSpec::digest`].
    pub digest: Digest,
    /// Digest of the whole uncompressed stream: sha256, or the algorithm of
    /// [`LayerSpec::diff_id`] when one is given.
    pub diff_id: Digest,
    /// Blob bytes read.
    pub compressed_size: u64,
    /// Uncompressed bytes read.
    pub uncompressed_size: u64,
    /// Tar entries, including whiteouts, the root entry and skipped ones (AUFS metadata,
    /// unknown types), excluding PAX and GNU long-name meta headers.
    pub entries: u64,
}

/// Walks one layer blob in a single streaming pass.
///
/// Reads `blob` to its end, decompresses it per `spec.compression`, pushes every entry to
/// `sink`, and verifies the blob digest (always) and the diff ID (when given). Memory is
/// bounded (a few hundred KiB of buffers plus at most one extension header, and the zstd
/// window); nothing is written to disk.
///
/// When the walk fails for a reason found in the content (corrupt data, limits, hostile
/// paths), the rest of the blob is still read and hashed: if the blob does not match its
/// digest, [`LayerError::DigestMismatch`] is reported instead, since the content was not
/// the layer's. Reader errors, the compressed-size limit and sink errors are reported as
/// they are.
pub fn walk_layer<R: Read>(
    mut blob: R,
    spec: &LayerSpec,
    limits: &Limits,
    sink: &mut dyn EntrySink,
) -> Result<LayerWalk, LayerError> {
    walk(&mut blob, spec, limits, sink)
}

fn walk(
    blob: &mut dyn Read,
    spec: &LayerSpec,
    limits: &Limits,
    sink: &mut dyn EntrySink,
) -> Result<LayerWalk, LayerError> {
    let layer = &spec.digest;
    let source = Source::new(blob, layer.algorithm(), limits.max_compressed_bytes);
    let decoder =
        Decoder::new(source, spec.compression, limits.zstd_window_log_max).map_err(|source| {
            LayerError::Corrupt {
                layer: layer.clone(),
                source,
            }
        })?;
    let diff_algorithm = spec
        .diff_id
        .as_ref()
        .map_or(DigestAlgorithm::Sha256, Digest::algorithm);
    let plain = spec.compression == Compression::None;
    let diff_hasher =
        (!plain || diff_algorithm != layer.algorithm()).then(|| Hasher::new(diff_algorithm));
    let ratio = (!plain).then_some((limits.max_ratio, limits.ratio_floor_bytes));
    let inflated = Inflated::new(decoder, diff_hasher, limits.max_uncompressed_bytes, ratio);

    let mut tar = TarWalk {
        src: BufReader::with_capacity(TAR_BUFFER, inflated),
        layer,
        limits,
        pos: 0,
        entries: 0,
    };
    let outcome = tar.run(sink).and_then(|()| tar.drain());
    let entries = tar.entries;
    let inflated = tar.src.into_inner();
    let uncompressed_size = inflated.total();
    let (source, diff_id) = inflated.into_parts();
    let Some(mut source) = source else {
        return Err(outcome.err().unwrap_or_else(|| LayerError::Corrupt {
            layer: layer.clone(),
            source: io::Error::other("internal: the decompressor lost its input"),
        }));
    };
    if let Err(e) = outcome {
        return Err(check_digest_after_error(e, source, layer));
    }

    // The blob may go on after the compressed stream (trailing garbage after gzip): the
    // digest covers every byte.
    if let Err(e) = source.drain_rest() {
        return Err(source_error(layer, limits, source.trip(), e));
    }
    let (digest, compressed_size) = source.finish();
    if digest != *layer {
        return Err(LayerError::DigestMismatch {
            layer: layer.clone(),
            expected: layer.clone(),
            actual: digest,
        });
    }
    let diff_id = diff_id.unwrap_or_else(|| digest.clone());
    if let Some(expected) = &spec.diff_id
        && *expected != diff_id
    {
        return Err(LayerError::DiffIdMismatch {
            layer: layer.clone(),
            expected: expected.clone(),
            actual: diff_id,
        });
    }
    Ok(LayerWalk {
        digest,
        diff_id,
        compressed_size,
        uncompressed_size,
        entries,
    })
}

/// After a content error, reads the rest of the blob: if it does not match its digest, the
/// bytes were not the layer's (corrupted in transit, wrong blob), and that is the error
/// worth reporting.
fn check_digest_after_error(
    error: LayerError,
    mut source: Source<'_>,
    layer: &Digest,
) -> LayerError {
    match error {
        LayerError::Read { .. }
        | LayerError::Sink { .. }
        | LayerError::TooLarge {
            what: Stream::Compressed,
            ..
        } => return error,
        _ => {}
    }
    if source.trip().is_some() || source.drain_rest().is_err() {
        return error;
    }
    let (actual, _) = source.finish();
    if actual == *layer {
        error
    } else {
        LayerError::DigestMismatch {
            layer: layer.clone(),
            expected: layer.clone(),
            actual,
        }
    }
}

fn source_error(layer: &Digest, limits: &Limits, trip: Option<Trip>, e: io::Error) -> LayerError {
    match trip {
        Some(Trip::CompressedLimit) => LayerError::TooLarge {
            layer: layer.clone(),
            what: Stream::Compressed,
            limit: limits.max_compressed_bytes,
        },
        _ => LayerError::Read {
            layer: layer.clone(),
            source: untag_source_error(e),
        },
    }
}

/// Extension headers waiting for the entry they describe.
#[derive(Default)]
struct Pending {
    pax: Option<Pax>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

struct TarWalk<'w, 'a> {
    src: BufReader<Inflated<'a>>,
    layer: &'w Digest,
    limits: &'w Limits,
    /// Offset in the uncompressed stream, for error messages.
    pos: u64,
    entries: u64,
}

/// Outcome of a body read handed to the sink.
enum BodyFailure {
    Stream(io::Error),
    Truncated,
}

/// An entry's content, as handed to the sink: bounded to the entry, and recording any
/// failure of the stream underneath so the walk reports the real cause.
struct Body<'r, 'a> {
    src: &'r mut BufReader<Inflated<'a>>,
    remaining: u64,
    failure: Option<BodyFailure>,
}

impl Read for Body<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(match failure {
                BodyFailure::Truncated => body_truncated(),
                BodyFailure::Stream(e) => body_failed(e.kind()),
            });
        }
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        match self.src.read(buf) {
            Ok(0) => {
                self.failure = Some(BodyFailure::Truncated);
                Err(body_truncated())
            }
            Ok(n) => {
                self.remaining = self.remaining.saturating_sub(n as u64);
                Ok(n)
            }
            Err(e) => {
                let kind = e.kind();
                self.failure = Some(BodyFailure::Stream(e));
                Err(body_failed(kind))
            }
        }
    }
}

fn body_truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the layer stream ends inside this file",
    )
}

fn body_failed(kind: io::ErrorKind) -> io::Error {
    io::Error::new(
        kind,
        "the layer stream failed; the layer walk reports the cause",
    )
}

/// Whether a full block was read, or the stream ended cleanly before it.
#[derive(PartialEq, Eq)]
enum Block {
    Full,
    Eof,
}

/// GNU sparse headers: `isextended` in the main header and in each extension block.
const GNU_IS_EXTENDED: usize = 482;
const GNU_EXT_IS_EXTENDED: usize = 504;

impl<'w, 'a> TarWalk<'w, 'a> {
    fn run(&mut self, sink: &mut dyn EntrySink) -> Result<(), LayerError> {
        let mut header = tar::Header::new_old();
        let mut pending = Pending::default();
        loop {
            let at = self.pos;
            if self.read_block(header.as_mut_bytes())? == Block::Eof {
                return Ok(()); // no end-of-archive marker: accepted, as Go does
            }
            if header.as_bytes().iter().all(|&b| b == 0) {
                let mut second = [0u8; BLOCK as usize];
                if self.read_block(&mut second)? == Block::Full && second.iter().any(|&b| b != 0) {
                    return Err(self.corrupt(format!(
                        "a zero block at offset {at} is followed by a non-zero block"
                    )));
                }
                return Ok(());
            }
            header::check_checksum(header.as_bytes())
                .map_err(|m| self.corrupt(format!("{m} (header at offset {at})")))?;
            match header.as_old().linkflag[0] {
                b'x' => pending.pax = Some(self.pax(&header, at)?),
                b'g' => {
                    self.pax(&header, at)?;
                    pending = Pending::default();
                }
                b'L' => {
                    pending.long_name =
                        Some(header::c_string(&self.extension(&header, at)?).to_vec())
                }
                b'K' => {
                    pending.long_link =
                        Some(header::c_string(&self.extension(&header, at)?).to_vec())
                }
                _ => self.entry(&header, std::mem::take(&mut pending), at, sink)?,
            }
        }
    }

    /// Reads an extension header's body, refusing it by its declared size before reading.
    fn extension(&mut self, header: &tar::Header, at: u64) -> Result<Vec<u8>, LayerError> {
        let size = self.numeric(&header.as_old().size, "size", at)?;
        if size > self.limits.max_extension_bytes {
            return Err(LayerError::ExtensionTooLarge {
                layer: self.layer.clone(),
                size,
                limit: self.limits.max_extension_bytes,
            });
        }
        let len = usize::try_from(size)
            .map_err(|_| self.corrupt(format!("extension header at offset {at} is too large")))?;
        let mut body = vec![0u8; len];
        self.read_exact(&mut body, at)?;
        self.skip_padding(size)?;
        Ok(body)
    }

    fn pax(&mut self, header: &tar::Header, at: u64) -> Result<Pax, LayerError> {
        let body = self.extension(header, at)?;
        header::parse_pax(&body)
            .map_err(|m| self.corrupt(format!("{m} (PAX header at offset {at})")))
    }

    fn entry(
        &mut self,
        header: &tar::Header,
        pending: Pending,
        at: u64,
        sink: &mut dyn EntrySink,
    ) -> Result<(), LayerError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(LayerError::TooManyEntries {
                layer: self.layer.clone(),
                limit: self.limits.max_entries,
            });
        }
        let old = header.as_old();
        let typeflag = old.linkflag[0];
        let pax = pending.pax.unwrap_or_default();
        let size = match pax.size {
            Some(size) => size,
            None => self.numeric(&old.size, "size", at)?,
        };
        let uid = match pax.uid {
            Some(uid) => uid,
            None => self.numeric(&old.uid, "uid", at)?,
        };
        let gid = match pax.gid {
            Some(gid) => gid,
            None => self.numeric(&old.gid, "gid", at)?,
        };
        // Permission and setuid/setgid/sticky bits; some writers add the S_IFMT type bits.
        let mode = (self.numeric(&old.mode, "mode", at)? & 0o7777) as u32;
        let raw_path: Cow<'_, [u8]> = match pax.sparse_name.or(pax.path).or(pending.long_name) {
            Some(p) => Cow::Owned(p),
            None => header.path_bytes(),
        };
        let raw_link: Option<Cow<'_, [u8]>> = match pax.linkpath.or(pending.long_link) {
            Some(l) => Some(Cow::Owned(l)),
            None => header.link_name_bytes(),
        };

        let kind = match typeflag {
            b'0' | b'7' => Some(EntryKind::File),
            // Pre-POSIX archives mark directories with a trailing slash on a regular file.
            b'\0' if raw_path.ends_with(b"/") => Some(EntryKind::Dir),
            b'\0' => Some(EntryKind::File),
            b'1' => Some(EntryKind::Hardlink),
            b'2' => Some(EntryKind::Symlink),
            b'3' => Some(EntryKind::Char),
            b'4' => Some(EntryKind::Block),
            b'5' => Some(EntryKind::Dir),
            b'6' => Some(EntryKind::Fifo),
            b'S' => {
                self.gnu_sparse_extensions(header, at)?;
                // Reported with its stored size; the holes are not expanded.
                Some(EntryKind::File)
            }
            _ => None, // skipped, but counted
        };
        // Header-only types carry no data, whatever the size field says (as in Go: a
        // parser that honoured it would see different entries than the runtime).
        let data = if matches!(typeflag, b'1'..=b'6') {
            0
        } else {
            size
        };

        let written = String::from_utf8_lossy(&raw_path);
        let path = self.normalize(&written)?;
        if path.is_empty() {
            return self.skip_body(data); // the root directory itself
        }
        match path::meaning(&path) {
            Meaning::Entry => {}
            Meaning::Whiteout(whiteout) => {
                sink.whiteout(&whiteout)
                    .map_err(|source| LayerError::Sink {
                        layer: self.layer.clone(),
                        path: whiteout.path.clone(),
                        source,
                    })?;
                return self.skip_body(data);
            }
            Meaning::AufsMeta => return self.skip_body(data),
            Meaning::InvalidWhiteout => {
                return Err(LayerError::InvalidWhiteout {
                    layer: self.layer.clone(),
                    path: written.into_owned(),
                });
            }
            Meaning::WhiteoutTraversal => {
                return Err(LayerError::PathTraversal {
                    layer: self.layer.clone(),
                    path: written.into_owned(),
                });
            }
        }
        let Some(kind) = kind else {
            return self.skip_body(data);
        };

        let link_target = match kind {
            EntryKind::Hardlink => {
                let written = String::from_utf8_lossy(raw_link.as_deref().unwrap_or_default());
                let target = self.normalize(&written)?;
                if target.is_empty() {
                    return Err(
                        self.corrupt(format!("hard link {path:?} at offset {at} has no target"))
                    );
                }
                Some(target)
            }
            EntryKind::Symlink => {
                // Symlink targets are data, resolved at run time: absolute targets are fine.
                let target =
                    String::from_utf8_lossy(raw_link.as_deref().unwrap_or_default()).into_owned();
                if target.len() > self.limits.max_path_bytes {
                    return Err(self.path_too_long(target.len()));
                }
                Some(target)
            }
            _ => None,
        };
        let entry = FileEntry {
            path,
            kind,
            size: if kind == EntryKind::File { data } else { 0 },
            mode,
            uid,
            gid,
            link_target,
        };

        if kind != EntryKind::File {
            sink.file(&entry, &mut io::empty())
                .map_err(|source| self.sink_error(&entry, source))?;
            return self.skip_body(data);
        }
        let mut body = Body {
            src: &mut self.src,
            remaining: data,
            failure: None,
        };
        let result = sink.file(&entry, &mut body);
        let (remaining, failure) = (body.remaining, body.failure);
        self.pos += data - remaining;
        match failure {
            Some(BodyFailure::Stream(e)) => return Err(self.fail(e)),
            Some(BodyFailure::Truncated) => {
                return Err(self.truncated(format!("the stream ends inside {:?}", entry.path)));
            }
            None => {}
        }
        result.map_err(|source| self.sink_error(&entry, source))?;
        self.skip(remaining)?;
        self.skip_padding(data)
    }

    /// Old GNU sparse files list extra sparse-map blocks between the header and the data.
    fn gnu_sparse_extensions(&mut self, header: &tar::Header, at: u64) -> Result<(), LayerError> {
        if header.as_gnu().is_none() {
            return Err(self.corrupt(format!(
                "GNU sparse entry at offset {at} is not in GNU format"
            )));
        }
        let mut extended = header.as_bytes()[GNU_IS_EXTENDED] != 0;
        let mut block = [0u8; BLOCK as usize];
        while extended {
            let at = self.pos;
            if self.read_block(&mut block)? == Block::Eof {
                return Err(self.truncated(format!(
                    "the stream ends before the sparse map at offset {at}"
                )));
            }
            extended = block[GNU_EXT_IS_EXTENDED] != 0;
        }
        Ok(())
    }

    /// Drains the uncompressed stream after the end-of-archive marker: the diff ID covers
    /// all of it.
    fn drain(&mut self) -> Result<(), LayerError> {
        loop {
            let n = match self.src.fill_buf() {
                Ok(buf) => buf.len(),
                Err(e) => return Err(self.fail(e)),
            };
            if n == 0 {
                return Ok(());
            }
            self.src.consume(n);
            self.pos += n as u64;
        }
    }

    /// Reads one block; `Eof` if the stream ends cleanly before it, `Truncated` if inside.
    fn read_block(&mut self, block: &mut [u8; BLOCK as usize]) -> Result<Block, LayerError> {
        let at = self.pos;
        let got = self.fill(block)?;
        if got == 0 {
            Ok(Block::Eof)
        } else if got < block.len() {
            Err(self.truncated(format!(
                "the stream ends inside the tar header at offset {at}"
            )))
        } else {
            Ok(Block::Full)
        }
    }

    fn read_exact(&mut self, buf: &mut [u8], at: u64) -> Result<(), LayerError> {
        if self.fill(buf)? < buf.len() {
            return Err(self.truncated(format!(
                "the stream ends inside the extension header at offset {at}"
            )));
        }
        Ok(())
    }

    /// Fills `buf` as far as the stream allows; returns how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, LayerError> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            let n = match self.src.read(rest) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            };
            got += n;
            self.pos += n as u64;
        }
        Ok(got)
    }

    /// Skips `n` bytes of entry data without copying them out of the buffer.
    fn skip(&mut self, mut n: u64) -> Result<(), LayerError> {
        while n > 0 {
            let available = match self.src.fill_buf() {
                Ok(buf) => buf.len(),
                Err(e) => return Err(self.fail(e)),
            };
            if available == 0 {
                return Err(self.truncated(format!(
                    "the stream ends {n} bytes before the end of an entry's data"
                )));
            }
            let k = usize::try_from(n).map_or(available, |n| n.min(available));
            self.src.consume(k);
            self.pos += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    fn skip_body(&mut self, data: u64) -> Result<(), LayerError> {
        self.skip(data)?;
        self.skip_padding(data)
    }

    /// Skips the padding after `data` bytes of entry data. A stream ending inside the
    /// padding ends the archive (the next header read sees EOF), as in Go.
    fn skip_padding(&mut self, data: u64) -> Result<(), LayerError> {
        let mut pad = (BLOCK - data % BLOCK) % BLOCK;
        while pad > 0 {
            let available = match self.src.fill_buf() {
                Ok(buf) => buf.len(),
                Err(e) => return Err(self.fail(e)),
            };
            if available == 0 {
                return Ok(());
            }
            let k = usize::try_from(pad).map_or(available, |p| p.min(available));
            self.src.consume(k);
            self.pos += k as u64;
            pad -= k as u64;
        }
        Ok(())
    }

    fn numeric(&self, field: &[u8], what: &str, at: u64) -> Result<u64, LayerError> {
        header::parse_numeric(field).ok_or_else(|| {
            self.corrupt(format!(
                "tar header at offset {at} has an invalid {what} field"
            ))
        })
    }

    fn normalize(&self, written: &str) -> Result<String, LayerError> {
        path::normalize(written, self.limits.max_path_bytes).map_err(|e| match e {
            PathError::Traversal => LayerError::PathTraversal {
                layer: self.layer.clone(),
                path: written.to_string(),
            },
            PathError::TooLong(len) => self.path_too_long(len),
        })
    }

    fn path_too_long(&self, len: usize) -> LayerError {
        LayerError::PathTooLong {
            layer: self.layer.clone(),
            len,
            limit: self.limits.max_path_bytes,
        }
    }

    fn sink_error(&self, entry: &FileEntry, source: io::Error) -> LayerError {
        LayerError::Sink {
            layer: self.layer.clone(),
            path: entry.path.clone(),
            source,
        }
    }

    fn corrupt(&self, message: String) -> LayerError {
        LayerError::Corrupt {
            layer: self.layer.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, message),
        }
    }

    fn truncated(&self, message: String) -> LayerError {
        LayerError::Truncated {
            layer: self.layer.clone(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, message),
        }
    }

    /// Classifies an error from the uncompressed stream by asking each pipeline stage
    /// whether it stopped, then by the decoder error's kind.
    fn fail(&self, error: io::Error) -> LayerError {
        let layer = self.layer.clone();
        let inflated = self.src.get_ref();
        let source = inflated.source();
        if let Some(trip) = source.and_then(Source::trip) {
            return source_error(self.layer, self.limits, Some(trip), error);
        }
        match inflated.trip() {
            Some(Trip::UncompressedLimit) => LayerError::TooLarge {
                layer,
                what: Stream::Uncompressed,
                limit: self.limits.max_uncompressed_bytes,
            },
            Some(Trip::Ratio) => LayerError::DecompressionBomb {
                layer,
                compressed: source.map_or(0, Source::total),
                uncompressed: inflated.total(),
                ratio_limit: self.limits.max_ratio,
            },
            _ if error.kind() == io::ErrorKind::UnexpectedEof => LayerError::Truncated {
                layer,
                source: error,
            },
            _ if is_zstd_window_error(&error) => LayerError::ZstdWindowTooLarge {
                layer,
                window_log_max: self.limits.zstd_window_log_max,
            },
            _ => LayerError::Corrupt {
                layer,
                source: error,
            },
        }
    }
}
