//! `facts.size`: what the image costs to ship and store, and what it ships for nothing.

use std::collections::{BTreeMap, HashMap};

use gantry_analyze::LayerReport;
use gantry_model::fs::EntryKind;
use gantry_scan::ScanReport;
use serde::{Deserialize, Serialize};

/// Size facts of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeFacts {
    /// Sum of layer blob sizes (what a pull downloads).
    pub compressed_bytes: u64,
    /// Sum of uncompressed layer sizes (what a node stores).
    pub uncompressed_bytes: u64,
    /// Number of layers.
    pub layer_count: u64,
    /// Bytes of regular files visible in the final filesystem.
    pub final_bytes: u64,
    /// Wasted bytes as dive computes them: for every path that appears in more than one
    /// layer (added, changed, or deleted by a whiteout), the sizes of all its versions.
    pub wasted_bytes: u64,
    /// Bytes shipped in layers but invisible in the final filesystem (deleted or
    /// overwritten file contents, whole deleted subtrees included).
    pub hidden_bytes: u64,
    /// Largest uncompressed layer.
    pub largest_layer_bytes: u64,
}

/// Computes the size facts of a scanned image.
pub fn size_facts(scan: &ScanReport) -> SizeFacts {
    let walked: Vec<&LayerReport> = scan
        .layers
        .iter()
        .filter_map(|l| l.layer.as_ref().map(|w| &w.report))
        .collect();
    SizeFacts {
        compressed_bytes: scan.layers.iter().map(|l| l.descriptor.size).sum(),
        uncompressed_bytes: scan
            .layers
            .iter()
            .filter_map(|l| l.layer.as_ref())
            .map(|w| w.stats.uncompressed_size)
            .sum(),
        layer_count: scan.layers.len() as u64,
        final_bytes: scan.filesystem.visible_bytes(),
        wasted_bytes: dive_wasted_bytes(&walked),
        hidden_bytes: scan.filesystem.hidden_bytes(),
        largest_layer_bytes: scan
            .layers
            .iter()
            .filter_map(|l| l.layer.as_ref())
            .map(|w| w.stats.uncompressed_size)
            .max()
            .unwrap_or(0),
    }
}

/// dive's "potential wasted space" (`filetree/efficiency.go`): every occurrence of a path in a
/// layer counts — an added or changed file with its size, a whiteout of a file with 0, a
/// whiteout of a directory with the sizes of the files it removed — and every path that
/// occurs in more than one layer contributes all of its occurrences. Directory entries have
/// size 0, so they only matter as occurrences.
fn dive_wasted_bytes(layers: &[&LayerReport]) -> u64 {
    #[derive(Default)]
    struct PathSeen {
        occurrences: u32,
        cumulative: u64,
    }
    let mut seen: HashMap<String, PathSeen> = HashMap::new();
    // The stacked view below the current layer: path → (is_dir, size).
    let mut visible: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    for layer in layers {
        for w in &layer.whiteouts {
            let subtree = |visible: &BTreeMap<String, (bool, u64)>| -> Vec<String> {
                if w.path.is_empty() {
                    return visible.keys().cloned().collect();
                }
                let lo = format!("{}/", w.path);
                let hi = format!("{}0", w.path);
                visible.range(lo..hi).map(|(k, _)| k.clone()).collect()
            };
            let children = subtree(&visible);
            if !w.opaque {
                let removed = match visible.get(&w.path) {
                    Some((true, _)) => children
                        .iter()
                        .filter_map(|c| visible.get(c))
                        .map(|(_, s)| s)
                        .sum(),
                    _ => 0,
                };
                let p = seen.entry(w.path.clone()).or_default();
                p.occurrences += 1;
                p.cumulative += removed;
                visible.remove(&w.path);
            }
            for c in children {
                visible.remove(&c);
            }
        }
        for f in &layer.files {
            let is_dir = f.kind == EntryKind::Dir;
            let size = if f.kind == EntryKind::File { f.size } else { 0 };
            let p = seen.entry(f.path.clone()).or_default();
            p.occurrences += 1;
            p.cumulative += size;
            visible.insert(f.path.clone(), (is_dir, size));
        }
    }
    seen.values()
        .filter(|p| p.occurrences > 1)
        .map(|p| p.cumulative)
        .sum()
}

#[cfg(test)]
mod tests {
    use gantry_model::fs::{FileEntry, Whiteout};

    use super::*;

    fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            link_target: None,
        }
    }

    #[test]
    fn wasted_counts_every_version_of_a_repeated_path() {
        let l0 = LayerReport {
            files: vec![file("big", 100), file("once", 7)],
            ..LayerReport::default()
        };
        let l1 = LayerReport {
            files: vec![file("big", 50)],
            ..LayerReport::default()
        };
        let l2 = LayerReport {
            whiteouts: vec![Whiteout {
                path: "big".into(),
                opaque: false,
            }],
            ..LayerReport::default()
        };
        // big: 100 (added) + 50 (changed) + 0 (a file whiteout counts 0 in dive).
        assert_eq!(dive_wasted_bytes(&[&l0, &l1, &l2]), 150);
        assert_eq!(dive_wasted_bytes(&[&l0]), 0);
    }

    #[test]
    fn directory_whiteout_counts_what_it_removed() {
        let dir = FileEntry {
            kind: EntryKind::Dir,
            ..file("build", 0)
        };
        let l0 = LayerReport {
            files: vec![dir, file("build/a.o", 30), file("build/b.o", 12)],
            ..LayerReport::default()
        };
        let l1 = LayerReport {
            whiteouts: vec![Whiteout {
                path: "build".into(),
                opaque: false,
            }],
            ..LayerReport::default()
        };
        // "build" occurs twice (dir entry, whiteout): 0 + (30 + 12).
        assert_eq!(dive_wasted_bytes(&[&l0, &l1]), 42);
    }
}
