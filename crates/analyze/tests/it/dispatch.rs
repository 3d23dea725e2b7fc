//! The dispatcher behind a real layer walk: testkit layers, gantry-layer's walker.

use gantry_analyze::squash;
use gantry_model::fs::EntryKind;
use gantry_model::oci::Compression;
use gantry_testkit::LayerBuilder;

use crate::walk;

#[test]
fn records_every_entry_and_feeds_os_release() {
    let report = walk(
        LayerBuilder::new(Compression::Gzip)
            .dir("etc")
            .file(
                "etc/os-release",
                "ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            )
            .symlink("etc/mtab", "/proc/mounts")
            .file_mode("bin/busybox", b"\x7fELF", 0o4755)
            .hardlink("bin/sh", "bin/busybox")
            .whiteout("var/cache/apk"),
    );
    let kinds: Vec<_> = report
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("etc", EntryKind::Dir),
            ("etc/os-release", EntryKind::File),
            ("etc/mtab", EntryKind::Symlink),
            ("bin/busybox", EntryKind::File),
            ("bin/sh", EntryKind::Hardlink),
        ]
    );
    assert_eq!(report.files[2].link_target.as_deref(), Some("/proc/mounts"));
    assert_eq!(report.files[3].mode, 0o4755);
    assert_eq!(report.files[4].link_target.as_deref(), Some("bin/busybox"));
    assert_eq!(report.whiteouts.len(), 1);
    assert_eq!(report.os_release.len(), 1);
    assert_eq!(report.os_release[0].1.id, "alpine");
    assert!(report.unknowns.is_empty());
}

#[test]
fn unparsable_and_oversized_files_become_unknowns() {
    let mut big = b"ID=debian\n".to_vec();
    big.extend(std::iter::repeat_n(b'#', 70 * 1024));
    let report = walk(
        LayerBuilder::new(Compression::Zstd)
            .file("etc/os-release", "garbage without an id\n")
            .file("usr/lib/os-release", big),
    );
    assert!(report.os_release.is_empty());
    let reasons: Vec<_> = report
        .unknowns
        .iter()
        .map(|u| (u.path.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].0 == "etc/os-release" && reasons[0].1.contains("no ID"));
    assert!(reasons[1].0 == "usr/lib/os-release" && reasons[1].1.contains("64 KiB"));
}

#[test]
fn squash_of_walked_layers() {
    let l0 = walk(
        LayerBuilder::new(Compression::Gzip)
            .file("app/secret.pem", "-----BEGIN PRIVATE KEY-----")
            .file("app/main", "bin"),
    );
    let l1 = walk(LayerBuilder::new(Compression::None).whiteout("app/secret.pem"));
    let fs = squash([&l0, &l1]);
    assert!(fs.get("app/secret.pem").is_none());
    assert!(fs.get("app/main").is_some());
    assert_eq!(fs.changes.len(), 1);
    assert_eq!(fs.changes[0].entry.path, "app/secret.pem");
    assert_eq!((fs.changes[0].layer, fs.changes[0].by_layer), (0, 1));
}
