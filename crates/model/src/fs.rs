//! What a layer walk records about files, and the squashed filesystem built from it.

use serde::{Deserialize, Serialize};

/// The type of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link to an earlier entry of the same layer.
    Hardlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
}

/// One file as a layer ships it (whiteouts are recorded separately, see [`Whiteout`]).
///
/// Paths are normalised: relative to the image root, no leading `./` or `/`, no `..`
/// components, no trailing `/`, e.g. `usr/bin/gcc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Normalised path.
    pub path: String,
    /// Entry type.
    pub kind: EntryKind,
    /// Content size in bytes (0 for links and directories).
    pub size: u64,
    /// Permission and special bits (`0o4755` for a setuid binary).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Target of a symlink (as written) or hard link (normalised path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// A whiteout marker in a layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Whiteout {
    /// For a plain whiteout (`dir/.wh.name`), the deleted path `dir/name`; for an opaque
    /// whiteout (`dir/.wh..wh..opq`), the directory `dir` whose lower contents are hidden
    /// (empty string for the root).
    pub path: String,
    /// Whether this is an opaque whiteout.
    pub opaque: bool,
}
