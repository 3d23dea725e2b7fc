//! The byte pipeline under the tar walk:
//!
//! ```text
//! blob ─► Source (compressed digest, size cap, tags reader errors)
//!      ─► Decoder (gzip members | zstd frames | nothing)
//!      ─► Inflated (diff ID, size cap, ratio check) ─► BufReader ─► tar walk
//! ```
//!
//! Each stage records *why* it failed in its own state, so the walker can tell a network
//! error from a limit from corrupt data even after a decoder has wrapped or re-kinded the
//! `io::Error` on its way up.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use gantry_model::oci::Compression;
use gantry_model::{Digest, DigestAlgorithm};
use sha2::Digest as _;

/// Buffer between the blob and the decompressor. zstd asks for ~128 KiB
/// (`ZSTD_DStreamInSize`); inflate is indifferent above ~32 KiB.
const COMPRESSED_BUFFER: usize = 128 * 1024;

/// A running sha256 or sha512.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_bytes(DigestAlgorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_bytes(DigestAlgorithm::Sha512, &h.finalize()),
        }
    }
}

/// Marks an `io::Error` that came from the caller's blob reader, so it can be told apart
/// from decoder errors and handed back unchanged in [`LayerError::Read`](crate::LayerError::Read).
#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// Recovers the caller's original error if `err` (or what it wraps) is a tagged source error.
pub(crate) fn untag_source_error(err: io::Error) -> io::Error {
    if err.get_ref().is_some_and(|inner| inner.is::<SourceError>()) {
        if let Some(inner) = err.into_inner() {
            return match inner.downcast::<SourceError>() {
                Ok(tagged) => tagged.0,
                Err(other) => io::Error::other(other),
            };
        }
        // `get_ref` was Some, so `into_inner` is too; keep a sensible fallback anyway.
        return io::Error::other("blob reader failed");
    }
    err
}

/// Why a pipeline stage stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trip {
    /// The caller's reader returned an error.
    SourceFailed,
    /// The compressed stream passed `max_compressed_bytes`.
    CompressedLimit,
    /// The uncompressed stream passed `max_uncompressed_bytes`.
    UncompressedLimit,
    /// The uncompressed/compressed ratio passed `max_ratio`.
    Ratio,
}

fn tripped(what: &str) -> io::Error {
    io::Error::other(format!("layer walk stopped: {what}"))
}

/// The blob as read from the caller: hashed, counted and capped.
pub(crate) struct Source<'a> {
    inner: &'a mut dyn Read,
    hasher: Hasher,
    bytes: u64,
    limit: u64,
    trip: Option<Trip>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read, algorithm: DigestAlgorithm, limit: u64) -> Self {
        Source {
            inner,
            hasher: Hasher::new(algorithm),
            bytes: 0,
            limit,
            trip: None,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn trip(&self) -> Option<Trip> {
        self.trip
    }

    /// Reads (and hashes) the rest of the blob.
    pub(crate) fn drain_rest(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; COMPRESSED_BUFFER];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }

    /// The digest and size of everything read.
    pub(crate) fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.bytes)
    }
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(trip) = self.trip {
            return Err(tripped(match trip {
                Trip::SourceFailed => "the blob reader failed",
                _ => "the blob is larger than the limit",
            }));
        }
        let n = loop {
            match self.inner.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.trip = Some(Trip::SourceFailed);
                    return Err(io::Error::new(e.kind(), SourceError(e)));
                }
            }
        };
        let Some(read) = buf.get(..n) else {
            // A reader claiming more bytes than the buffer holds is broken; don't trust it.
            self.trip = Some(Trip::SourceFailed);
            let e = io::Error::other(format!(
                "blob reader returned {n} bytes into a {}-byte buffer",
                buf.len()
            ));
            return Err(io::Error::new(e.kind(), SourceError(e)));
        };
        self.hasher.update(read);
        self.bytes += n as u64;
        if self.bytes > self.limit {
            self.trip = Some(Trip::CompressedLimit);
            return Err(tripped("the blob is larger than the limit"));
        }
        Ok(n)
    }
}

/// A gzip stream of one or more members, optionally followed by trailing garbage.
///
/// `MultiGzDecoder` treats anything after a member as the header of another member and
/// fails on garbage. Layers in the wild sometimes carry trailing zeros after the last
/// member; like `gzip -d` ("trailing garbage ignored"), a member is only started when the
/// next byte is the gzip magic, and anything else ends the decompressed stream. Those bytes
/// are still part of the blob and are hashed when the blob is drained.
pub(crate) struct Gzip<'a> {
    /// `None` only transiently while switching members inside `read`.
    state: Option<GzipState<'a>>,
}

// One per walk, moved a handful of times: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum GzipState<'a> {
    Member(GzDecoder<BufReader<Source<'a>>>),
    End(BufReader<Source<'a>>),
}

/// First byte of a gzip member (RFC 1952 ID1).
const GZIP_ID1: u8 = 0x1f;

impl<'a> Gzip<'a> {
    fn new(source: Source<'a>) -> Self {
        let buffered = BufReader::with_capacity(COMPRESSED_BUFFER, source);
        Gzip {
            state: Some(GzipState::Member(GzDecoder::new(buffered))),
        }
    }

    fn source(&self) -> Option<&Source<'a>> {
        match self.state.as_ref()? {
            GzipState::Member(d) => Some(d.get_ref().get_ref()),
            GzipState::End(r) => Some(r.get_ref()),
        }
    }

    fn into_source(self) -> Option<Source<'a>> {
        match self.state? {
            GzipState::Member(d) => Some(d.into_inner().into_inner()),
            GzipState::End(r) => Some(r.into_inner()),
        }
    }
}

