//! The one error type of gantry-policy, and the one place regorus' errors are converted.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong loading, compiling, evaluating or testing a policy bundle.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A bundle file or data file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bundle file, or the bundle as a whole, is over its size limit.
    #[error("{what} is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The file, or "the policy bundle".
        what: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Two modules of a bundle have the same path.
    #[error("two policy modules have the path {path}")]
    DuplicateModule {
        /// The path, relative to the bundle.
        path: String,
    },
    /// A Rego module does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The module's path in the bundle.
        path: String,
        /// What regorus reported, on one line.
        message: String,
    },
    /// Policy data is not a JSON object, or conflicts with the rules.
    #[error("policy data {origin}: {message}")]
    Data {
        /// Where the data came from (a file, or "bundle").
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The bundle parses but cannot be prepared for evaluation (conflicting rules, unsafe
    /// variables, no `data.gantry.verdict`).
    #[error("cannot compile the policy bundle: {message}")]
    Compile {
        /// What regorus (or the entry-point check) reported, on one line.
        message: String,
    },
    /// Evaluation failed (a runtime error in a rule, a builtin error, a conflict).
    #[error("policy evaluation failed: {message}")]
    Eval {
        /// What regorus reported, on one line.
        message: String,
    },
    /// Evaluation ran past `PolicyLimits::eval_timeout`.
    #[error("policy evaluation exceeded its time limit of {limit:?}")]
    Timeout {
        /// The limit that was exceeded.
        limit: Duration,
    },
    /// The entry point returned something that is not a verdict document.
    #[error("the policy returned a malformed verdict: {reason}")]
    BadOutput {
        /// Which member is wrong, and how.
        reason: String,
    },
    /// `run_tests` found no `test_*` rule.
    #[error("no test_* rules in {dir}")]
    NoTests {
        /// The bundle's origin.
        dir: String,
    },
}

/// What Gantry was doing with regorus when it failed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage<'a> {
    /// Parsing the module at this path.
    Parse(&'a str),
    /// Adding data.
    Data,
    /// Preparing the bundle.
    Compile,
    /// Evaluating, with this time limit.
    Eval(Duration),
}

/// Converts an error from regorus (an `anyhow::Error`) into a [`PolicyError`]: the only place
/// regorus' error type is looked at. A time limit becomes [`PolicyError::Timeout`]; anything
/// else keeps regorus' text, condensed onto one line.
pub(crate) fn from_regorus(stage: Stage<'_>, err: &anyhow::Error) -> PolicyError {
    if let Some(regorus::LimitError::TimeLimitExceeded { limit, .. }) =
        err.downcast_ref::<regorus::LimitError>()
    {
        return PolicyError::Timeout { limit: *limit };
    }
    let message = one_line(&format!("{err:#}"));
    match stage {
        Stage::Parse(path) => PolicyError::Parse {
            path: path.to_string(),
            message,
        },
        Stage::Data => PolicyError::Data {
            origin: "bundle".to_string(),
            message,
        },
        Stage::Compile => PolicyError::Compile { message },
        Stage::Eval(limit) => {
            // The time limit can also arrive as text when regorus wraps it in context.
            if message.contains("execution exceeded time limit") {
                PolicyError::Timeout { limit }
            } else {
                PolicyError::Eval { message }
            }
        }
    }
}

/// regorus reports source errors over several lines:
///
/// ```text
/// --> rules/x.rego:6:17
///   |
/// 6 | test_err if { 1 / 0 }
///   |                 ^
/// error: divide by zero
/// ```
///
/// which becomes `rules/x.rego:6:17: divide by zero`. Other text has its lines joined.
pub(crate) fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let at = lines.iter().find_map(|l| l.strip_prefix("--> "));
    let error = lines.iter().find_map(|l| l.strip_prefix("error: "));
    match (at, error) {
        (Some(at), Some(error)) => format!("{at}: {error}"),
        _ => {
            let kept: Vec<&str> = lines
                .into_iter()
                .filter(|l| !l.starts_with('|') && !l.contains(" | ") && *l != "^")
                .collect();
            kept.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condenses_source_errors() {
        let text = "\n--> t.rego:6:17\n  |\n6 | test_err if { 1 / 0 }\n  |                 ^\nerror: divide by zero";
        assert_eq!(one_line(text), "t.rego:6:17: divide by zero");
    }

    #[test]
    fn joins_other_text() {
        assert_eq!(one_line("not a valid rule path\n"), "not a valid rule path");
        assert_eq!(one_line("a\nb"), "a; b");
    }
}
