//! Build information for `gantry --version`: the git revision and the build date.
//!
//! - `GANTRY_GIT_REVISION`: `git rev-parse HEAD` (12 hex digits, `-dirty` when tracked files
//!   differ from it), or `unknown` outside a git checkout (a source tarball) or without git.
//!   `GANTRY_GIT_REVISION` in the environment overrides it (a build from an exported tree
//!   that knows its revision, such as the Dockerfile's).
//! - `GANTRY_BUILD_DATE`: RFC 3339 UTC from `SOURCE_DATE_EPOCH` when set (reproducible
//!   builds, <https://reproducible-builds.org/specs/source-date-epoch/>), else the commit's
//!   time, else the current time. The commit time rather than the clock keeps two builds of
//!   one commit identical by default.

// Cargo reads a build script's instructions from its stdout.
#![allow(clippy::print_stdout)]

use std::env;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

// gantry-model's formatter, included by path: the build date is written by the same code as
// every other time, without compiling gantry-model (and serde) again for the build host.
#[allow(dead_code)]
#[path = "../model/src/time.rs"]
mod time;

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    let root = Path::new(&root);
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=GANTRY_GIT_REVISION");
    rerun_on_new_commits(root);

    let revision = env::var("GANTRY_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let head = git(root, &["rev-parse", "--short=12", "HEAD"])?;
            // No optional locks: a plain `status` may rewrite the index, which reruns this script.
            let dirty = git(
                root,
                &[
                    "--no-optional-locks",
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                ],
            )
            .is_some_and(|s| !s.is_empty());
            Some(if dirty { format!("{head}-dirty") } else { head })
        })
        .unwrap_or_else(|| "unknown".to_string());
    let epoch = env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| git(root, &["log", "-1", "--format=%ct"])?.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    println!("cargo:rustc-env=GANTRY_GIT_REVISION={revision}");
    println!("cargo:rustc-env=GANTRY_BUILD_DATE={}", time::rfc3339(epoch));
}

/// `git ARGS` in `root`, trimmed stdout; `None` when git is missing or fails.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reruns this script when HEAD moves: HEAD itself (a checkout), the branch it names (a
/// commit) and packed-refs. In a worktree these live in different git directories.
fn rerun_on_new_commits(root: &Path) {
    let Some(git_dir) = git(root, &["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    println!("cargo:rerun-if-changed={git_dir}/HEAD");
    if let Some(common) = git(
        root,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    ) {
        println!("cargo:rerun-if-changed={common}/packed-refs");
        if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={common}/{branch}");
        }
    }
    // Tracked files decide `-dirty`; the index changes whenever one is staged or committed.
    println!("cargo:rerun-if-changed={git_dir}/index");
}
