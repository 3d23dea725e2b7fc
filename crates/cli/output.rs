//! Everything the binary writes: reports on stdout, errors on stderr. The only module allowed
//! to print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use crate::commands::inspect::InspectReport;

/// Prints an error and its causes, one per line (`{:#}` would join them on one line).
pub fn error(e: &anyhow::Error) {
    let mut msg = format!("error: {e}");
    for cause in e.chain().skip(1) {
        let _ = write!(msg, "\n  caused by: {cause}");
    }
    eprintln!("{msg}");
}

/// Writes `s` to stdout. A closed pipe (`gantry inspect … | head`) is not an error.
pub fn text(s: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes pretty JSON and a newline to stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    text(&s)
}

/// Bytes in IEC units, e.g. `51.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Short media-type names for the layer table.
fn short_media_type(mt: &str) -> &str {
    mt.rsplit_once("layer.v1.")
        .map(|(_, s)| s)
        .or_else(|| mt.rsplit_once("rootfs.").map(|(_, s)| s))
        .unwrap_or(mt)
}

/// The human-readable form of `gantry inspect`.
pub fn inspect_table(r: &InspectReport) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(s, "{k:<13}{v}");
    };
    row("Image", &r.source);
    row(
        "Manifest",
        &format!("{} ({})", r.manifest.digest, r.manifest.media_type),
    );
    if let Some(i) = &r.index {
        row("Index", &format!("{} ({})", i.digest, i.media_type));
        row("Platforms", &i.platforms.join(", "));
    }
    row("Platform", &r.platform);
    if let Some(os) = &r.os {
        let name = os
            .pretty_name
            .clone()
            .unwrap_or_else(|| format!("{} {}", os.id, os.version_id.as_deref().unwrap_or("")));
        row("OS", &name);
    }
    row("Config", &r.config.digest.to_string());
    let user = if r.config.config.user.is_empty() {
        "(not set: runs as root)".to_string()
    } else {
        r.config.config.user.clone()
    };
    row("User", &user);
    if let Some(e) = &r.config.config.entrypoint {
        row("Entrypoint", &format!("{e:?}"));
    }
    if let Some(c) = &r.config.config.cmd {
        row("Cmd", &format!("{c:?}"));
    }
    if !r.config.config.working_dir.is_empty() {
        row("WorkingDir", &r.config.config.working_dir);
    }
    if !r.config.config.exposed_ports.is_empty() {
        row("Ports", &r.config.config.exposed_ports.join(", "));
    }
    if let Some(c) = &r.config.created {
        row("Created", c);
    }
    let mut list = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            let _ = writeln!(s, "{title}");
            for i in items {
                let _ = writeln!(s, "  {i}");
            }
        }
    };
    list("Env", r.config.config.env.clone());
    list(
        "Labels",
        r.config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    );
    list(
        "Annotations",
        r.manifest
            .annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    );
    list(
        "History",
        r.config
            .config
            .history
            .iter()
            .map(|h| {
                let step = h.created_by.as_deref().unwrap_or("(no created_by)");
                if h.empty_layer {
                    format!("{step}  (no layer)")
                } else {
                    step.to_string()
                }
            })
            .collect(),
    );
    let _ = writeln!(s, "Layers");
    let _ = writeln!(
        s,
        "  {:>3}  {:<19}  {:<19}  {:<10}  {:>10}  {:>12}  {:>7}  {:>9}  SOURCE",
        "#", "DIGEST", "DIFF ID", "TYPE", "SIZE", "UNCOMPRESSED", "FILES", "WHITEOUTS"
    );
    for l in &r.layers {
        let short = |d: &gantry_model::Digest| format!("{}:{}", d.algorithm().as_str(), d.short());
        let _ = writeln!(
            s,
            "  {:>3}  {:<19}  {:<19}  {:<10}  {:>10}  {:>12}  {:>7}  {:>9}  {}",
            l.layer.index,
            short(&l.layer.digest),
            l.layer
                .diff_id
                .as_ref()
                .map(short)
                .unwrap_or_else(|| "-".into()),
            short_media_type(&l.layer.media_type),
            bytes(l.layer.compressed_size),
            l.layer
                .uncompressed_size
                .map(bytes)
                .unwrap_or_else(|| "-".into()),
            l.layer
                .files
                .map(|f| f.to_string())
                .unwrap_or_else(|| "-".into()),
            l.whiteouts.len(),
            match (&l.skipped, l.source) {
                (Some(why), _) => format!("skipped: {why}"),
                (None, src) => format!("{src:?}").to_lowercase(),
            }
        );
    }
    for l in r.layers.iter().filter(|l| !l.whiteouts.is_empty()) {
        let _ = writeln!(s, "Whiteouts in layer {}", l.layer.index);
        for w in &l.whiteouts {
            let _ = writeln!(s, "  {w}");
        }
    }
    let t = &r.totals;
    let _ = writeln!(
        s,
        "Totals       {} layers, {} compressed, {} uncompressed; final filesystem {} paths, {} in files; {} deleted + {} overwritten entries hide {}",
        t.layers,
        bytes(t.compressed_size),
        bytes(t.uncompressed_size),
        t.final_paths,
        bytes(t.final_file_bytes),
        t.deleted_entries,
        t.overwritten_entries,
        bytes(t.hidden_bytes)
    );
    if !r.complete {
        let _ = writeln!(s, "Incomplete   some layers were not walked (see SOURCE)");
    }
    for u in &r.unknowns {
        let _ = writeln!(s, "Unknown      {} {}: {}", u.analyzer, u.path, u.reason);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(51 * 1024 * 1024), "51.0 MiB");
    }

    #[test]
    fn shortens_media_types() {
        assert_eq!(
            short_media_type("application/vnd.oci.image.layer.v1.tar+gzip"),
            "tar+gzip"
        );
        assert_eq!(
            short_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "diff.tar.gzip"
        );
        assert_eq!(short_media_type("x/y"), "x/y");
    }
}
