//! Just enough ELF to find sections in a file that arrives as a stream: the file header,
//! program headers and section headers, 32/64-bit, little/big-endian, every read bounds-checked.
//!
//! Why by hand: the binary analyzers never hold a whole executable. They see it once, front
//! to back, in pieces ([`crate::analyzers::StreamInterest`]), and must decide from the first
//! bytes which later ranges to keep. `object` and `goblin` parse a complete in-memory image
//! (and treat a truncated one as an error or, for some tables, read past what is there); the
//! three fixed-size tables needed here are a few dozen lines with explicit bounds.

/// `\x7fELF`.
pub(crate) const MAGIC: &[u8] = b"\x7fELF";

/// `PT_LOAD`: a segment mapped into memory.
const PT_LOAD: u32 = 1;

/// The fields of the ELF file header this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub class64: bool,
    pub big_endian: bool,
    pub phoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
    pub shoff: u64,
    pub shentsize: u16,
    pub shnum: u16,
    pub shstrndx: u16,
}

/// A program header (only what is needed to know where loaded data ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub kind: u32,
    pub offset: u64,
    pub filesz: u64,
}

/// A section header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Section {
    pub name: u32,
    pub kind: u32,
    pub flags: u64,
    pub offset: u64,
    pub size: u64,
}

/// `SHT_PROGBITS`: program-defined contents.
pub(crate) const SHT_PROGBITS: u32 = 1;

/// `SHT_NOBITS`: occupies no file space (`.bss`).
pub(crate) const SHT_NOBITS: u32 = 8;

/// Reads integers of one ELF file's width and byte order.
#[derive(Debug, Clone, Copy)]
struct Reader {
    big_endian: bool,
}

impl Reader {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(bytes)
        } else {
            u64::from_le_bytes(bytes)
        })
    }

    /// A word: 8 bytes in 64-bit files, 4 in 32-bit ones.
    fn word(self, class64: bool, b: &[u8], at: usize) -> Option<u64> {
        if class64 {
            self.u64(b, at)
        } else {
            self.u32(b, at).map(u64::from)
        }
    }
}

/// Parses the file header from the first bytes of a file (52 for 32-bit, 64 for 64-bit).
pub(crate) fn header(b: &[u8]) -> Result<Header, String> {
    if !b.starts_with(MAGIC) {
        return Err("no ELF magic".into());
    }
    let class64 = match b.get(4) {
        Some(1) => false,
        Some(2) => true,
        Some(c) => return Err(format!("unknown ELF class {c}")),
        None => return Err("truncated ELF header".into()),
    };
    let big_endian = match b.get(5) {
        Some(1) => false,
        Some(2) => true,
        Some(d) => return Err(format!("unknown ELF data encoding {d}")),
        None => return Err("truncated ELF header".into()),
    };
    let r = Reader { big_endian };
    let parse = || -> Option<Header> {
        Some(if class64 {
            Header {
                class64,
                big_endian,
                phoff: r.u64(b, 0x20)?,
                shoff: r.u64(b, 0x28)?,
                phentsize: r.u16(b, 0x36)?,
                phnum: r.u16(b, 0x38)?,
                shentsize: r.u16(b, 0x3a)?,
                shnum: r.u16(b, 0x3c)?,
                shstrndx: r.u16(b, 0x3e)?,
            }
        } else {
            Header {
                class64,
                big_endian,
                phoff: r.u32(b, 0x1c)?.into(),
                shoff: r.u32(b, 0x20)?.into(),
                phentsize: r.u16(b, 0x2a)?,
                phnum: r.u16(b, 0x2c)?,
                shentsize: r.u16(b, 0x2e)?,
                shnum: r.u16(b, 0x30)?,
                shstrndx: r.u16(b, 0x32)?,
            }
        })
    };
    let h = parse().ok_or("truncated ELF header")?;
    let (min_ph, min_sh) = if class64 { (56, 64) } else { (32, 40) };
    if h.phnum > 0 && usize::from(h.phentsize) < min_ph {
        return Err(format!("program header entries of {} bytes", h.phentsize));
    }
    if h.shnum > 0 && usize::from(h.shentsize) < min_sh {
        return Err(format!("section header entries of {} bytes", h.shentsize));
    }
    Ok(h)
}

impl Header {
    /// The byte range of the program header table.
    pub(crate) fn program_headers(&self) -> (u64, u64) {
        let len = u64::from(self.phnum) * u64::from(self.phentsize);
        (self.phoff, self.phoff.saturating_add(len))
    }

    /// The byte range of the section header table.
    pub(crate) fn section_headers(&self) -> (u64, u64) {
        let len = u64::from(self.shnum) * u64::from(self.shentsize);
        (self.shoff, self.shoff.saturating_add(len))
    }
}

/// Parses the program headers from `b`, the first bytes of the file (which must reach the
/// end of the program header table).
pub(crate) fn segments(h: &Header, b: &[u8]) -> Option<Vec<Segment>> {
    let r = Reader {
        big_endian: h.big_endian,
    };
    let mut out = Vec::with_capacity(usize::from(h.phnum));
    for i in 0..u64::from(h.phnum) {
        let at = usize::try_from(h.phoff.checked_add(i * u64::from(h.phentsize))?).ok()?;
        let kind = r.u32(b, at)?;
        let (offset, filesz) = if h.class64 {
            (r.u64(b, at + 8)?, r.u64(b, at + 32)?)
        } else {
            (r.u32(b, at + 4)?.into(), r.u32(b, at + 16)?.into())
        };
        out.push(Segment {
            kind,
            offset,
            filesz,
        });
    }
    Some(out)
}

