//! Applying layer reports in order: the final filesystem, and what later layers took away.
//!
//! Rules (OCI image spec, `layer.md`): a whiteout `.wh.NAME` removes `NAME` and everything
//! under it from *lower* layers; an opaque whiteout hides every lower child of its directory;
//! whiteouts never hide entries of their own layer, so a layer's whiteouts are applied before
//! its entries. An entry replaces what a lower layer had at the same path, except that a
//! directory over a directory only updates attributes; a non-directory over a directory
//! removes the directory's lower contents.

use std::collections::BTreeMap;

use gantry_model::fs::{EntryKind, FileEntry};
use serde::{Deserialize, Serialize};

use crate::LayerReport;
use crate::budget::{CapExceeded, Caps, Kept, Scope};

/// Symbolic links followed while resolving one path, as Linux's `MAXSYMLINKS`.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// A path in the final filesystem and the layer that put it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquashedFile {
    /// The entry as its layer shipped it.
    pub entry: FileEntry,
    /// Index of that layer (0 = base).
    pub layer: usize,
}

/// Why a lower layer's entry is not in the final filesystem (it still ships in its layer blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Removed by a whiteout, an opaque directory, or a non-directory replacing its parent.
    Deleted,
    /// Replaced by an entry at the same path.
    Overwritten,
}

/// One entry that a later layer deleted or overwrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The entry that was hidden, as its layer shipped it.
    pub entry: FileEntry,
    /// The layer that shipped it.
    pub layer: usize,
    /// The layer that hid it.
    pub by_layer: usize,
}

/// The squashed view of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filesystem {
    /// Final filesystem: path → entry and layer.
    pub files: BTreeMap<String, SquashedFile>,
    /// Entries of lower layers hidden by later ones, in the order they were hidden.
    pub changes: Vec<Change>,
}

impl Filesystem {
    /// The final entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&SquashedFile> {
        self.files.get(path)
    }

    /// Bytes shipped in layer blobs but invisible in the final filesystem (deleted or
    /// overwritten file contents).
    pub fn hidden_bytes(&self) -> u64 {
        self.changes.iter().map(|c| c.entry.size).sum()
    }

    /// Bytes of regular files visible in the final filesystem.
    pub fn visible_bytes(&self) -> u64 {
        self.files
            .values()
            .filter(|f| f.entry.kind == EntryKind::File)
            .map(|f| f.entry.size)
            .sum()
    }

    /// Whether any path lies below `dir` (a directory a layer created implicitly, without
    /// an entry of its own, still exists for its children).
    pub fn has_children(&self, dir: &str) -> bool {
        if dir.is_empty() {
            return !self.files.is_empty();
        }
        let lo = format!("{dir}/");
        let hi = format!("{dir}0");
        self.files.range(lo..hi).next().is_some()
    }

    /// Resolves `path` as the kernel would in a container of this filesystem: symbolic
    /// links are followed in every component (absolute targets from the image root,
    /// relative ones from the link's directory, `..` never above the root), at most
    /// [`MAX_SYMLINK_HOPS`] of them. Returns the final path and its entry, which is never a
    /// symlink (it may be a hard link: its content is that of `link_target` in the same
    /// layer). `None` when a component is missing or the links loop.
    pub fn resolve(&self, path: &str) -> Option<(String, &SquashedFile)> {
        // Components still to walk, last first.
        let mut pending: Vec<String> = path
            .split('/')
            .rev()
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut current: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    current.pop();
                    continue;
                }
                _ => {}
            }
            current.push(c);
            let here = current.join("/");
            match self.files.get(&here) {
                Some(f) if f.entry.kind == EntryKind::Symlink => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return None;
                    }
                    let target = f.entry.link_target.as_deref()?;
                    current.pop();
                    if target.starts_with('/') {
                        current.clear();
                    }
                    pending.extend(
                        target
                            .split('/')
                            .rev()
                            .filter(|c| !c.is_empty())
                            .map(str::to_string),
                    );
                }
                Some(_) => {}
                None if !pending.is_empty() && self.has_children(&here) => {}
                None => return None,
            }
        }
        let path = current.join("/");
        let f = self.files.get(&path)?;
        Some((path, f))
    }

    fn remove_subtree(&mut self, dir: &str, include_self: bool, by_layer: usize) {
        if include_self && let Some(f) = self.files.remove(dir) {
            self.hide(ChangeKind::Deleted, f, by_layer);
        }
        // Children of `dir` sort between "dir/" and "dir0" ('0' follows '/'); the root's
        // children are everything.
        let keys: Vec<String> = if dir.is_empty() {
            self.files.keys().cloned().collect()
        } else {
            let lo = format!("{dir}/");
            let hi = format!("{dir}0");
            self.files.range(lo..hi).map(|(k, _)| k.clone()).collect()
        };
        for k in keys {
            if let Some(f) = self.files.remove(&k) {
                self.hide(ChangeKind::Deleted, f, by_layer);
            }
        }
    }

    fn hide(&mut self, kind: ChangeKind, f: SquashedFile, by_layer: usize) {
        self.changes.push(Change {
            kind,
            entry: f.entry,
            layer: f.layer,
            by_layer,
        });
    }

    fn add(&mut self, entry: &FileEntry, layer: usize) {
        let new = SquashedFile {
            entry: entry.clone(),
            layer,
        };
        match self.files.get(&entry.path) {
            // A path repeated inside one layer: the later entry wins; nothing shipped in
            // another layer is hidden.
            Some(old) if old.layer == layer => {
                self.files.insert(entry.path.clone(), new);
            }
            Some(old) if old.entry.kind == EntryKind::Dir && entry.kind == EntryKind::Dir => {
                self.files.insert(entry.path.clone(), new);
            }
            Some(old) => {
                let replaced_dir = old.entry.kind == EntryKind::Dir;
                if let Some(old) = self.files.insert(entry.path.clone(), new) {
                    self.hide(ChangeKind::Overwritten, old, layer);
                }
                if replaced_dir {
                    self.remove_subtree(&entry.path, false, layer);
                }
            }
            None => {
                self.files.insert(entry.path.clone(), new);
            }
        }
    }
}

