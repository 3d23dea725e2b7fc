//! Everything the binary writes: reports on stdout, errors on stderr. The only module allowed
//! to print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::Write as _;

mod inspect;
mod sarif;
mod scan;

pub use inspect::inspect_table;
pub use sarif::sarif;
pub use scan::scan_table;

use serde::Serialize;

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

/// Pretty JSON and a newline.
pub fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

/// Writes pretty JSON and a newline to stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    text(&to_json(value)?)
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
pub(crate) fn short_media_type(mt: &str) -> &str {
    mt.rsplit_once("layer.v1.")
        .map(|(_, s)| s)
        .or_else(|| mt.rsplit_once("rootfs.").map(|(_, s)| s))
        .unwrap_or(mt)
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
