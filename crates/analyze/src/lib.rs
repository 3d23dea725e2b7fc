//! gantry-analyze: what Gantry learns from each layer's entries, and how the layers add up.
//!
//! The layer walker (`gantry-layer`) owns the loop over tar entries and pushes each one to a
//! [`LayerDispatcher`], which
//! - records every file and whiteout in the layer's [`LayerReport`] (the raw material of the
//!   squashed filesystem), and
//! - hands matching files to the [`Analyzer`]s that declared interest in them: one compiled
//!   `GlobSet` match per entry, content read once into a buffer bounded by the largest byte
//!   budget among the interested analyzers.
//!
//! Analyzers never open a tar themselves; they are listed explicitly in [`builtin`] with an id
//! and a version, and [`fingerprint`] of that list is part of the per-layer cache key, so a
//! changed analyzer invalidates exactly the cached results it produced.
//!
//! [`squash`] applies the layer reports in order (whiteouts, opaque directories, overwrites)
//! into the final filesystem view plus the history of what later layers deleted or replaced.
//!
//! [`facts::derive_facts`] turns the layer reports and the squashed view into the file-derived
//! parts of the policy input (`docs/policies/input.md`): the user a container runs as, build
//! toolchains left in the image, secrets in any layer, setuid files, shells, package
//! managers, installed packages and unknowns.
//!
//! Built-in analyzers (each versioned; see [`builtin`]): `os-release`, `passwd` (passwd and
//! group), the package catalogers `dpkg`, `apk`, `rpm`, `python`, `npm`, `go-buildinfo`,
//! `rust-auditable` and `java`, `toolchain` (source maps) and `secrets`.
//! [`facts::final_packages`] gives the packages of the final image, each with its [`purl()`].
//!
//! Most analyzers name their files with globs and receive a bounded prefix of each; the
//! binary catalogers instead recognise executables by their first bytes and receive them as
//! a stream, keeping only the few ranges they need ([`StreamInterest`]), so no executable is
//! ever held whole.
//!
//! ```
//! use gantry_analyze::{builtin, fingerprint};
//! let analyzers = builtin();
//! assert!(fingerprint(&analyzers).starts_with("v1-"));
//! ```

mod analyzers;
pub mod budget;
mod dispatch;
pub mod facts;
mod package;
pub mod purl;
mod report;
pub mod squash;

pub use analyzers::os_release::OsRelease;
pub use analyzers::passwd::{GroupEntry, GroupFile, PasswdEntry, PasswdFile};
pub use analyzers::secrets::{
    REDACTED, SecretHit, SecretMatch, is_secret_name, redact_assignment, redact_env, redact_text,
    rules as secret_rules, scan_text,
};
pub use analyzers::{
    Analyzer, EveryFile, Interest, LayerAnalysis, SNIFF_BYTES, STREAM_CHUNK, StreamInterest,
    builtin, fingerprint, no_working_bytes,
};
pub use budget::{Budget, CapExceeded, Caps, ImageTally, Kept, MemoryBudget, Reservation, Scope};
pub use dispatch::{AnalyzerSet, DispatchError, LayerDispatcher};
pub use facts::{FileFacts, LayerFacts, derive_facts, final_os_release, final_packages};
pub use package::{CopyrightFile, Ecosystem, FileList, Package};
pub use purl::{percent_encode as purl_percent_encode, purl, pypi_normalize};
pub use report::{LayerReport, Unknown};
pub use squash::{Change, ChangeKind, Filesystem, SquashedFile, squash, squash_within};
