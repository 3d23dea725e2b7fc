//! `gantry scan IMAGE`: the verdict CI gates on. Exit 0 allow, 1 deny, 2 error.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use gantry_gate::{Context, Gate};
use gantry_model::Decision;
use gantry_policy::{Policy, PolicyLimits};
use gantry_registry::SourceRef;

use crate::args::{ScanCommandArgs, ScanFormat};
use crate::output;

/// Loads the bundle the arguments name: `--policy DIR` or the built-in one, with `--data`
/// merged over its data.
pub fn load_policy(
    policy: Option<&std::path::Path>,
    data: Option<&std::path::Path>,
) -> anyhow::Result<Policy> {
    Policy::load(policy, data, &PolicyLimits::default()).with_context(|| {
        let from = policy.map_or_else(
            || "the built-in policies".to_string(),
            |dir| format!("policies from {}", dir.display()),
        );
        match data {
            Some(file) => format!("loading {from} with policy data {}", file.display()),
            None => format!("loading {from}"),
        }
    })
}

pub async fn run(args: ScanCommandArgs) -> anyhow::Result<ExitCode> {
    // Policies first: a broken bundle is reported before any image is pulled.
    let policy = Arc::new(load_policy(args.policy.as_deref(), args.data.as_deref())?);
    let source = super::open_source(&args.image, &args.source, &args.scan).await?;
    let image = gantry_registry::resolve_one(source.as_ref(), args.platform.as_ref())
        .await
        .with_context(|| format!("reading {}", args.image))?;
    let mut gate = Gate::new(super::scanner(&args.scan)?, policy);
    let base_lookup = args
        .base_lookup
        .unwrap_or(matches!(args.image, SourceRef::Registry(_)));
    if base_lookup {
        gate = gate.with_base_lookup(super::source_options(
            &args.image,
            &args.source,
            &args.scan,
        )?);
    }
    let context = Context {
        now: gantry_model::time::now(),
        mode: "cli".to_string(),
        base: None,
    };
    let checked = gate
        .check(&source, &args.image.to_string(), &image, context)
        .await
        .with_context(|| format!("scanning {} ({})", args.image, image.platform))?;
    if let Some(path) = &args.sbom {
        super::sbom::write_checked(&checked, args.sbom_spec, path)?;
    }
    let report = &checked.report;
    let rendered = match args.format {
        ScanFormat::Table => output::scan_table(
            &report.input.image.source,
            &report.input.image.digest.to_string(),
            &report.input.image.platform,
            &report.verdict,
        ),
        ScanFormat::Json => output::to_json(report)?,
        ScanFormat::Sarif => {
            let name = image
                .reference
                .as_ref()
                .map_or_else(|| args.image.to_string(), |r| r.name());
            output::to_json(&output::sarif(
                &report.verdict,
                &name,
                &report.input.image.digest.to_string(),
            ))?
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, rendered).with_context(|| format!("writing {}", path.display()))?
        }
        None => output::text(&rendered)?,
    }
    Ok(match report.verdict.decision {
        Decision::Allow => ExitCode::SUCCESS,
        Decision::Deny => ExitCode::from(1),
    })
}
