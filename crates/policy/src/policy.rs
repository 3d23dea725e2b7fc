//! A compiled bundle and its time-limited, fail-closed evaluation.

use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use gantry_model::{Decision, Finding, Severity, Verdict};
use regorus::utils::limits::{ExecutionTimerConfig, PolicyLengthConfig};
use serde::Deserialize as _;

use crate::error::{Stage, from_regorus};
use crate::{PolicyBundle, PolicyError, output};

/// The rule every bundle must define: the verdict document.
pub const ENTRYPOINT: &str = "data.gantry.verdict";

/// The finding code of a verdict that could not be computed (fail closed).
pub const POLICY_ERROR_CODE: &str = "policy-error";

/// Interpreter steps between two reads of the clock. A clock read costs tens of
/// nanoseconds and a step about as much, so 64 keeps the timer's cost near 1 % while a
/// runaway loop is caught within microseconds of the deadline.
const TIMER_CHECK_INTERVAL: u32 = 64;

/// Bounds on loading and evaluating a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyLimits {
    /// Wall-clock budget of one evaluation. Default 2 s: the shipped bundle evaluates in about
    /// a millisecond, and an admission webhook must answer within Kubernetes' 10 s default
    /// timeout (often configured lower) after resolving tags and reading stored verdicts, so
    /// 2 s leaves most of the budget to everything else while giving a heavy user policy
    /// three orders of magnitude of headroom.
    pub eval_timeout: Duration,
    /// Largest bundle accepted: module sources plus canonical data, in bytes. Default 4 MiB,
    /// about a hundred times the shipped bundle — room for large allowlists and exception
    /// lists, while a bundle that is mostly generated data is refused before it is parsed.
    pub max_policy_bytes: usize,
    /// Most elements one call of `numbers.range`, `numbers.range_step` or `net.cidr_expand`
    /// may return (`policy-builtin-elements`). Default 1,000,000: ten times the largest array
    /// an input document can hold (`image-packages`, 100,000), so indexing over any input
    /// works, while one call costs at most ~25 MB and ~10 ms — regorus checks the time limit
    /// only between steps, never inside a builtin (`crate::builtins`).
    pub max_builtin_elements: usize,
    /// Evaluations run at once by [`Policy::evaluate_async`], each on a blocking-pool
    /// thread. Default: the number of CPUs (at least 2). Evaluation is CPU-bound, so more
    /// would only share the cores; this also bounds the memory of evaluations in flight
    /// to this many times what one may build within its time limit.
    pub max_concurrent_evaluations: usize,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        Self {
            eval_timeout: Duration::from_secs(2),
            max_policy_bytes: 4 << 20,
            max_builtin_elements: 1_000_000,
            max_concurrent_evaluations: std::thread::available_parallelism()
                .map_or(2, usize::from)
                .max(2),
        }
    }
}

