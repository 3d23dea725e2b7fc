//! gantry-testkit's own tests: local formats are structurally right, and images really reach
//! (and come back from) Debian's docker-registry, with and without auth.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "harness/local.rs"]
mod local;
#[path = "harness/registry.rs"]
mod registry;

#[test]
fn layer_from_a_directory_tree() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/tool"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    std::os::unix::fs::symlink("tool", root.join("usr/bin/alias")).unwrap();
    let built = gantry_testkit::LayerBuilder::new(gantry_model::oci::Compression::Gzip)
        .from_dir(root)
        .unwrap()
        .build()
        .unwrap();
    let tar_bytes = built.tar_bytes().unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut seen = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        seen.push((
            e.path().unwrap().to_string_lossy().into_owned(),
            h.entry_type(),
            h.mode().unwrap(),
            h.link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned()),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("usr/".into(), tar::EntryType::Directory, 0o755, None),
            ("usr/bin/".into(), tar::EntryType::Directory, 0o755, None),
            (
                "usr/bin/alias".into(),
                tar::EntryType::Symlink,
                0o777,
                Some("tool".into())
            ),
            ("usr/bin/tool".into(), tar::EntryType::Regular, 0o4755, None),
            (
                "usr/bin/tool2".into(),
                tar::EntryType::Link,
                0o644,
                Some("usr/bin/tool".into())
            ),
        ]
    );
}
