//! `gantry policy test [DIR]`: run a policy bundle's `test_*` rules, as `opa test` does.
//! Exit 0 when every test passes, 1 when one fails, 2 when the bundle cannot be loaded.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use gantry_policy::{PolicyBundle, PolicyLimits, TestReport, run_tests};

use crate::output;

/// `gantry policy …`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the `test_*` rules of a policy bundle (the built-in one without DIR), listing
    /// failures (and, with -v, passes): exit 0 when all pass, 1 when one fails, 2 when the
    /// bundle cannot be loaded.
    Test {
        /// Bundle directory: every *.rego under it (tests/ directories and *_test.rego are the
        /// tests) and DIR/data.json. Default: the built-in bundle.
        dir: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// The global -v: list passing tests with their time, not only failures.
        #[arg(from_global)]
        verbose: u8,
    },
}

/// How the test report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// `PASS`/`FAIL` lines and a summary.
    Table,
    /// The report as JSON: `{"bundle", "tests": [{"name", "file", "outcome": "pass"|"fail",
    /// "reason"?, "duration_ms", "prints"?}], "passed", "failed"}`.
    Json,
}

/// Runs `gantry policy …`.
pub async fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Test {
            dir,
            format,
            verbose,
        } => {
            // Evaluation is CPU-bound and synchronous; keep it off the async workers.
            let report = tokio::task::spawn_blocking(move || test(dir))
                .await
                .context("the policy test runner stopped")??;
            match format {
                ReportFormat::Table => output::text(&report.render(verbose > 0))?,
                ReportFormat::Json => output::json(&report)?,
            }
            Ok(ExitCode::from(exit_status(&report)))
        }
    }
}

/// Loads the bundle and runs its tests. Tests see the bundle's own data: they set anything
/// else with `with data.… as …`, so a site's data file cannot make them pass or fail.
fn test(dir: Option<PathBuf>) -> anyhow::Result<TestReport> {
    let bundle = PolicyBundle::load(dir.as_deref(), None).with_context(|| match &dir {
        Some(dir) => format!("loading policies from {}", dir.display()),
        None => "loading the built-in policies".to_string(),
    })?;
    run_tests(&bundle, &PolicyLimits::default())
        .with_context(|| format!("testing policies {}", bundle.origin()))
}

/// 0 when every test passed, 1 otherwise (errors are 2, from `main`).
fn exit_status(report: &TestReport) -> u8 {
    if report.all_passed() { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(short, long, action = clap::ArgAction::Count, global = true)]
        verbose: u8,
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Top {
        Policy(PolicyArgs),
    }

    #[test]
    fn parses_test_with_the_global_verbose_flag() {
        let cli =
            Cli::try_parse_from(["gantry", "policy", "test", "dir", "-v", "--format", "json"])
                .unwrap();
        let Top::Policy(PolicyArgs {
            command:
                PolicyCommand::Test {
                    dir,
                    format,
                    verbose,
                },
        }) = cli.command;
        assert_eq!(dir, Some(PathBuf::from("dir")));
        assert_eq!(format, ReportFormat::Json);
        assert_eq!(verbose, 1);
    }

    #[test]
    fn the_builtin_bundle_passes_its_tests() {
        let report = test(None).unwrap();
        assert!(report.all_passed(), "{}", report.render(false));
        assert_eq!(exit_status(&report), 0);
    }

    #[test]
    fn a_failing_test_exits_1_and_a_broken_bundle_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x_test.rego"),
            "package x_test\nimport rego.v1\ntest_fails if false\n",
        )
        .unwrap();
        let report = test(Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(exit_status(&report), 1);

        std::fs::write(
            dir.path().join("x_test.rego"),
            "package x_test\ntest_x if {\n",
        )
        .unwrap();
        assert!(test(Some(dir.path().to_path_buf())).is_err());
    }
}