/// Applies `layers` (base first) into the final filesystem.
pub fn squash<'a>(layers: impl IntoIterator<Item = &'a LayerReport>) -> Filesystem {
    let mut fs = Filesystem::default();
    for (i, layer) in layers.into_iter().enumerate() {
        apply(&mut fs, i, layer);
    }
    fs
}

/// [`squash`], within the `image-files` cap: the squashed view holds one record per path
/// and one per hidden entry, and fails (with the index of the layer being applied) once
/// they are more than the cap. Each entry adds at most one record, so reports that kept
/// within the cap squash within it too; this bounds a squash of reports charged elsewhere.
pub fn squash_within<'a>(
    layers: impl IntoIterator<Item = &'a LayerReport>,
    caps: &Caps,
) -> Result<Filesystem, (usize, CapExceeded)> {
    let cap = caps.get(Kept::Files, Scope::Image);
    let mut fs = Filesystem::default();
    for (i, layer) in layers.into_iter().enumerate() {
        apply(&mut fs, i, layer);
        if (fs.files.len() + fs.changes.len()) as u64 > cap {
            return Err((i, caps.exceeded(Kept::Files, Scope::Image)));
        }
    }
    Ok(fs)
}

/// Applies layer `i` on top of `fs`.
fn apply(fs: &mut Filesystem, i: usize, layer: &LayerReport) {
    // Opaque first: "applies regardless of its position in the tar".
    for w in layer.whiteouts.iter().filter(|w| w.opaque) {
        fs.remove_subtree(&w.path, false, i);
    }
    for w in layer.whiteouts.iter().filter(|w| !w.opaque) {
        fs.remove_subtree(&w.path, true, i);
    }
    for entry in &layer.files {
        fs.add(entry, i);
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::fs::Whiteout;

    use super::*;

    fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.to_string(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            link_target: None,
        }
    }

    fn dir(path: &str) -> FileEntry {
        FileEntry {
            kind: EntryKind::Dir,
            mode: 0o755,
            ..file(path, 0)
        }
    }

    fn layer(files: Vec<FileEntry>, whiteouts: Vec<(&str, bool)>) -> LayerReport {
        LayerReport {
            files,
            whiteouts: whiteouts
                .into_iter()
                .map(|(p, opaque)| Whiteout {
                    path: p.to_string(),
                    opaque,
                })
                .collect(),
            ..LayerReport::default()
        }
    }

    fn paths(fs: &Filesystem) -> Vec<&str> {
        fs.files.keys().map(String::as_str).collect()
    }

    #[test]
    fn whiteout_deletes_file_and_subtree_from_lower_layers() {
        let l0 = layer(
            vec![
                dir("etc"),
                file("etc/secret.key", 100),
                dir("src"),
                file("src/a.c", 10),
                file("src/b.c", 20),
                file("srcx", 1),
            ],
            vec![],
        );
        let l1 = layer(vec![], vec![("etc/secret.key", false), ("src", false)]);
        let fs = squash([&l0, &l1]);
        assert_eq!(paths(&fs), vec!["etc", "srcx"]);
        assert_eq!(fs.hidden_bytes(), 130);
        assert!(
            fs.changes
                .iter()
                .all(|c| c.kind == ChangeKind::Deleted && c.layer == 0 && c.by_layer == 1)
        );
        assert_eq!(fs.changes.len(), 4);
    }

    #[test]
    fn whiteout_does_not_hide_same_layer_entries() {
        let l0 = layer(vec![file("a", 1)], vec![]);
        let l1 = layer(vec![file("a", 2)], vec![("a", false)]);
        let fs = squash([&l0, &l1]);
        assert_eq!(fs.get("a").map(|f| (f.layer, f.entry.size)), Some((1, 2)));
        assert_eq!(fs.changes.len(), 1);
        assert_eq!(fs.changes[0].kind, ChangeKind::Deleted);
    }

    #[test]
    fn opaque_hides_lower_children_only() {
        let l0 = layer(
            vec![dir("app"), file("app/old", 5), file("app2", 1)],
            vec![],
        );
        let l1 = layer(vec![dir("app"), file("app/new", 6)], vec![("app", true)]);
        let fs = squash([&l0, &l1]);
        assert_eq!(paths(&fs), vec!["app", "app/new", "app2"]);
        assert_eq!(fs.hidden_bytes(), 5);
    }

    #[test]
    fn root_opaque_hides_everything_lower() {
        let l0 = layer(vec![file("a", 1), dir("b"), file("b/c", 2)], vec![]);
        let l1 = layer(vec![file("d", 3)], vec![("", true)]);
        let fs = squash([&l0, &l1]);
        assert_eq!(paths(&fs), vec!["d"]);
        assert_eq!(fs.changes.len(), 3);
    }

    #[test]
    fn overwrite_is_recorded_and_dir_over_dir_is_not() {
        let l0 = layer(vec![dir("usr"), file("usr/bin", 7)], vec![]);
        let l1 = layer(vec![dir("usr"), file("usr/bin", 9)], vec![]);
        let fs = squash([&l0, &l1]);
        assert_eq!(fs.changes.len(), 1);
        assert_eq!(fs.changes[0].kind, ChangeKind::Overwritten);
        assert_eq!(fs.get("usr/bin").map(|f| f.layer), Some(1));
        assert_eq!(fs.visible_bytes(), 9);
    }

    #[test]
    fn file_replacing_dir_removes_its_children() {
        let l0 = layer(vec![dir("opt"), file("opt/x", 4)], vec![]);
        let l1 = layer(vec![file("opt", 1)], vec![]);
        let fs = squash([&l0, &l1]);
        assert_eq!(paths(&fs), vec!["opt"]);
        assert_eq!(fs.changes.len(), 2);
    }

    fn symlink(path: &str, target: &str) -> FileEntry {
        FileEntry {
            kind: EntryKind::Symlink,
            link_target: Some(target.to_string()),
            ..file(path, 0)
        }
    }

    #[test]
    fn resolve_follows_links_in_every_component() {
        let l0 = layer(
            vec![
                symlink("bin", "usr/bin"),
                dir("usr"),
                dir("usr/bin"),
                file("usr/bin/dash", 10),
                symlink("usr/bin/sh", "dash"),
                symlink("etc/passwd", "/usr/share/baselayout/passwd"),
                file("usr/share/baselayout/passwd", 5),
                symlink("loop/a", "b"),
                symlink("loop/b", "a"),
                symlink("up", "../../../usr/bin/dash"),
                symlink("dangling", "/nowhere"),
            ],
            vec![],
        );
        let fs = squash([&l0]);
        let r = |p: &str| fs.resolve(p).map(|(p, _)| p);
        assert_eq!(r("bin/sh").as_deref(), Some("usr/bin/dash"));
        assert_eq!(r("/bin/./sh").as_deref(), Some("usr/bin/dash"));
        assert_eq!(
            r("etc/passwd").as_deref(),
            Some("usr/share/baselayout/passwd")
        );
        assert_eq!(r("up").as_deref(), Some("usr/bin/dash"));
        assert_eq!(
            r("usr/share").as_deref(),
            None,
            "implicit directory has no entry"
        );
        assert_eq!(r("loop/a"), None);
        assert_eq!(r("dangling"), None);
        assert_eq!(r("bin/missing"), None);
        assert!(fs.has_children("usr/share"));
    }

    #[test]
    fn squash_within_counts_paths_and_hidden_entries() {
        let l0 = layer(vec![file("a", 1), file("b", 1)], vec![]);
        let l1 = layer(vec![file("a", 2)], vec![("b", false)]);
        let limits = gantry_layer::Limits {
            max_image_files: 4,
            ..gantry_layer::Limits::default()
        };
        // 2 paths, then 1 path + 2 hidden entries: within 4 (as the 4 entries were).
        let fs = squash_within([&l0, &l1], &Caps::from_limits(&limits)).unwrap();
        assert_eq!((fs.files.len(), fs.changes.len()), (1, 2));
        let limits = gantry_layer::Limits {
            max_image_files: 2,
            ..limits
        };
        let (at, e) = squash_within([&l0, &l1], &Caps::from_limits(&limits)).unwrap_err();
        assert_eq!((at, e.name, e.limit), (1, "image-files", 2));
    }

    #[test]
    fn duplicate_path_in_one_layer_is_not_a_change() {
        let l0 = layer(vec![file("a", 1), file("a", 2)], vec![]);
        let fs = squash([&l0]);
        assert!(fs.changes.is_empty());
        assert_eq!(fs.get("a").map(|f| f.entry.size), Some(2));
    }
}