/// A bundle compiled once, evaluated many times, from many threads.
///
/// Cloning is cheap (an `Arc`). Each evaluation works on its own clone of the prepared
/// engine, which shares the compiled modules and data, so concurrent evaluations do not
/// contend.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    /// Prepared once by `compile_with_entrypoint` (modules parsed, scheduled and
    /// loop-hoisted, data loaded) and never evaluated itself: each evaluation works on a
    /// clone, which shares the compiled modules and data through `Arc`s (about 5 µs).
    /// `regorus::CompiledPolicy::eval_with_input` is not used because the engine it builds
    /// knows only the process-wide fallback timer: a per-policy time limit would need global
    /// state shared with every other regorus user in the process.
    engine: regorus::Engine,
    digest: String,
    limits: PolicyLimits,
    /// Permits of [`Policy::evaluate_async`], shared by every clone.
    evaluations: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("digest", &self.inner.digest)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Loads the bundle in `dir` (the built-in one when `None`) with the data file `data`
    /// merged in ([`PolicyBundle::load`]), and compiles it.
    pub fn load(
        dir: Option<&std::path::Path>,
        data: Option<&std::path::Path>,
        limits: &PolicyLimits,
    ) -> Result<Self, PolicyError> {
        Self::compile(&PolicyBundle::load(dir, data)?, limits)
    }

    /// Parses and prepares every module of the bundle with its data, and checks that it
    /// defines `data.gantry.verdict`.
    pub fn compile(bundle: &PolicyBundle, limits: &PolicyLimits) -> Result<Self, PolicyError> {
        let size = bundle.size_bytes();
        if size > limits.max_policy_bytes {
            return Err(PolicyError::TooLarge {
                what: format!("the policy bundle {}", bundle.origin()),
                bytes: size as u64,
                limit: limits.max_policy_bytes as u64,
            });
        }
        let mut engine = new_engine(limits)?;
        for m in bundle.modules() {
            engine
                .add_policy(m.path.clone(), m.source.clone())
                .map_err(|e| from_regorus(Stage::Parse(&m.path), &e))?;
        }
        add_data(&mut engine, bundle)?;
        if !declares_entrypoint(&engine)? {
            return Err(PolicyError::Compile {
                message: format!(
                    "no module of {} defines {ENTRYPOINT} (package gantry, rule verdict)",
                    bundle.origin()
                ),
            });
        }
        engine
            .compile_with_entrypoint(&ENTRYPOINT.into())
            .map_err(|e| from_regorus(Stage::Compile, &e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                digest: bundle.digest(),
                limits: *limits,
                evaluations: Arc::new(tokio::sync::Semaphore::new(
                    limits.max_concurrent_evaluations.max(1),
                )),
            }),
        })
    }

    /// The bundle digest recorded in every verdict.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The limits the policy was compiled with.
    pub fn limits(&self) -> &PolicyLimits {
        &self.inner.limits
    }

    /// Evaluates the policy over one input document and returns the verdict. Never fails
    /// open: any error (evaluation error, time limit, malformed verdict) becomes a `deny`
    /// verdict with one `policy-error` violation saying what failed.
    pub fn evaluate(&self, input: &serde_json::Value) -> Verdict {
        self.evaluate_checked(input)
            .unwrap_or_else(|e| error_verdict(&e, &self.inner.digest))
    }

    /// [`evaluate`](Self::evaluate) for async callers: the evaluation runs on tokio's
    /// blocking pool, never on the runtime's threads (an evaluation is CPU-bound for up to
    /// its time limit), and at most
    /// [`max_concurrent_evaluations`](PolicyLimits::max_concurrent_evaluations) run at
    /// once across every clone of this policy; callers beyond wait for a permit. Fails
    /// closed like `evaluate`: a panicked or cancelled evaluation is a deny verdict.
    pub async fn evaluate_async(&self, input: serde_json::Value) -> Verdict {
        let digest = &self.inner.digest;
        let failed = |message: String| error_verdict(&PolicyError::Eval { message }, digest);
        let Ok(permit) = Arc::clone(&self.inner.evaluations).acquire_owned().await else {
            return failed("the evaluation pool is closed".to_string());
        };
        let policy = self.clone();
        let run = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            policy.evaluate(&input)
        });
        match run.await {
            Ok(verdict) => verdict,
            Err(e) => failed(format!("the evaluation task failed: {e}")),
        }
    }

    /// How many more [`evaluate_async`](Self::evaluate_async) calls could start now without
    /// waiting for a permit.
    pub fn idle_evaluations(&self) -> usize {
        self.inner.evaluations.available_permits()
    }

    /// Like [`evaluate`](Self::evaluate), but returns the error instead of a deny verdict.
    pub fn evaluate_checked(&self, input: &serde_json::Value) -> Result<Verdict, PolicyError> {
        let limit = self.inner.limits.eval_timeout;
        let input = regorus::Value::deserialize(input).map_err(|e| PolicyError::Eval {
            message: format!("the input document cannot be given to the policy: {e}"),
        })?;
        // A panic inside the interpreter must not take the caller down, nor pass as an allow.
        // The engine is a private clone, so nothing shared is left half-updated.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut engine = self.inner.engine.clone();
            engine.set_input(input);
            engine.eval_rule(ENTRYPOINT.to_string())
        }))
        .map_err(|panic| PolicyError::Eval {
            message: format!("the Rego interpreter panicked: {}", panic_text(&panic)),
        })?
        .map_err(|e| from_regorus(Stage::Eval(limit), &e))?;
        if result == regorus::Value::Undefined {
            return Err(PolicyError::BadOutput {
                reason: format!("{ENTRYPOINT} is undefined (a condition in it did not hold)"),
            });
        }
        let json = serde_json::to_value(&result).map_err(|e| PolicyError::BadOutput {
            reason: format!("{ENTRYPOINT} is not JSON: {e}"),
        })?;
        output::parse_verdict(json, &self.inner.digest)
    }
}

/// The verdict for a policy that could not be evaluated: deny, and say why.
pub fn error_verdict(error: &PolicyError, policy_digest: &str) -> Verdict {
    Verdict {
        decision: Decision::Deny,
        violations: vec![Finding {
            code: POLICY_ERROR_CODE.to_string(),
            severity: Severity::Deny,
            message: format!("the policy could not decide, so the image is denied: {error}"),
            location: None,
        }],
        warnings: Vec::new(),
        waived: Vec::new(),
        policy_digest: policy_digest.to_string(),
    }
}

/// An engine with Gantry's evaluation settings.
pub(crate) fn new_engine(limits: &PolicyLimits) -> Result<regorus::Engine, PolicyError> {
    let mut engine = regorus::Engine::new();
    crate::builtins::register(&mut engine, limits.max_builtin_elements)
        .map_err(|e| from_regorus(Stage::Compile, &e))?;
    // Rego v1 (`if`, `contains` required) is regorus' default; `import rego.v1` is accepted.
    // A builtin error (to_number("x"), a bad glob) is an evaluation error, not "undefined":
    // under OPA's default a deny rule whose builtin fails silently disappears, which would
    // fail open. Same as `opa eval --strict-builtin-errors`.
    engine.set_strict_builtin_errors(true);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: limits.eval_timeout,
        check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
    });
    let mut length = PolicyLengthConfig::default();
    if let Some(bytes) = std::num::NonZeroUsize::new(limits.max_policy_bytes) {
        length.max_file_bytes = bytes;
    }
    engine.set_policy_length_config(length);
    Ok(engine)
}

pub(crate) fn add_data(
    engine: &mut regorus::Engine,
    bundle: &PolicyBundle,
) -> Result<(), PolicyError> {
    let data = regorus::Value::deserialize(bundle.data()).map_err(|e| PolicyError::Data {
        origin: bundle.origin().to_string(),
        message: e.to_string(),
    })?;
    engine
        .add_data(data)
        .map_err(|e| from_regorus(Stage::Data, &e))
}

/// Whether a module of package `gantry` declares `verdict`.
fn declares_entrypoint(engine: &regorus::Engine) -> Result<bool, PolicyError> {
    let packages = engine
        .get_policy_package_components()
        .map_err(|e| from_regorus(Stage::Compile, &e))?;
    for p in packages.iter().filter(|p| p.components == ["gantry"]) {
        if engine
            .has_declared_rule_rooted_at(&p.source_file, "verdict")
            .map_err(|e| from_regorus(Stage::Compile, &e))?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
