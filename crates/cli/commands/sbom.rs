//! `gantry sbom IMAGE`: the image's CycloneDX SBOM (1.6 by default, `--spec 1.5`), from the
//! same single pass over the layers as `gantry scan` (and the same per-layer cache), without
//! judging the image. Exit 0 written, 2 error.
//!
//! `SOURCE_DATE_EPOCH` (reproducible-builds.org), when set, fixes `metadata.timestamp`: the
//! rest of the document is already a function of the image.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use gantry_gate::{Checked, Context};
use gantry_sbom::{Bom, SbomInput, SpecVersion};

use crate::args::SbomArgs;
use crate::output;

pub async fn run(args: SbomArgs) -> anyhow::Result<ExitCode> {
    let source = super::open_source(&args.image, &args.source, &args.scan).await?;
    let image = gantry_registry::resolve_one(source.as_ref(), args.platform.as_ref())
        .await
        .with_context(|| format!("reading {}", args.image))?;
    let scanner = super::scanner(&args.scan)?;
    let scan = scanner
        .scan(&source, &image)
        .await
        .with_context(|| format!("scanning {} ({})", args.image, image.platform))?;
    let base = gantry_gate::base_facts(source.as_ref(), &image).await;
    let context = Context {
        now: gantry_model::time::now(),
        mode: "cli".to_string(),
        base: None,
    };
    let input = gantry_gate::build_input(&args.image.to_string(), &image, &scan, base, context);
    let sbom = SbomInput::from_input(&input, &scan, env!("CARGO_PKG_VERSION"));
    let rendered = render(&sbom, args.spec)?;
    match &args.output {
        Some(path) => write(path, &rendered)?,
        None => output::text(&rendered)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the SBOM of a judged image to `path` (`gantry scan --sbom FILE --sbom-spec V`).
pub fn write_checked(checked: &Checked, spec: SpecVersion, path: &Path) -> anyhow::Result<()> {
    let sbom = SbomInput::from_checked(checked, env!("CARGO_PKG_VERSION"));
    write(path, &render(&sbom, spec)?)
}

fn write(path: &Path, rendered: &str) -> anyhow::Result<()> {
    std::fs::write(path, rendered).with_context(|| format!("writing {}", path.display()))
}

fn render(sbom: &SbomInput, spec: SpecVersion) -> anyhow::Result<String> {
    if !sbom.complete {
        tracing::warn!("some layers could not be walked: the SBOM is incomplete");
    }
    let mut bom: Bom = gantry_sbom::cyclonedx(sbom, spec);
    if let Some(ts) = source_date_epoch()? {
        bom = bom.with_timestamp(ts);
    }
    Ok(gantry_sbom::to_json(&bom)?)
}

/// `SOURCE_DATE_EPOCH` as RFC 3339, when set; an error when set to something else than a
/// Unix time (the specification asks tools to fail rather than guess).
fn source_date_epoch() -> anyhow::Result<Option<String>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            let secs: i64 = v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a Unix time"))?;
            Ok(Some(gantry_model::time::rfc3339(secs)))
        }
        _ => Ok(None),
    }
}
