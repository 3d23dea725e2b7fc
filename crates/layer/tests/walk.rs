//! gantry-layer integration tests: real tar layers built with the `tar` crate, plus
//! hand-made 512-byte headers for what no well-behaved writer produces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Read, Write};

use gantry_layer::{EntrySink, LayerError, LayerSpec, LayerWalk, Limits, Stream, walk_layer};
use gantry_model::fs::{EntryKind, FileEntry, Whiteout};
use gantry_model::oci::Compression;
use gantry_model::{Digest, DigestAlgorithm};
use sha2::Digest as _;
use tar::{Builder, EntryType, Header};

// ---------------------------------------------------------------------------------------
// Helpers

fn sha256(data: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &sha2::Sha256::digest(data))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => gzip(data),
        Compression::Zstd => zstd(data),
    }
}

fn spec(blob: &[u8], compression: Compression) -> LayerSpec {
    LayerSpec {
        digest: sha256(blob),
        diff_id: None,
        compression,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    File(FileEntry, Vec<u8>),
    Whiteout(Whiteout),
}

/// Records everything; reads at most `read_limit` bytes of each body.
#[derive(Default)]
struct Collect {
    events: Vec<Event>,
    read_limit: Option<u64>,
}

impl EntrySink for Collect {
    fn file(&mut self, entry: &FileEntry, body: &mut dyn Read) -> io::Result<()> {
        let mut content = Vec::new();
        match self.read_limit {
            None => body.read_to_end(&mut content)?,
            Some(n) => Read::take(&mut *body, n).read_to_end(&mut content)?,
        };
        self.events.push(Event::File(entry.clone(), content));
        Ok(())
    }

    fn whiteout(&mut self, whiteout: &Whiteout) -> io::Result<()> {
        self.events.push(Event::Whiteout(whiteout.clone()));
        Ok(())
    }
}

impl Collect {
    fn paths(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| match e {
                Event::File(f, _) => f.path.clone(),
                Event::Whiteout(w) => format!("WH:{}:{}", w.path, w.opaque),
            })
            .collect()
    }

    fn file(&self, path: &str) -> (&FileEntry, &[u8]) {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::File(f, c) if f.path == path => Some((f, c.as_slice())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no entry {path}: {:?}", self.paths()))
    }
}

fn walk(
    blob: &[u8],
    spec: &LayerSpec,
    limits: &Limits,
) -> (Result<LayerWalk, LayerError>, Collect) {
    let mut sink = Collect::default();
    let r = walk_layer(blob, spec, limits, &mut sink);
    (r, sink)
}

/// Walks a tar compressed as asked, with a correct digest, expecting success.
fn walk_ok(tar: &[u8], c: Compression) -> (LayerWalk, Collect) {
    let blob = compress(tar, c);
    let (r, sink) = walk(&blob, &spec(&blob, c), &Limits::default());
    (
        r.unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e))),
        sink,
    )
}

fn walk_err(tar: &[u8], c: Compression, limits: &Limits) -> LayerError {
    let blob = compress(tar, c);
    match walk(&blob, &spec(&blob, c), limits).0 {
        Ok(w) => panic!("expected an error, got {w:?}"),
        Err(e) => e,
    }
}

fn header(kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_700_000_000);
    h
}

fn add_file(b: &mut Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = header(EntryType::Regular, data.len() as u64, mode);
    b.append_data(&mut h, path, data).unwrap();
}

fn add_dir(b: &mut Builder<Vec<u8>>, path: &str) {
    let mut h = header(EntryType::Directory, 0, 0o755);
    b.append_data(&mut h, path, io::empty()).unwrap();
}

fn add_link(b: &mut Builder<Vec<u8>>, kind: EntryType, path: &str, target: &str) {
    let mut h = header(kind, 0, 0o777);
    b.append_link(&mut h, path, target).unwrap();
}

fn finish(b: Builder<Vec<u8>>) -> Vec<u8> {
    b.into_inner().unwrap()
}

/// A ustar header written byte by byte (for names the tar crate refuses to write), with a
/// correct checksum.
fn raw_header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> Header {
    let mut h = Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.as_old_mut().linkflag = [typeflag];
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    h
}

