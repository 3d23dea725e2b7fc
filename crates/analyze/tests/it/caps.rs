//! Record caps and the memory budget (issue 11, findings 5 and 13): real layers, the real
//! walker and the built-in analyzers.

use std::sync::Arc;
use std::time::Duration;

use gantry_analyze::{AnalyzerSet, Budget, CapExceeded, Caps, ImageTally, MemoryBudget};
use gantry_layer::{LayerError, LayerSpec, Limits, walk_layer};
use gantry_model::oci::Compression;
use gantry_testkit::LayerBuilder;

use crate::craft;

fn status(n: usize) -> String {
    (0..n)
        .map(|i| format!("Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"))
        .collect()
}

/// Walks `layer` with the built-in analyzers under `budget`; the cap crossed, if any.
fn walk_within(
    layer: LayerBuilder,
    budget: Budget,
    memory: Option<Arc<MemoryBudget>>,
) -> Result<usize, CapExceeded> {
    let compression = layer.compression();
    let built = layer.build().unwrap();
    let set = AnalyzerSet::builtin().unwrap();
    let mut dispatcher = set.dispatcher_with(budget, memory);
    let spec = LayerSpec {
        digest: built.digest.clone(),
        diff_id: Some(built.diff_id.clone()),
        compression,
    };
    match walk_layer(
        built.blob().reader().unwrap(),
        &spec,
        &Limits::default(),
        &mut dispatcher,
    ) {
        Ok(_) => Ok(dispatcher.finish().packages.len()),
        Err(LayerError::Sink { source, .. }) => Err(source
            .get_ref()
            .and_then(|e| e.downcast_ref::<CapExceeded>())
            .cloned()
            .unwrap_or_else(|| panic!("not a cap: {source}"))),
        Err(e) => panic!("{e}"),
    }
}

fn caps(limits: Limits) -> Caps {
    Caps::from_limits(&limits)
}

/// Issue 11: a dpkg database of 800,000 packages in a 2 MiB layer drove a scan to 3.3 GB.
/// The parser now stops one package past the cap, and the walk fails naming it.
#[test]
fn a_dpkg_database_over_the_package_cap_fails_the_walk() {
    let layer = || LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/status", status(5000));
    let limits = Limits {
        max_layer_packages: 1000,
        ..Limits::default()
    };
    let e = walk_within(layer(), Budget::for_layer(caps(limits)), None).unwrap_err();
    assert_eq!((e.name, e.limit), ("layer-packages", 1000));
    assert_eq!(
        e.to_string(),
        "more than 1000 packages in one layer (limit layer-packages=1000)"
    );
    // Within the default caps the same layer is read whole.
    assert_eq!(walk_within(layer(), Budget::default(), None), Ok(5000));
}

#[test]
fn listed_files_and_findings_are_capped_too() {
    let list: String = (0..500).map(|i| format!("/usr/share/f{i}\n")).collect();
    let limits = Limits {
        max_layer_files: 300,
        ..Limits::default()
    };
    let e = walk_within(
        LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/info/big.list", list),
        Budget::for_layer(caps(limits)),
        None,
    )
    .unwrap_err();
    assert_eq!(e.name, "layer-files");

    // Tar entries count as file records.
    let e = walk_within(
        LayerBuilder::new(Compression::Gzip).many_files("f", 400),
        Budget::for_layer(caps(limits)),
        None,
    )
    .unwrap_err();
    assert_eq!(e.name, "layer-files");

    // Every unreadable package.json is an unknown: a finding.
    let mut layer = LayerBuilder::new(Compression::Gzip);
    for i in 0..50 {
        layer = layer.file(&format!("app/node_modules/p{i}/package.json"), "{broken");
    }
    let limits = Limits {
        max_layer_findings: 20,
        ..Limits::default()
    };
    let e = walk_within(layer, Budget::for_layer(caps(limits)), None).unwrap_err();
    assert_eq!((e.name, e.limit), ("layer-findings", 20));
}

#[test]
fn layers_of_one_image_share_the_image_caps() {
    let limits = Limits {
        max_image_packages: 1500,
        ..Limits::default()
    };
    let image = ImageTally::new();
    let layer = || LayerBuilder::new(Compression::Gzip).file("var/lib/dpkg/status", status(1000));
    let first = Budget::new(caps(limits), Arc::clone(&image));
    assert_eq!(walk_within(layer(), first, None), Ok(1000));
    let second = Budget::new(caps(limits), Arc::clone(&image));
    let e = walk_within(layer(), second, None).unwrap_err();
    assert_eq!((e.name, e.limit), ("image-packages", 1500));
}

#[test]
fn java_archives_count_their_packages_as_they_are_read() {
    let poms: Vec<(String, String)> = (0..300)
        .map(|i| {
            (
                format!("META-INF/maven/org.x/a{i}/pom.properties"),
                format!("groupId=org.x\nartifactId=a{i}\nversion=1\n"),
            )
        })
        .collect();
    let entries: Vec<(&str, &[u8], bool)> = poms
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_bytes(), false))
        .collect();
    let jar = craft::zip(&entries);
    let limits = Limits {
        max_layer_packages: 100,
        ..Limits::default()
    };
    let layer = || LayerBuilder::new(Compression::Gzip).file("app/shaded.jar", &jar);
    let e = walk_within(layer(), Budget::for_layer(caps(limits)), None).unwrap_err();
    assert_eq!(e.name, "layer-packages");
    assert_eq!(walk_within(layer(), Budget::default(), None), Ok(300));
}

/// A large buffer is reserved in the shared budget before it is read: while another walk
/// holds the budget, this one waits, then finishes.
#[test]
fn large_reads_wait_for_the_shared_memory_budget() {
    let memory = MemoryBudget::new(8 << 20);
    let held = memory.reserve(7 << 20);
    let walk = {
        let memory = Arc::clone(&memory);
        std::thread::spawn(move || {
            // A 3 MiB package database: over the 1 MiB a walk reads without reserving.
            let layer = LayerBuilder::new(Compression::Gzip)
                .file("var/lib/dpkg/status", status(3 << 20 >> 6));
            walk_within(layer, Budget::default(), Some(memory))
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!walk.is_finished(), "the walk must wait for the budget");
    drop(held);
    assert!(walk.join().unwrap().unwrap() > 40_000);
    assert_eq!(memory.available(), 8 << 20, "everything was given back");
}

/// The zip reader keeps a record per directory entry: an archive declaring more entries
/// than `MAX_ARCHIVE_ENTRIES` in a ZIP64 end record is an unknown before its directory is read.
#[test]
fn a_jar_declaring_a_huge_directory_is_not_read() {
    let mut record = b"PK\x06\x06".to_vec();
    record.extend([0u8; 20]);
    record.extend(10_000_000u64.to_le_bytes());
    record.extend(10_000_000u64.to_le_bytes());
    let jar = craft::zip(&[
        (
            "META-INF/maven/org.x/a/pom.properties",
            b"artifactId=a\nversion=1\n",
            false,
        ),
        ("end", &record, true),
    ]);
    let report = crate::walk(LayerBuilder::new(Compression::Gzip).file("app/a.jar", &jar));
    assert!(report.packages.is_empty());
    let reasons: Vec<_> = report.unknowns.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["app/a.jar: the directory declares 10000000 entries, more than 100000; not read"]
    );
}
