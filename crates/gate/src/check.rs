//! Scan → facts → input document → verdict, for one image.

use std::sync::Arc;

use gantry_analyze::OsRelease;
use gantry_analyze::facts::{
    DevDependencyFact, FileFacts, PackageFact, PackageManagerFact, SecretFact, SetuidFact,
    ShellFacts, TimezoneFacts, TlsFacts, ToolchainFact, UnknownFact, UserFacts, derive_facts,
};
use gantry_model::{Finding, Verdict};
use gantry_policy::Policy;
use gantry_registry::{ImageSource, RegistryError, ResolvedImage, SourceOptions, SourceRef};
use gantry_scan::{ScanError, ScanReport, Scanner};
use serde::Serialize;

use crate::base::{BaseFacts, base_facts, base_layers};
use crate::input::{
    ConfigInfo, Context, INPUT_VERSION, ImageInfo, LayerInfo, config_info, final_os_release,
    image_info, layer_infos, walked_layers,
};
use crate::size::{SizeFacts, size_facts};

/// Why an image could not be judged. A policy failure is not here: it is a deny verdict
/// (fail closed), never an error that a caller could mistake for "no verdict, allow".
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The scan failed (registry, layer, cache).
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The input document could not be serialised (a bug).
    #[error("building the policy input failed")]
    Input(#[source] serde_json::Error),
    /// Stored facts given to [`Gate::rejudge`] are not an input document.
    #[error("stored facts are not a policy input document (a JSON object)")]
    NotFacts,
}

/// `input.facts`.
///
/// Not `gantry_analyze::FileFacts`, on purpose: that holds what the layers' files say (and the
/// top-level `packages` and `unknowns`); this adds what only the gate knows — `base` (labels,
/// provenance, history, the base image's registry), `size` (the manifest) and `os` — and is the
/// exact shape of `input.facts` in `docs/policies/input.md`. [`build_input`] moves the file
/// facts in field by field, so a new file fact is added to both and to that one function.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// USER and what it resolves to.
    pub user: UserFacts,
    /// Build toolchains visible in the final filesystem.
    pub toolchain: Vec<ToolchainFact>,
    /// Secrets in any layer, config env or history.
    pub secrets: Vec<SecretFact>,
    /// setuid/setgid files.
    pub setuid: Vec<SetuidFact>,
    /// Shells.
    pub shell: ShellFacts,
    /// Package managers.
    pub package_managers: Vec<PackageManagerFact>,
    /// The base image.
    pub base: BaseFacts,
    /// Sizes.
    pub size: SizeFacts,
    /// os-release of the final filesystem.
    pub os: Option<OsRelease>,
    /// npm packages only development needs, installed in the final image.
    pub dev_dependencies: Vec<DevDependencyFact>,
    /// The CA bundle, and binaries that verify TLS against the system store.
    pub tls: TlsFacts,
    /// The zone database, and binaries that load zones from it.
    pub timezone: TimezoneFacts,
}

/// The policy input document, version 1 (docs/policies/input.md).
#[derive(Debug, Clone, Serialize)]
pub struct InputDocument {
    /// Always [`INPUT_VERSION`].
    pub version: u32,
    /// Image identity.
    pub image: ImageInfo,
    /// Runtime config and history.
    pub config: ConfigInfo,
    /// Layers.
    pub layers: Vec<LayerInfo>,
    /// Derived facts.
    pub facts: Facts,
    /// Installed OS packages of the final filesystem.
    pub packages: Vec<PackageFact>,
    /// Files analyzers could not read.
    pub unknowns: Vec<UnknownFact>,
    /// When and for whom.
    pub context: Context,
}

/// What `gantry scan --format json` prints: the input document, every finding, the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// Everything the policy saw.
    #[serde(flatten)]
    pub input: InputDocument,
    /// Violations then warnings, each with code, severity, message and location.
    pub findings: Vec<Finding>,
    /// The decision.
    pub verdict: Verdict,
}

/// The result of judging one image.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The report (input, findings, verdict).
    pub report: ImageReport,
    /// The scan it came from (layers, files), for the SBOM and for `inspect`-style output.
    pub scan: ScanReport,
}

/// Judges images: holds the scanner (analyzers, layer cache) and the compiled policy.
#[derive(Debug, Clone)]
pub struct Gate {
    scanner: Scanner,
    policy: Arc<Policy>,
    base_lookup: Option<SourceOptions>,
}

impl Gate {
    /// A gate over `scanner` and `policy`.
    pub fn new(scanner: Scanner, policy: Arc<Policy>) -> Gate {
        Gate {
            scanner,
            policy,
            base_lookup: None,
        }
    }