/// Header, body and padding of one raw entry.
fn raw_entry(name: &[u8], typeflag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = raw_header(name, typeflag, body.len() as u64, b"")
        .as_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn raw_tar(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = parts.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn pax_body(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// A small layer with one of everything.
fn sample_tar() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    add_dir(&mut b, "./");
    add_dir(&mut b, "etc/");
    add_file(&mut b, "etc/os-release", b"ID=gantry\n", 0o644);
    add_file(&mut b, "./usr/bin/su", b"\x7fELF setuid", 0o4755);
    add_file(&mut b, "empty", b"", 0o600);
    add_link(&mut b, EntryType::Symlink, "usr/bin/sh", "/bin/busybox");
    add_link(&mut b, EntryType::Link, "usr/bin/su2", "./usr/bin/su");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    add_file(&mut b, "big.bin", &big, 0o644);
    add_file(&mut b, "etc/.wh.shadow", b"", 0o644);
    finish(b)
}

fn check_sample(w: &LayerWalk, sink: &Collect, tar: &[u8]) {
    assert_eq!(
        sink.paths(),
        [
            "etc",
            "etc/os-release",
            "usr/bin/su",
            "empty",
            "usr/bin/sh",
            "usr/bin/su2",
            "big.bin",
            "WH:etc/shadow:false"
        ]
    );
    let (f, c) = sink.file("etc/os-release");
    assert_eq!(
        (f.kind, f.size, f.mode, f.uid, f.gid),
        (EntryKind::File, 10, 0o644, 1000, 1001)
    );
    assert_eq!(c, b"ID=gantry\n");
    assert_eq!(sink.file("usr/bin/su").0.mode, 0o4755);
    assert_eq!(sink.file("etc").0.kind, EntryKind::Dir);
    let (sh, body) = sink.file("usr/bin/sh");
    assert_eq!(
        (sh.kind, sh.link_target.as_deref(), sh.size),
        (EntryKind::Symlink, Some("/bin/busybox"), 0)
    );
    assert!(body.is_empty());
    let su2 = sink.file("usr/bin/su2").0;
    assert_eq!(
        (su2.kind, su2.link_target.as_deref()),
        (EntryKind::Hardlink, Some("usr/bin/su"))
    );
    let (big, content) = sink.file("big.bin");
    assert_eq!(big.size, 300_000);
    assert!(
        content
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    );
    assert_eq!(w.entries, 9, "root entry and whiteout are counted");
    assert_eq!(w.diff_id, sha256(tar));
    assert_eq!(w.uncompressed_size, tar.len() as u64);
}

// ---------------------------------------------------------------------------------------
// Formats

#[test]
fn walks_gzip_layer() {
    let tar = sample_tar();
    let (w, sink) = walk_ok(&tar, Compression::Gzip);
    check_sample(&w, &sink, &tar);
    assert_eq!(w.compressed_size, gzip(&tar).len() as u64);
    assert_eq!(w.digest, sha256(&gzip(&tar)));
}

#[test]
fn walks_multi_member_gzip_layer() {
    let tar = sample_tar();
    let mut blob = Vec::new();
    for chunk in tar.chunks(7000) {
        blob.extend(gzip(chunk));
    }
    let (r, sink) = walk(&blob, &spec(&blob, Compression::Gzip), &Limits::default());
    let w = r.unwrap();
    check_sample(&w, &sink, &tar);
    assert_eq!(w.compressed_size, blob.len() as u64);
}

#[test]
fn walks_zstd_layer_including_multiple_frames() {
    let tar = sample_tar();
    let (w, sink) = walk_ok(&tar, Compression::Zstd);
    check_sample(&w, &sink, &tar);

    let (a, b) = tar.split_at(10_000);
    let blob = [zstd(a), zstd(b)].concat();
    let (r, sink) = walk(&blob, &spec(&blob, Compression::Zstd), &Limits::default());
    check_sample(&r.unwrap(), &sink, &tar);
}

#[test]
fn walks_uncompressed_layer_whose_diff_id_is_its_digest() {
    let tar = sample_tar();
    let (w, sink) = walk_ok(&tar, Compression::None);
    check_sample(&w, &sink, &tar);
    assert_eq!(w.digest, w.diff_id);
    assert_eq!(w.compressed_size, w.uncompressed_size);
}

#[test]
fn verifies_sha512_digests_and_diff_ids() {
    let tar = sample_tar();
    let blob = gzip(&tar);
    let sha512 = |d: &[u8]| Digest::from_bytes(DigestAlgorithm::Sha512, &sha2::Sha512::digest(d));
    let spec = LayerSpec {
        digest: sha512(&blob),
        diff_id: Some(sha512(&tar)),
        compression: Compression::Gzip,
    };
    let w = walk(&blob, &spec, &Limits::default()).0.unwrap();
    assert_eq!(w.digest, sha512(&blob));
    assert_eq!(w.diff_id, sha512(&tar));
    // Uncompressed, sha512 blob digest: the default diff ID is still sha256.
    let spec = LayerSpec {
        digest: sha512(&tar),
        diff_id: None,
        compression: Compression::None,
    };
    assert_eq!(
        walk(&tar, &spec, &Limits::default()).0.unwrap().diff_id,
        sha256(&tar)
    );
}

#[test]
fn empty_archives() {
    // A tar of just the end-of-archive marker, and a tar of zero bytes.
    for tar in [vec![0u8; 1024], vec![]] {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (w, sink) = walk_ok(&tar, c);
            assert_eq!((w.entries, sink.events.len()), (0, 0));
        }
    }
}

#[test]
fn archive_without_end_marker_is_accepted_like_go() {
    let tar = raw_entry(b"a", b'0', b"x");
    let (w, sink) = walk_ok(&tar, Compression::None);
    assert_eq!((w.entries, sink.paths()), (1, vec!["a".to_string()]));
}

#[test]
fn stream_ending_inside_padding_ends_the_archive_like_go() {
    // "etc/os-release" holds 10 bytes at 1536..1546; cut in its padding.
    let tar = sample_tar();
    let (w, sink) = walk_ok(&tar[..1600], Compression::Gzip);
    assert_eq!(sink.paths(), ["etc", "etc/os-release"]);
    assert_eq!(w.entries, 3);
}

#[test]
fn zero_block_followed_by_data_is_corrupt() {
    let mut tar = raw_entry(b"a", b'0', b"x");
    tar.extend_from_slice(&[0u8; 512]);
    tar.extend(raw_entry(b"hidden", b'0', b"y"));
    let e = walk_err(&tar, Compression::None, &Limits::default());
    assert_eq!(e.kind_code(), "corrupt", "{e}");
}

// ---------------------------------------------------------------------------------------
// Digests

#[test]
fn digest_mismatch_names_both_digests() {
    let tar = sample_tar();
    let blob = gzip(&tar);
    let wrong = sha256(b"something else");
    let s = LayerSpec {
        digest: wrong.clone(),
        diff_id: None,
        compression: Compression::Gzip,
    };
    let e = walk(&blob, &s, &Limits::default()).0.unwrap_err();
    let LayerError::DigestMismatch {
        expected, actual, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((expected, actual), (&wrong, &sha256(&blob)));
    let msg = e.to_string();
    assert!(
        msg.contains(&wrong.to_string()) && msg.contains(&sha256(&blob).to_string()),
        "{msg}"
    );
}

#[test]
fn diff_id_mismatch_names_both_digests() {
    let tar = sample_tar();
    let blob = zstd(&tar);
    let wrong = sha256(b"other tar");
    let s = LayerSpec {
        diff_id: Some(wrong.clone()),
        ..spec(&blob, Compression::Zstd)
    };
    let e = walk(&blob, &s, &Limits::default()).0.unwrap_err();
    let LayerError::DiffIdMismatch {
        expected, actual, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((expected, actual), (&wrong, &sha256(&tar)));
    let msg = e.to_string();
    assert!(
        msg.contains(&wrong.to_string()) && msg.contains(&sha256(&tar).to_string()),
        "{msg}"
    );

    let s = LayerSpec {
        diff_id: Some(sha256(&tar)),
        ..spec(&blob, Compression::Zstd)
    };
    assert!(walk(&blob, &s, &Limits::default()).0.is_ok());
}

#[test]
fn trailing_garbage_after_gzip_is_hashed() {
    let tar = sample_tar();
    for garbage in [&b"garbage after the stream"[..], &[0u8; 4096][..]] {
        let blob = [gzip(&tar), garbage.to_vec()].concat();
        let (r, sink) = walk(&blob, &spec(&blob, Compression::Gzip), &Limits::default());
        let w = r.unwrap();
        check_sample(&w, &sink, &tar);
        assert_eq!(w.compressed_size, blob.len() as u64);
        assert_eq!(w.digest, sha256(&blob));
        // The digest covers the garbage: the digest of the gzip stream alone fails.
        let e = walk(
            &blob,
            &spec(&gzip(&tar), Compression::Gzip),
            &Limits::default(),
        )
        .0
        .unwrap_err();
        assert_eq!(e.kind_code(), "digest-mismatch");
    }
}

#[test]
fn trailing_data_after_tar_end_is_hashed_into_diff_id() {
    let mut tar = sample_tar();
    tar.extend_from_slice(b"bytes after the end-of-archive marker");
    let (w, _) = walk_ok(&tar, Compression::Gzip);
    assert_eq!(w.diff_id, sha256(&tar));
}

#[test]
fn trailing_garbage_after_zstd_is_corrupt_like_zstd_cli() {
    let blob = [zstd(&sample_tar()), b"garbage".to_vec()].concat();
    let e = walk(&blob, &spec(&blob, Compression::Zstd), &Limits::default())
        .0
        .unwrap_err();
    assert_eq!(e.kind_code(), "corrupt", "{e}");
}

// ---------------------------------------------------------------------------------------
// Whiteouts

#[test]
fn whiteouts_in_tar_order() {
    let mut b = Builder::new(Vec::new());
    add_file(&mut b, "a", b"1", 0o644);
    add_file(&mut b, ".wh.removed", b"", 0o644);
    add_file(&mut b, "var/lib/.wh..wh..opq", b"", 0o644);
    add_file(&mut b, ".wh..wh..opq", b"", 0o644);
    add_dir(&mut b, ".wh..wh.plnk");
    add_file(
        &mut b,
        ".wh..wh.plnk/123.456",
        b"aufs hard link target",
        0o644,
    );
    add_file(&mut b, "x/.wh..wh.aufs", b"", 0o644);
    add_file(&mut b, "dir/.wh.file", b"", 0o644);
    add_file(&mut b, "z", b"2", 0o644);
    let (w, sink) = walk_ok(&finish(b), Compression::Gzip);
    assert_eq!(
        sink.paths(),
        [
            "a",
            "WH:removed:false",
            "WH:var/lib:true",
            "WH::true",
            "WH:dir/file:false",
            "z"
        ]
    );
    assert_eq!(w.entries, 9, "skipped AUFS metadata is still counted");
}

#[test]
fn invalid_whiteouts() {
    for name in [&b"dir/.wh."[..], b".wh.", b"dir/.wh.."] {
        let tar = raw_tar(&[raw_entry(name, b'0', b"")]);
        let e = walk_err(&tar, Compression::None, &Limits::default());
        assert!(
            matches!(&e, LayerError::InvalidWhiteout { .. }),
            "{name:?}: {e}"
        );
    }
    let tar = raw_tar(&[raw_entry(b"dir/.wh...", b'0', b"")]);
    let e = walk_err(&tar, Compression::None, &Limits::default());
    assert!(matches!(&e, LayerError::PathTraversal { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------
// Links, kinds, modes

#[test]
fn links_and_kinds() {
    let mut b = Builder::new(Vec::new());
    add_link(&mut b, EntryType::Symlink, "rel", "../../lib/x");
    add_link(&mut b, EntryType::Symlink, "abs", "/usr/lib/x");
    add_link(&mut b, EntryType::Link, "hard", "usr//lib/./x/");
    for (kind, path) in [
        (EntryType::Char, "dev/null"),
        (EntryType::Block, "dev/sda"),
        (EntryType::Fifo, "run/fifo"),
    ] {
        let mut h = header(kind, 0, 0o20666);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }
    let (_, sink) = walk_ok(&finish(b), Compression::None);
    assert_eq!(
        sink.file("rel").0.link_target.as_deref(),
        Some("../../lib/x"),
        "symlink targets are data"
    );
    assert_eq!(
        sink.file("abs").0.link_target.as_deref(),
        Some("/usr/lib/x")
    );
    assert_eq!(
        sink.file("hard").0.link_target.as_deref(),
        Some("usr/lib/x")
    );
    assert_eq!(sink.file("dev/null").0.kind, EntryKind::Char);
    assert_eq!(
        sink.file("dev/null").0.mode,
        0o666,
        "file type bits are stripped"
    );
    assert_eq!(sink.file("dev/sda").0.kind, EntryKind::Block);
    assert_eq!(sink.file("run/fifo").0.kind, EntryKind::Fifo);
}

#[test]
fn header_only_types_ignore_their_size_field_like_go() {
    // A symlink whose size field claims 512 bytes of data, "hiding" a header inside. Go (and
    // so containerd) ignores the size of header-only types and extracts the hidden file: so
    // must the scanner.
    let hidden = raw_entry(b"hidden", b'0', b"payload");
    let mut symlink = raw_header(b"link", b'2', 512, b"target")
        .as_bytes()
        .to_vec();
    symlink.extend_from_slice(&hidden);
    let tar = raw_tar(&[symlink]);
    let (_, sink) = walk_ok(&tar, Compression::None);
    assert_eq!(sink.paths(), ["link", "hidden"]);
    assert_eq!(sink.file("hidden").1, b"payload");
}

#[test]
fn old_style_directories_and_unknown_types() {
    let tar = raw_tar(&[
        raw_entry(b"olddir/", b'\0', b""),
        raw_entry(b"oldfile", b'\0', b"v7"),
        raw_entry(b"contiguous", b'7', b"c"),
        raw_entry(b"volume-label", b'V', b"data of an unknown type"),
        raw_entry(b"after", b'0', b"ok"),
    ]);
    let (w, sink) = walk_ok(&tar, Compression::Gzip);
    assert_eq!(sink.paths(), ["olddir", "oldfile", "contiguous", "after"]);
    assert_eq!(sink.file("olddir").0.kind, EntryKind::Dir);
    assert_eq!(sink.file("oldfile").1, b"v7");
    assert_eq!(sink.file("after").1, b"ok");
    assert_eq!(w.entries, 5, "unknown types are counted");
}

#[test]
fn gnu_sparse_file_with_extension_blocks() {
    let stored: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_path("sparse").unwrap();
    h.set_size(stored.len() as u64);
    h.set_mode(0o644);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.set_real_size(1 << 20);
    gnu.set_is_extended(true);
    h.set_cksum();
    let mut ext = tar::GnuExtSparseHeader::new();
    ext.set_is_extended(true);
    let last = tar::GnuExtSparseHeader::new();
    let mut entry = h.as_bytes().to_vec();
    entry.extend_from_slice(ext.as_bytes());
    entry.extend_from_slice(last.as_bytes());
    entry.extend_from_slice(&stored);
    entry.resize(entry.len().div_ceil(512) * 512, 0);
    let tar = raw_tar(&[entry, raw_entry(b"after", b'0', b"ok")]);
    let (_, sink) = walk_ok(&tar, Compression::None);
    let (f, content) = sink.file("sparse");
    assert_eq!(
        (f.kind, f.size),
        (EntryKind::File, 1000),
        "stored size, holes not expanded"
    );
    assert_eq!(content, stored);
    assert_eq!(sink.file("after").1, b"ok");
}

// ---------------------------------------------------------------------------------------
// PAX and GNU long names

#[test]
fn gnu_long_names_and_link_targets() {
    let long_dir = "d".repeat(150);
    let long_name = format!("{long_dir}/file");
    let long_target = format!("/{}", "t".repeat(200));
    let mut b = Builder::new(Vec::new());
    add_file(&mut b, &long_name, b"long", 0o644);
    add_link(
        &mut b,
        EntryType::Symlink,
        &format!("{long_dir}/link"),
        &long_target,
    );
    add_link(&mut b, EntryType::Link, "hl", &long_name);
    let tar = finish(b);
    assert!(
        tar.windows(13).any(|w| w == b"././@LongLink"),
        "the builder wrote GNU 'L'/'K' entries"
    );
    let (w, sink) = walk_ok(&tar, Compression::Gzip);
    assert_eq!(sink.file(&long_name).1, b"long");
    assert_eq!(
        sink.file(&format!("{long_dir}/link"))
            .0
            .link_target
            .as_deref(),
        Some(long_target.as_str())
    );
    assert_eq!(
        sink.file("hl").0.link_target.as_deref(),
        Some(long_name.as_str())
    );
    assert_eq!(w.entries, 3, "GNU long-name entries are not counted");
}

#[test]
fn pax_headers_override_the_ustar_fields() {
    let long = format!("{}/pax-file", "p".repeat(300));
    let mut b = Builder::new(Vec::new());
    b.append_pax_extensions([
        ("path", long.as_bytes()),
        ("uid", &b"4000000000"[..]),
        ("gid", b"77"),
        ("mtime", b"1700000000.123"),
        ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
    ])
    .unwrap();
    add_file(&mut b, "decoy", b"pax", 0o644);
    // PAX size overrides the header's size field (Go writes files over 8 GiB this way).
    b.append_pax_extensions([("size", &b"5"[..])]).unwrap();
    let mut h = header(EntryType::Regular, 0, 0o644);
    h.set_path("sized").unwrap();
    h.set_cksum();
    b.append(&h, &b"12345"[..]).unwrap(); // writes 5 bytes of data with a 0 size field
    add_file(&mut b, "plain", b"no pax here", 0o644);
    let tar = finish(b);
    let (w, sink) = walk_ok(&tar, Compression::Zstd);
    assert_eq!(sink.paths(), [long.as_str(), "sized", "plain"]);
    let (f, c) = sink.file(&long);
    assert_eq!((f.uid, f.gid, c), (4_000_000_000, 77, &b"pax"[..]));
    assert_eq!(sink.file("sized").1, b"12345");
    assert_eq!(
        sink.file("plain").0.uid,
        1000,
        "a PAX header applies to one entry only"
    );
    assert_eq!(w.entries, 3, "PAX headers are not counted");
}

#[test]
fn pax_linkpath_and_empty_values() {
    let mut pax = raw_header(b"PaxHeader", b'x', 0, b"");
    let body = pax_body(&[("linkpath", b"/opt/target"), ("path", b"")]);
    pax.set_size(body.len() as u64);
    pax.set_cksum();
    let mut part = pax.as_bytes().to_vec();
    part.extend_from_slice(&body);
    part.resize(part.len().div_ceil(512) * 512, 0);
    let link = raw_header(b"link", b'2', 0, b"short").as_bytes().to_vec();
    let (_, sink) = walk_ok(&raw_tar(&[part, link]), Compression::None);
    let f = sink.file("link").0;
    assert_eq!(f.link_target.as_deref(), Some("/opt/target"));
}

#[test]
fn global_pax_headers_are_not_applied_like_go() {
    // Go's archive/tar returns a 'g' header as an entry of its own and containerd ignores
    // it: applying its `path` to later entries would make the scanner see other names than
    // the runtime extracts.
    let body = pax_body(&[("path", b"decoy"), ("uid", b"5")]);
    let tar = raw_tar(&[
        raw_entry(b"pax_global_header", b'g', &body),
        raw_entry(b"real", b'0', b"x"),
    ]);
    let (w, sink) = walk_ok(&tar, Compression::None);
    assert_eq!(sink.paths(), ["real"]);
    assert_eq!(sink.file("real").0.uid, 0);
    assert_eq!(w.entries, 1);
}

#[test]
fn malformed_pax_header_is_corrupt() {
    let tar = raw_tar(&[
        raw_entry(b"PaxHeader", b'x', b"99 path=x\n"),
        raw_entry(b"a", b'0', b""),
    ]);
    assert_eq!(
        walk_err(&tar, Compression::None, &Limits::default()).kind_code(),
        "corrupt"
    );
}

#[test]
fn huge_extension_headers_are_refused_before_reading() {
    // Headers claiming 8 GiB of PAX / long-name data, and no data at all: reading the body
    // would fail with Truncated (or allocate 8 GiB). ExtensionTooLarge proves the size was
    // checked first.
    for typeflag in [b'x', b'g', b'L', b'K'] {
        let tar = raw_header(b"././@LongLink", typeflag, 8 << 30, b"")
            .as_bytes()
            .to_vec();
        for c in [Compression::None, Compression::Gzip] {
            let e = walk_err(&tar, c, &Limits::default());
            let LayerError::ExtensionTooLarge { size, limit, .. } = e else {
                panic!("{}: {e}", typeflag as char)
            };
            assert_eq!((size, limit), (8 << 30, 1 << 20));
        }
    }
    // Just over a configured limit, with the body present.
    let body = pax_body(&[("path", "a".repeat(2000).as_bytes())]);
    let tar = raw_tar(&[
        raw_entry(b"PaxHeader", b'x', &body),
        raw_entry(b"a", b'0', b""),
    ]);
    let limits = Limits {
        max_extension_bytes: 1024,
        ..Limits::default()
    };
    assert_eq!(
        walk_err(&tar, Compression::None, &limits).kind_code(),
        "extension-too-large"
    );
}

// ---------------------------------------------------------------------------------------
// Hostile paths

#[test]
fn path_traversal_is_refused() {
    for name in [&b"../x"[..], b"a/../../x", b"/etc/x", b"a/..", b"./../x"] {
        let tar = raw_tar(&[raw_entry(b"ok", b'0', b""), raw_entry(name, b'0', b"evil")]);
        for c in [Compression::None, Compression::Gzip] {
            let e = walk_err(&tar, c, &Limits::default());
            let LayerError::PathTraversal { path, .. } = &e else {
                panic!("{name:?}: {e}")
            };
            assert_eq!(path.as_bytes(), name);
        }
    }
}

#[test]
fn hard_link_target_traversal_is_refused() {
    for target in [&b"../etc/shadow"[..], b"/etc/shadow", b"a/../../etc/shadow"] {
        let tar = raw_tar(&[raw_header(b"innocent", b'1', 0, target).as_bytes().to_vec()]);
        let e = walk_err(&tar, Compression::None, &Limits::default());
        let LayerError::PathTraversal { path, .. } = &e else {
            panic!("{target:?}: {e}")
        };
        assert_eq!(path.as_bytes(), target);
    }
    // A PAX linkpath is checked the same way.
    let body = pax_body(&[("linkpath", b"../../etc/shadow")]);
    let tar = raw_tar(&[
        raw_entry(b"PaxHeader", b'x', &body),
        raw_header(b"hl", b'1', 0, b"ok").as_bytes().to_vec(),
    ]);
    assert_eq!(
        walk_err(&tar, Compression::None, &Limits::default()).kind_code(),
        "path-traversal"
    );
}

#[test]
fn long_paths_are_refused() {
    let limits = Limits {
        max_path_bytes: 64,
        ..Limits::default()
    };
    let mut b = Builder::new(Vec::new());
    add_file(&mut b, &"x".repeat(65), b"", 0o644);
    let e = walk_err(&finish(b), Compression::Gzip, &limits);
    assert!(
        matches!(
            e,
            LayerError::PathTooLong {
                len: 65,
                limit: 64,
                ..
            }
        ),
        "{e}"
    );

    let mut b = Builder::new(Vec::new());
    add_link(&mut b, EntryType::Symlink, "s", &"t".repeat(100));
    let e = walk_err(&finish(b), Compression::Gzip, &limits);
    assert!(matches!(e, LayerError::PathTooLong { len: 100, .. }), "{e}");
}

// ---------------------------------------------------------------------------------------
// Limits

#[test]
fn too_many_entries() {
    let mut b = Builder::new(Vec::new());
    for i in 0..11 {
        add_file(&mut b, &format!("f{i}"), b"", 0o644);
    }
    let tar = finish(b);
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let e = walk_err(&tar, Compression::Gzip, &limits);
    assert!(
        matches!(e, LayerError::TooManyEntries { limit: 10, .. }),
        "{e}"
    );
    let limits = Limits {
        max_entries: 11,
        ..Limits::default()
    };
    let blob = gzip(&tar);
    assert_eq!(
        walk(&blob, &spec(&blob, Compression::Gzip), &limits)
            .0
            .unwrap()
            .entries,
        11
    );
}

fn zeros_tar(len: usize) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    add_file(&mut b, "zeros", &vec![0u8; len], 0o644);
    finish(b)
}

#[test]
fn decompression_bomb_is_stopped_early() {
    let tar = zeros_tar(8 << 20);
    let limits = Limits {
        max_ratio: 10,
        ratio_floor_bytes: 1 << 20,
        ..Limits::default()
    };
    for c in [Compression::Zstd, Compression::Gzip] {
        let e = walk_err(&tar, c, &limits);
        let LayerError::DecompressionBomb {
            compressed,
            uncompressed,
            ratio_limit,
            ..
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!(ratio_limit, 10);
        assert!(uncompressed > 1 << 20 && uncompressed > 10 * compressed);
        assert!(
            uncompressed < 4 << 20,
            "stopped soon after the floor, at {uncompressed}"
        );
    }
    // The same layer passes with the defaults (below the 256 MiB floor).
    walk_ok(&tar, Compression::Zstd);
}

#[test]
fn size_limits() {
    let tar = zeros_tar(2 << 20);
    let limits = Limits {
        max_uncompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let e = walk_err(&tar, c, &limits);
        assert!(
            matches!(
                e,
                LayerError::TooLarge {
                    what: Stream::Uncompressed,
                    limit: 1048576,
                    ..
                }
            ),
            "{e}"
        );
    }
    let limits = Limits {
        max_compressed_bytes: 300,
        ..Limits::default()
    };
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let e = walk_err(&sample_tar(), c, &limits);
        assert!(
            matches!(
                e,
                LayerError::TooLarge {
                    what: Stream::Compressed,
                    limit: 300,
                    ..
                }
            ),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Truncated and corrupt input

#[test]
fn truncated_streams() {
    let tar = sample_tar();
    // Cut inside a file body, inside a header, and inside the compressed stream.
    let body_cut = tar.len() / 2;
    let header_cut = 512 * 2 + 100;
    for (name, blob, c) in [
        (
            "gzip",
            gzip(&tar)[..gzip(&tar).len() - 10].to_vec(),
            Compression::Gzip,
        ),
        ("gzip early", gzip(&tar)[..100].to_vec(), Compression::Gzip),
        ("gzip header", gzip(&tar)[..5].to_vec(), Compression::Gzip),
        ("gzip empty", vec![], Compression::Gzip),
        (
            "zstd",
            zstd(&tar)[..zstd(&tar).len() - 10].to_vec(),
            Compression::Zstd,
        ),
        ("zstd empty", vec![], Compression::Zstd),
        ("tar mid-entry", tar[..body_cut].to_vec(), Compression::None),
        (
            "tar mid-header",
            tar[..header_cut].to_vec(),
            Compression::None,
        ),
        (
            "gzip of tar mid-entry",
            gzip(&tar[..body_cut]),
            Compression::Gzip,
        ),
    ] {
        // With the digest of the truncated blob, the walk reports the truncation...
        let e = walk(&blob, &spec(&blob, c), &Limits::default())
            .0
            .unwrap_err();
        assert!(matches!(e, LayerError::Truncated { .. }), "{name}: {e}");
        // ...with the manifest's digest, the blob is simply not the layer.
        let full = compress(&tar, c);
        let e = walk(&blob, &spec(&full, c), &Limits::default())
            .0
            .unwrap_err();
        assert!(
            matches!(e, LayerError::DigestMismatch { .. }),
            "{name}: {e}"
        );
    }
}

#[test]
fn corrupt_streams() {
    let tar = sample_tar();
    let mut bad_checksum = tar.clone();
    bad_checksum[512 + 10] ^= 0x20; // a name byte of the second header
    let mut bad_gzip = gzip(&tar);
    bad_gzip[0] = b'X';
    let mut bad_deflate = gzip(&tar);
    bad_deflate[12] ^= 0xff;
    let mut bad_zstd = zstd(&tar);
    bad_zstd[1] ^= 0xff;
    let mut bad_size = raw_header(b"a", b'0', 0, b"");
    bad_size.as_old_mut().size = *b"12345678901x";
    bad_size.set_cksum();
    for (name, blob, c) in [
        ("tar checksum", bad_checksum, Compression::None),
        ("gzip magic", bad_gzip, Compression::Gzip),
        ("deflate data", bad_deflate, Compression::Gzip),
        ("zstd magic", bad_zstd, Compression::Zstd),
        (
            "size field",
            raw_tar(&[bad_size.as_bytes().to_vec()]),
            Compression::None,
        ),
        (
            "not a tar",
            b"hello world, this is not a tar".repeat(40),
            Compression::None,
        ),
    ] {
        let e = walk(&blob, &spec(&blob, c), &Limits::default())
            .0
            .unwrap_err();
        assert!(matches!(e, LayerError::Corrupt { .. }), "{name}: {e}");
    }
}

/// Yields `data`, then fails with `kind` after `fail_at` bytes.
struct FailingReader {
    data: Vec<u8>,
    pos: usize,
    fail_at: usize,
    kind: io::ErrorKind,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.fail_at {
            return Err(io::Error::new(self.kind, "connection reset by peer"));
        }
        let end = self.fail_at.min(self.data.len()).min(self.pos + buf.len());
        let n = end - self.pos;
        buf[..n].copy_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(n)
    }
}

#[test]
fn reader_errors_are_read_errors() {
    let tar = sample_tar();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let blob = compress(&tar, c);
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::InvalidData,
        ] {
            for fail_at in [0, blob.len() / 2, blob.len()] {
                let reader = FailingReader {
                    data: blob.clone(),
                    pos: 0,
                    fail_at,
                    kind,
                };
                let e = walk_layer(
                    reader,
                    &spec(&blob, c),
                    &Limits::default(),
                    &mut Collect::default(),
                )
                .unwrap_err();
                let LayerError::Read { source, .. } = &e else {
                    panic!("{c:?} {kind:?} at {fail_at}: {e}")
                };
                assert_eq!(source.kind(), kind);
                assert_eq!(
                    source.to_string(),
                    "connection reset by peer",
                    "the reader's error, unchanged"
                );
            }
        }
    }
}

#[test]
fn interrupted_reads_are_retried() {
    struct Interrupting<'a>(&'a [u8], bool);
    impl Read for Interrupting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(1000);
            self.0.read(&mut buf[..n])
        }
    }
    let tar = sample_tar();
    let blob = gzip(&tar);
    let mut sink = Collect::default();
    let w = walk_layer(
        Interrupting(&blob, false),
        &spec(&blob, Compression::Gzip),
        &Limits::default(),
        &mut sink,
    )
    .unwrap();
    check_sample(&w, &sink, &tar);
}

// ---------------------------------------------------------------------------------------
// The sink

#[test]
fn sink_may_read_part_of_a_body() {
    let tar = sample_tar();
    for limit in [0, 1, 5, 100_000] {
        let blob = gzip(&tar);
        let mut sink = Collect {
            read_limit: Some(limit),
            ..Collect::default()
        };
        walk_layer(
            &blob[..],
            &spec(&blob, Compression::Gzip),
            &Limits::default(),
            &mut sink,
        )
        .unwrap();
        assert_eq!(sink.paths().len(), 8);
        let (_, c) = sink.file("big.bin");
        assert_eq!(c.len() as u64, limit.min(300_000));
        assert_eq!(
            sink.file("etc/os-release").1,
            &b"ID=gantry\n"[..(limit as usize).min(10)]
        );
    }
}

#[test]
fn sink_errors_name_the_entry() {
    struct Refuse;
    impl EntrySink for Refuse {
        fn file(&mut self, entry: &FileEntry, _: &mut dyn Read) -> io::Result<()> {
            if entry.path == "usr/bin/su" {
                return Err(io::Error::other("analyzer failed"));
            }
            Ok(())
        }
        fn whiteout(&mut self, _: &Whiteout) -> io::Result<()> {
            Ok(())
        }
    }
    let blob = gzip(&sample_tar());
    let e = walk_layer(
        &blob[..],
        &spec(&blob, Compression::Gzip),
        &Limits::default(),
        &mut Refuse,
    )
    .unwrap_err();
    let LayerError::Sink { path, source, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        (path.as_str(), source.to_string().as_str()),
        ("usr/bin/su", "analyzer failed")
    );
}

#[test]
fn stream_failures_win_over_what_the_sink_returns() {
    // A sink that swallows read errors must not turn a truncated layer into a success, and
    // one that propagates them must not turn it into a sink error.
    struct Swallow(bool);
    impl EntrySink for Swallow {
        fn file(&mut self, _: &FileEntry, body: &mut dyn Read) -> io::Result<()> {
            let r = io::copy(body, &mut io::sink());
            if self.0 { Ok(()) } else { r.map(|_| ()) }
        }
        fn whiteout(&mut self, _: &Whiteout) -> io::Result<()> {
            Ok(())
        }
    }
    let tar = sample_tar();
    let cut = tar.len() - 200_000; // inside big.bin
    for swallow in [true, false] {
        for c in [Compression::None, Compression::Gzip] {
            let blob = compress(&tar[..cut], c);
            let e = walk_layer(
                &blob[..],
                &spec(&blob, c),
                &Limits::default(),
                &mut Swallow(swallow),
            )
            .unwrap_err();
            assert!(
                matches!(e, LayerError::Truncated { .. }),
                "{swallow} {c:?}: {e}"
            );
        }
        let blob = gzip(&tar);
        let reader = FailingReader {
            data: blob.clone(),
            pos: 0,
            fail_at: blob.len() / 2,
            kind: io::ErrorKind::TimedOut,
        };
        let e = walk_layer(
            reader,
            &spec(&blob, Compression::Gzip),
            &Limits::default(),
            &mut Swallow(swallow),
        )
        .unwrap_err();
        assert!(matches!(e, LayerError::Read { .. }), "{swallow}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Robustness

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fuzz_tar() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    add_dir(&mut b, "etc/");
    add_file(
        &mut b,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    b.append_pax_extensions([("path", &b"pax/long/name"[..]), ("uid", b"12")])
        .unwrap();
    add_file(&mut b, "decoy", b"pax body", 0o644);
    add_file(
        &mut b,
        &format!("{}/gnu", "g".repeat(120)),
        b"gnu long",
        0o755,
    );
    add_link(&mut b, EntryType::Symlink, "sym", "/etc/passwd");
    add_link(&mut b, EntryType::Link, "hard", "etc/passwd");
    add_file(&mut b, "etc/.wh.shadow", b"", 0o644);
    add_file(&mut b, ".wh..wh..opq", b"", 0o644);
    let text: Vec<u8> = (0..5000u32)
        .map(|i| b"abcdefgh\n"[(i % 9) as usize])
        .collect();
    add_file(&mut b, "text", &text, 0o644);
    finish(b)
}

#[test]
fn never_panics_on_mutated_layers() {
    let tar = fuzz_tar();
    let limits = Limits {
        max_compressed_bytes: 1 << 20,
        max_uncompressed_bytes: 4 << 20,
        ratio_floor_bytes: 1 << 20,
        max_entries: 1000,
        max_extension_bytes: 64 << 10,
        ..Limits::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let formats = [Compression::None, Compression::Gzip, Compression::Zstd];
    let valid = formats.map(|c| compress(&tar, c));
    let (mut ok, mut err) = (0, 0);
    for i in 0..2000 {
        let c = formats[i % 3];
        let blob = match rng.below(4) {
            // Flip bytes of the compressed blob.
            0 => {
                let mut b = valid[i % 3].clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(b.len());
                    b[at] ^= 1 << rng.below(8);
                }
                b
            }
            // Truncate the blob.
            1 => valid[i % 3][..rng.below(valid[i % 3].len())].to_vec(),
            // Damage the tar stream, then compress it: reaches the tar parser.
            2 => {
                let mut t = tar.clone();
                for _ in 0..=rng.below(8) {
                    let at = rng.below(t.len());
                    t[at] = rng.next() as u8;
                }
                compress(&t, c)
            }
            // Damage one header hard (random bytes over a header-aligned block) and fix its
            // checksum, so the walk acts on the garbage.
            _ => {
                let mut t = tar.clone();
                let block = rng.below(t.len() / 512) * 512;
                let start = block + rng.below(500);
                for b in &mut t[start..(start + 12).min(block + 512)] {
                    *b = rng.next() as u8;
                }
                let mut h = Header::new_old();
                h.as_mut_bytes().copy_from_slice(&t[block..block + 512]);
                h.set_cksum();
                t[block..block + 512].copy_from_slice(h.as_bytes());
                compress(&t, c)
            }
        };
        // Half the time with the blob's own digest, so the walk result is the content's.
        let s = if rng.below(2) == 0 {
            spec(&blob, c)
        } else {
            spec(&valid[i % 3], c)
        };
        let mut sink = Collect {
            read_limit: [None, Some(3)][rng.below(2)],
            ..Collect::default()
        };
        match walk_layer(&blob[..], &s, &limits, &mut sink) {
            Ok(w) => {
                assert_eq!(w.digest, sha256(&blob));
                assert_eq!(w.compressed_size, blob.len() as u64);
                ok += 1;
            }
            Err(e) => {
                assert!(!e.kind_code().is_empty());
                assert!(e.to_string().contains(&s.digest.to_string()));
                err += 1;
            }
        }
    }
    assert!(
        ok > 50 && err > 500,
        "ok {ok}, err {err}: the mutations should exercise both"
    );
}

// ---------------------------------------------------------------------------------------
// Decoder memory

/// A zstd stream whose frame asks for a 2^`log` window (as `zstd --long=LOG` writes it).
fn zstd_long(data: &[u8], log: u32) -> Vec<u8> {
    let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
    e.window_log(log).unwrap();
    e.long_distance_matching(true).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Issue 11: one zstd layer made the decoder allocate a 128 MiB window. The frame's window is
/// now checked against `zstd-window-log-max` before anything is allocated.
#[test]
fn a_zstd_window_over_the_limit_is_refused_by_name() {
    let mut b = Builder::new(Vec::new());
    add_file(&mut b, "a", b"hello", 0o644);
    let tar = finish(b);
    let long = zstd_long(&tar, 27);
    let spec = spec(&long, Compression::Zstd);
    let e = walk(&long, &spec, &Limits::default()).0.unwrap_err();
    assert!(
        matches!(
            e,
            LayerError::ZstdWindowTooLarge {
                window_log_max: 23,
                ..
            }
        ),
        "{e}: {:?}",
        std::error::Error::source(&e)
    );
    assert_eq!(e.kind_code(), "zstd-window-too-large");
    assert!(e.to_string().contains("zstd-window-log-max=23"), "{e}");
    // The same layer is read when the limit allows its window.
    let limits = Limits {
        zstd_window_log_max: 27,
        ..Limits::default()
    };
    let (walked, sink) = walk(&long, &spec, &limits);
    assert_eq!(walked.unwrap().entries, 1);
    assert_eq!(sink.events.len(), 1);
    // BuildKit-style layers (level 3, a 2^21 window at most) are within the default.
    walk_ok(&tar, Compression::Zstd);
}
