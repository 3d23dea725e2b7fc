//! Test fixtures in the real formats, written byte by byte: ELF executables with a Go
//! build-info section or a cargo-auditable `.dep-v0` section, RPM headers in an
//! `rpmdb.sqlite`, zip archives.

use std::io::Write;

/// One ELF section of a crafted executable.
pub struct Section {
    pub name: &'static str,
    pub kind: u32,
    pub data: Vec<u8>,
    pub align: usize,
}

pub const SHT_PROGBITS: u32 = 1;

impl Section {
    pub fn new(name: &'static str, data: Vec<u8>) -> Section {
        Section {
            name,
            kind: SHT_PROGBITS,
            data,
            align: 16,
        }
    }
}

/// A 64-bit little-endian executable: one `PT_LOAD` segment over the header and the
/// `loaded` sections, then the `unloaded` (non-allocated) sections, `.shstrtab`, and the
/// section header table at the end — the layout linkers produce.
pub fn elf64(loaded: Vec<Section>, unloaded: Vec<Section>) -> Vec<u8> {
    elf64_with(loaded, unloaded, false)
}

/// [`elf64`], with the section header table right after the program headers when
/// `table_first` (as Go's linker writes it) instead of at the end.
pub fn elf64_with(loaded: Vec<Section>, unloaded: Vec<Section>, table_first: bool) -> Vec<u8> {
    let table_len = (loaded.len() + unloaded.len() + 2) * 64;
    let mut f = vec![0u8; 64 + 56];
    if table_first {
        f.resize(64 + 56 + table_len, 0);
    }
    let mut placed: Vec<(&'static str, u32, u64, u64)> = Vec::new();
    let mut place = |f: &mut Vec<u8>, s: Section| {
        while !f.len().is_multiple_of(s.align.max(1)) {
            f.push(0);
        }
        let at = f.len() as u64;
        f.extend_from_slice(&s.data);
        placed.push((s.name, s.kind, at, s.data.len() as u64));
    };
    for s in loaded {
        place(&mut f, s);
    }
    let loaded_end = f.len() as u64;
    for s in unloaded {
        place(&mut f, s);
    }
    let mut names = vec![0u8];
    let mut name_offsets = Vec::new();
    for (name, ..) in &placed {
        name_offsets.push(names.len() as u32);
        names.extend_from_slice(name.as_bytes());
        names.push(0);
    }
    let shstrtab_name = names.len() as u32;
    names.extend_from_slice(b".shstrtab\0");
    let shstrtab_at = f.len() as u64;
    f.extend_from_slice(&names);
    while !f.len().is_multiple_of(8) {
        f.push(0);
    }
    let shoff = if table_first { 120 } else { f.len() as u64 };
    let mut table = Vec::with_capacity(table_len);
    let shdr = |name: u32, kind: u32, offset: u64, size: u64| {
        let mut h = Vec::with_capacity(64);
        h.extend(name.to_le_bytes());
        h.extend(kind.to_le_bytes());
        h.extend(0u64.to_le_bytes()); // flags
        h.extend(0u64.to_le_bytes()); // addr
        h.extend(offset.to_le_bytes());
        h.extend(size.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(1u64.to_le_bytes());
        h.extend(0u64.to_le_bytes());
        h
    };
    table.extend(shdr(0, 0, 0, 0));
    for ((_, kind, at, size), name) in placed.iter().zip(&name_offsets) {
        table.extend(shdr(*name, *kind, *at, *size));
    }
    table.extend(shdr(shstrtab_name, 3, shstrtab_at, names.len() as u64));
    if table_first {
        f[120..120 + table_len].copy_from_slice(&table);
    } else {
        f.extend(table);
    }
    let shnum = placed.len() as u16 + 2;
    // File header.
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1;
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // phoff
    f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    f[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    f[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
    f[0x3e..0x40].copy_from_slice(&(shnum - 1).to_le_bytes());
    // PT_LOAD R+X over [0, loaded_end).
    let ph = 64;
    f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
    f[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes());
    f[ph + 32..ph + 40].copy_from_slice(&loaded_end.to_le_bytes());
    f[ph + 40..ph + 48].copy_from_slice(&loaded_end.to_le_bytes());
    f
}

/// Machine-code-like filler that compresses poorly and never contains a magic by accident.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 251) as u8
        })
        .collect()
}

fn uvarint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The `.go.buildinfo` section of a Go ≥ 1.18 binary: the 32-byte header, then the Go version
/// and the module information (wrapped in the linker's 16-byte sentinels) inline.
pub fn go_buildinfo(version: &str, modinfo: &str) -> Vec<u8> {
    const START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    let mut b = b"\xff Go buildinf:".to_vec();
    b.push(8); // pointer size
    b.push(2); // inline strings, little-endian
    b.resize(32, 0);
    uvarint(version.len() as u64, &mut b);
    b.extend_from_slice(version.as_bytes());
    let mut info = START.to_vec();
    info.extend_from_slice(modinfo.as_bytes());
    info.extend_from_slice(END);
    uvarint(info.len() as u64, &mut b);
    b.extend_from_slice(&info);
    b
}

/// zlib-compresses `data` (cargo-auditable's `.dep-v0` encoding).
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An RPM header value.
pub enum Val<'a> {
    Str(&'a str),
    I18n(&'a str),
    Strs(Vec<&'a str>),
    I32(Vec<u32>),
}

/// An RPM header blob as rpm stores it in `rpmdb.sqlite` (no magic): index count, data
/// length, the index entries sorted by tag, the data store (integers 4-aligned). Starts with
/// a `HEADERIMMUTABLE` region tag and trailer, as real headers do.
pub fn rpm_header(tags: &[(u32, Val<'_>)]) -> Vec<u8> {
    let mut sorted: Vec<&(u32, Val<'_>)> = tags.iter().collect();
    sorted.sort_by_key(|(t, _)| *t);
    let mut index: Vec<[u32; 4]> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (tag, val) in sorted {
        let (kind, count) = match val {
            Val::Str(s) => {
                let at = data.len() as u32;
                data.extend_from_slice(s.as_bytes());
                data.push(0);
                index.push([*tag, 6, at, 1]);
                continue;
            }
            Val::I18n(s) => {
                let at = data.len() as u32;
                data.extend_from_slice(s.as_bytes());
                data.push(0);
                index.push([*tag, 9, at, 1]);
                continue;
            }
            Val::Strs(v) => (8, v.len() as u32),
            Val::I32(v) => (4, v.len() as u32),
        };
        if kind == 4 {
            while !data.len().is_multiple_of(4) {
                data.push(0);
            }
        }
        let at = data.len() as u32;
        match val {
            Val::Strs(v) => {
                for s in v {
                    data.extend_from_slice(s.as_bytes());
                    data.push(0);
                }
            }
            Val::I32(v) => {
                for n in v {
                    data.extend(n.to_be_bytes());
                }
            }
            _ => unreachable!(),
        }
        index.push([*tag, kind, at, count]);
    }
    // Region trailer: the immutable region covers every entry.
    let il = index.len() as u32 + 1;
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    let trailer_at = data.len() as u32;
    data.extend(63u32.to_be_bytes());
    data.extend(7u32.to_be_bytes());
    data.extend((-(il as i32 * 16)).to_be_bytes());
    data.extend(16u32.to_be_bytes());
    index.insert(0, [63, 7, trailer_at, 16]);
    let mut blob = Vec::new();
    blob.extend(il.to_be_bytes());
    blob.extend((data.len() as u32).to_be_bytes());
    for e in index {
        for v in e {
            blob.extend(v.to_be_bytes());
        }
    }
    blob.extend(data);
    blob
}

/// An `rpmdb.sqlite` with rpm's `Packages` table (and one of its index tables), in WAL mode
/// as rpm writes it, holding `blobs`.
pub fn rpmdb_sqlite(blobs: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
             CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, UNIQUE(key, hnum, idx));",
        )
        .unwrap();
        for b in blobs {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
                .unwrap();
        }
    }
    std::fs::read(&path).unwrap()
}

/// A zip archive of `(name, content, stored)` entries (stored = no compression, as Spring
/// Boot stores nested jars).
pub fn zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content, stored) in entries {
        let method = if *stored {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(content.len() > u32::MAX as usize / 2);
        w.start_file(*name, opts).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}