/// Where the data of the loaded segments ends: non-allocated sections (`.comment`,
/// `.symtab`, debug info, cargo-auditable's `.dep-v0`) follow it.
pub(crate) fn loaded_end(segments: &[Segment]) -> u64 {
    segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .map(|s| s.offset.saturating_add(s.filesz))
        .max()
        .unwrap_or(0)
}

/// Parses the section header table `b` (exactly the table's bytes).
pub(crate) fn sections(h: &Header, b: &[u8]) -> Option<Vec<Section>> {
    let r = Reader {
        big_endian: h.big_endian,
    };
    let mut out = Vec::with_capacity(usize::from(h.shnum));
    for i in 0..usize::from(h.shnum) {
        let at = i.checked_mul(usize::from(h.shentsize))?;
        let name = r.u32(b, at)?;
        let kind = r.u32(b, at + 4)?;
        let (flags, offset, size) = if h.class64 {
            (r.u64(b, at + 8)?, r.u64(b, at + 24)?, r.u64(b, at + 32)?)
        } else {
            (
                r.word(false, b, at + 8)?,
                r.word(false, b, at + 16)?,
                r.word(false, b, at + 20)?,
            )
        };
        out.push(Section {
            name,
            kind,
            flags,
            offset,
            size,
        });
    }
    Some(out)
}

/// The NUL-terminated name at `offset` of a string table.
pub(crate) fn name_at(strtab: &[u8], offset: u32) -> Option<&[u8]> {
    let rest = strtab.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(&rest[..end])
}

/// The bytes `[start, end)` of a file that arrives in pieces, front to back: keeps only that
/// range, whatever the piece boundaries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    pub start: u64,
    pub end: u64,
    data: Vec<u8>,
}

impl Window {
    /// An empty window over `[start, end)`; nothing is allocated until bytes arrive.
    pub(crate) fn new(start: u64, end: u64) -> Window {
        Window {
            start,
            end: end.max(start),
            data: Vec::new(),
        }
    }

    /// Takes the part of `piece` (which starts at file offset `offset`) that falls in the
    /// window and has not been taken yet.
    pub(crate) fn feed(&mut self, offset: u64, piece: &[u8]) {
        let have = self.start + self.data.len() as u64;
        let from = have.max(offset);
        let to = self.end.min(offset.saturating_add(piece.len() as u64));
        if from >= to || from != have {
            // Nothing new, or a gap (a piece was skipped): keep what is contiguous.
            return;
        }
        if self.data.is_empty() {
            let len = usize::try_from(self.end - self.start).unwrap_or(usize::MAX);
            self.data.reserve_exact(len.min(piece.len().max(64 * 1024)));
        }
        let (a, b) = ((from - offset) as usize, (to - offset) as usize);
        self.data.extend_from_slice(&piece[a..b]);
    }

    /// Whether every byte of the window has arrived.
    pub(crate) fn is_full(&self) -> bool {
        self.start + self.data.len() as u64 >= self.end
    }

    /// The file bytes `[offset, offset + len)` if the window holds all of them.
    pub(crate) fn get(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let a = offset.checked_sub(self.start)?;
        let b = a.checked_add(len)?;
        self.data
            .get(usize::try_from(a).ok()?..usize::try_from(b).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_its_range_across_pieces() {
        let file: Vec<u8> = (0..=255u8).collect();
        for piece_len in [1, 3, 7, 64, 300] {
            let mut w = Window::new(10, 100);
            let mut off = 0;
            for piece in file.chunks(piece_len) {
                w.feed(off, piece);
                // Feeding the same piece twice changes nothing.
                w.feed(off, piece);
                off += piece.len() as u64;
            }
            assert!(w.is_full());
            assert_eq!(w.get(10, 90), Some(&file[10..100]));
            assert_eq!(w.get(50, 1), Some(&file[50..51]));
            assert_eq!(w.get(9, 2), None);
            assert_eq!(w.get(99, 2), None);
        }
        let mut w = Window::new(0, 10);
        w.feed(5, b"later");
        assert!(!w.is_full() && w.get(5, 1).is_none(), "gaps are not filled");
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(MAGIC);
        for class in 0..4u8 {
            for data in 0..4u8 {
                h[4] = class;
                h[5] = data;
                for cut in 0..=h.len() {
                    if let Ok(hdr) = header(&h[..cut]) {
                        let _ = segments(&hdr, &h);
                        let _ = sections(&hdr, &h);
                    }
                }
            }
        }
        let mut h64 = h.clone();
        h64[4] = 2;
        h64[5] = 1;
        h64[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        h64[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        h64[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
        let hdr = header(&h64).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(segments(&hdr, &h64), None);
        assert_eq!(name_at(b"abc\0def", 4), None);
        assert_eq!(name_at(b"abc\0def\0", 4), Some(&b"def"[..]));
        assert_eq!(name_at(b"abc", 99), None);
    }
}