impl Read for Gzip<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(GzipState::Member(member)) = &mut self.state else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member ended and its CRC and length checked out. Another member follows
            // only if the next byte is the gzip magic.
            let Some(GzipState::Member(member)) = self.state.take() else {
                return Ok(0);
            };
            let mut rest = member.into_inner();
            let next = rest.fill_buf().map(|b| b.first().copied());
            match next {
                Ok(Some(GZIP_ID1)) => {
                    self.state = Some(GzipState::Member(GzDecoder::new(rest)));
                }
                Ok(_) => {
                    self.state = Some(GzipState::End(rest));
                    return Ok(0);
                }
                Err(e) => {
                    self.state = Some(GzipState::End(rest));
                    return Err(e);
                }
            }
        }
    }
}

type ZstdDecoder<'a> = zstd::stream::read::Decoder<'static, BufReader<Source<'a>>>;

/// The decompressor for the layer's media type.
// One per walk, moved a handful of times: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decoder<'a> {
    Plain(Source<'a>),
    Gzip(Gzip<'a>),
    Zstd(ZstdDecoder<'a>),
}

impl<'a> Decoder<'a> {
    /// `zstd_window_log_max` bounds the window a zstd frame may ask for (the decoder's
    /// largest allocation); a frame asking for more fails to decode, see
    /// [`is_zstd_window_error`].
    pub(crate) fn new(
        source: Source<'a>,
        compression: Compression,
        zstd_window_log_max: u32,
    ) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Decoder::Plain(source),
            Compression::Gzip => Decoder::Gzip(Gzip::new(source)),
            Compression::Zstd => {
                // Multi-frame by default.
                let buffered = BufReader::with_capacity(COMPRESSED_BUFFER, source);
                let mut decoder = zstd::stream::read::Decoder::with_buffer(buffered)?;
                decoder.window_log_max(zstd_window_log_max)?;
                Decoder::Zstd(decoder)
            }
        })
    }

    pub(crate) fn source(&self) -> Option<&Source<'a>> {
        match self {
            Decoder::Plain(s) => Some(s),
            Decoder::Gzip(g) => g.source(),
            Decoder::Zstd(z) => Some(z.get_ref().get_ref()),
        }
    }

    /// The blob reader back, to drain what the decompressor did not read. Bytes buffered
    /// but not decompressed are dropped here: they were already hashed and counted.
    pub(crate) fn into_source(self) -> Option<Source<'a>> {
        match self {
            Decoder::Plain(s) => Some(s),
            Decoder::Gzip(g) => g.into_source(),
            Decoder::Zstd(z) => Some(z.finish().into_inner()),
        }
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(s) => s.read(buf),
            Decoder::Gzip(g) => g.read(buf),
            Decoder::Zstd(z) => z.read(buf),
        }
    }
}

/// Whether a zstd decoder error says the frame's window is over `window_log_max`. libzstd
/// reports only its error name (`ZSTD_error_frameParameter_windowTooLarge`), as text; a
/// test holds it to the linked library.
pub(crate) fn is_zstd_window_error(error: &io::Error) -> bool {
    error
        .to_string()
        .contains("Frame requires too much memory for decoding")
}

/// The uncompressed tar stream: hashed (diff ID), counted, capped and ratio-checked.
pub(crate) struct Inflated<'a> {
    inner: Decoder<'a>,
    /// `None` when the stream *is* the blob (no compression, same algorithm): the blob
    /// digest is the diff ID and hashing twice would only cost time.
    hasher: Option<Hasher>,
    bytes: u64,
    limit: u64,
    /// `Some((max_ratio, floor))` when the ratio is checked (compressed layers only).
    ratio: Option<(u64, u64)>,
    trip: Option<Trip>,
}

impl<'a> Inflated<'a> {
    pub(crate) fn new(
        inner: Decoder<'a>,
        hasher: Option<Hasher>,
        limit: u64,
        ratio: Option<(u64, u64)>,
    ) -> Self {
        Inflated {
            inner,
            hasher,
            bytes: 0,
            limit,
            ratio,
            trip: None,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn trip(&self) -> Option<Trip> {
        self.trip
    }

    pub(crate) fn source(&self) -> Option<&Source<'a>> {
        self.inner.source()
    }

    /// Splits into the blob reader and the diff ID (`None` if not hashed separately).
    pub(crate) fn into_parts(self) -> (Option<Source<'a>>, Option<Digest>) {
        (self.inner.into_source(), self.hasher.map(Hasher::finish))
    }
}

impl Read for Inflated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.trip.is_some() {
            return Err(tripped("a size limit was hit"));
        }
        let n = self.inner.read(buf)?;
        let Some(read) = buf.get(..n) else {
            return Err(io::Error::other(
                "decoder returned more bytes than requested",
            ));
        };
        if let Some(h) = &mut self.hasher {
            h.update(read);
        }
        self.bytes += n as u64;
        if self.bytes > self.limit {
            self.trip = Some(Trip::UncompressedLimit);
            return Err(tripped("the uncompressed stream is larger than the limit"));
        }
        if let Some((max_ratio, floor)) = self.ratio {
            let compressed = self.inner.source().map_or(0, Source::total);
            if self.bytes > floor && self.bytes > max_ratio.saturating_mul(compressed) {
                self.trip = Some(Trip::Ratio);
                return Err(tripped("decompression ratio above the limit"));
            }
        }
        Ok(n)
    }
}
