//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, writing or pushing the image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the build machine could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A tool the build needs (`ldd`) could not be run.
    #[error("running {tool} (is it installed?)")]
    Tool {
        /// Which tool.
        tool: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `ldd` failed or named a library it could not find: the closure would be incomplete.
    #[error("ldd {binary}: {output}")]
    Ldd {
        /// The executable.
        binary: PathBuf,
        /// What ldd said.
        output: String,
    },
    /// Two different contents for one path of the image.
    #[error("{path} would be written twice with different contents")]
    Conflict {
        /// The image path.
        path: String,
    },
    /// More symlink hops than the kernel follows.
    #[error("too many symlinks resolving {path}")]
    SymlinkLoop {
        /// The path being copied.
        path: String,
    },
    /// A path component that should be a directory is a file.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The component.
        path: PathBuf,
    },
    /// A library path that does not end at a regular file.
    #[error("{path} does not resolve to a file")]
    NotAFile {
        /// The path.
        path: String,
    },
    /// The image writer refused the recipe.
    #[error("assembling the image")]
    Assemble {
        /// The cause.
        #[source]
        source: gantry_testkit::Error,
    },
    /// Writing the OCI layout failed.
    #[error("writing the OCI layout to {path}")]
    Write {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: gantry_testkit::Error,
    },
    /// Writing the root file system tree (`--rootfs`) failed.
    #[error("writing {path}")]
    WriteTree {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `--push` got a reference it cannot parse.
    #[error("{reference} is not an image reference")]
    Reference {
        /// What was given.
        reference: String,
        /// The cause.
        #[source]
        source: gantry_model::ReferenceError,
    },
    /// The registry refused or failed a push step.
    #[error("pushing {what} to {reference}")]
    Push {
        /// Which object (`blob sha256:…`, `manifest`).
        what: String,
        /// The target.
        reference: String,
        /// The cause (boxed: a registry error is large, and rare here).
        #[source]
        source: Box<gantry_registry::RegistryError>,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
