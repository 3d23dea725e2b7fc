//! `gantry inspect` as a table.

use std::fmt::Write as _;

use super::{bytes, short_media_type};
use crate::commands::inspect::InspectReport;

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