    /// Fetch the base image (named by the evidence) from its registry to tell exactly which
    /// layers are the base's. Off by default: it is one more registry round trip.
    pub fn with_base_lookup(mut self, options: SourceOptions) -> Gate {
        self.base_lookup = Some(options);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scans `image`, derives its facts, and evaluates the policy.
    pub async fn check(
        &self,
        source: &Arc<dyn ImageSource>,
        source_name: &str,
        image: &ResolvedImage,
        context: Context,
    ) -> Result<Checked, GateError> {
        let scan = self.scanner.scan(source, image).await?;
        let mut base = base_facts(source.as_ref(), image).await;
        if let Some(options) = &self.base_lookup {
            base.layers = lookup_base_layers(&base, image, options).await;
        }
        let input = build_input(source_name, image, &scan, base, context);
        let value = serde_json::to_value(&input).map_err(GateError::Input)?;
        // On the blocking pool, behind the policy's concurrency cap: never on this task's
        // runtime thread.
        let verdict = self.policy.evaluate_async(value).await;
        let findings = verdict
            .violations
            .iter()
            .chain(&verdict.warnings)
            .cloned()
            .collect();
        Ok(Checked {
            report: ImageReport {
                input,
                findings,
                verdict,
            },
            scan,
        })
    }
}

impl Gate {
    /// Judges an image again from its stored facts — the input document of an earlier
    /// [`check`](Gate::check) without its context — as `name` (`repository[:tag]@digest`,
    /// what rules and exceptions match), for `context`: no pull, no layer walk. The policy
    /// changed, an exception expired, another name or caller asks; the image did not change.
    pub async fn rejudge(
        &self,
        mut facts: serde_json::Value,
        name: &str,
        context: Context,
    ) -> Result<Verdict, GateError> {
        let Some(object) = facts.as_object_mut() else {
            return Err(GateError::NotFacts);
        };
        // Inputs stored by older versions held the findings and verdict of their first
        // judgement; the policy must not see them.
        object.remove("findings");
        object.remove("verdict");
        object.insert(
            "context".to_string(),
            serde_json::to_value(&context).map_err(GateError::Input)?,
        );
        if let Some(image) = object
            .get_mut("image")
            .and_then(serde_json::Value::as_object_mut)
        {
            image.insert("reference".to_string(), serde_json::json!(name));
            image.insert("source".to_string(), serde_json::json!(name));
        }
        Ok(self.policy.evaluate_async(facts).await)
    }
}

/// Assembles the input document from a scan and the base evidence.
pub fn build_input(
    source_name: &str,
    image: &ResolvedImage,
    scan: &ScanReport,
    base: BaseFacts,
    context: Context,
) -> InputDocument {
    let walked = walked_layers(scan);
    let FileFacts {
        user,
        toolchain,
        secrets,
        setuid,
        shell,
        package_managers,
        packages,
        unknowns,
        dev_dependencies,
        tls,
        timezone,
    } = derive_facts(
        &walked,
        &scan.filesystem,
        &image.config.config,
        &image.config.history,
    );
    let layers = layer_infos(image, scan, base.layers.as_deref());
    InputDocument {
        version: INPUT_VERSION,
        image: image_info(source_name, image),
        config: config_info(&image.config),
        layers,
        facts: Facts {
            user,
            toolchain,
            secrets,
            setuid,
            shell,
            package_managers,
            base,
            size: size_facts(scan),
            os: final_os_release(scan),
            dev_dependencies,
            tls,
            timezone,
        },
        packages,
        unknowns,
        context,
    }
}

/// Fetches the base image named by `base` and marks its layers, when its diff IDs are a
/// prefix of the image's. Any failure means "not known exactly" (`None`), never an error.
async fn lookup_base_layers(
    base: &BaseFacts,
    image: &ResolvedImage,
    options: &SourceOptions,
) -> Option<Vec<usize>> {
    let name = base.name.as_deref()?;
    let digest = base.digest.as_deref()?.parse().ok()?;
    let reference: gantry_model::ImageRef = name.parse().ok()?;
    let source = SourceRef::Registry(reference.with_digest(digest));
    let found = async {
        let base_source = gantry_registry::open(&source, options).await?;
        gantry_registry::resolve_one(base_source.as_ref(), Some(&image.platform)).await
    }
    .await;
    match found {
        Ok(base_image) => base_layers(
            &image.config.rootfs.diff_ids,
            &base_image.config.rootfs.diff_ids,
        ),
        Err(e) => {
            let e: RegistryError = e;
            tracing::info!(base = name, error = %e, "base image not readable; base layers unknown");
            None
        }
    }
}
