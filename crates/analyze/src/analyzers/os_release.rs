//! `os-release` (freedesktop.org): which distribution the image is built on.

use gantry_model::fs::FileEntry;
use serde::{Deserialize, Serialize};

use super::{Analyzer, Interest, LayerAnalysis};
use crate::{Budget, Kept, LayerReport, Unknown};

/// The identifying fields of an os-release file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `alpine`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`, `3.20.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// `ID_LIKE`, e.g. `["rhel", "fedora"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
}

/// Reads `etc/os-release` and `usr/lib/os-release`.
#[derive(Debug)]
pub struct OsReleaseAnalyzer;

const ID: &str = "os-release";

impl Analyzer for OsReleaseAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        // Real files are under 1 KiB; 64 KiB leaves room for comments without letting a
        // hostile file cost more.
        Interest::paths(&["etc/os-release", "usr/lib/os-release"], 64 * 1024)
    }

    fn start_layer(&self, budget: &Budget) -> Box<dyn LayerAnalysis> {
        Box::new(OsReleaseLayer {
            budget: budget.clone(),
            ..OsReleaseLayer::default()
        })
    }
}

#[derive(Default)]
struct OsReleaseLayer {
    budget: Budget,
    found: Vec<(String, OsRelease)>,
    unknowns: Vec<Unknown>,
}

impl LayerAnalysis for OsReleaseLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], complete: bool) {
        let unknown = |reason: &str| Unknown {
            analyzer: ID.to_string(),
            path: entry.path.clone(),
            reason: reason.to_string(),
        };
        let reason = if !complete {
            "larger than 64 KiB; not parsed"
        } else if let Ok(text) = std::str::from_utf8(content) {
            match parse(text) {
                Some(os) => {
                    self.found.push((entry.path.clone(), os));
                    return;
                }
                None => "no ID= line",
            }
        } else {
            "not UTF-8"
        };
        self.budget
            .keep(Kept::Findings, &mut self.unknowns, unknown(reason));
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.os_release.extend(self.found);
        report.unknowns.extend(self.unknowns);
    }
}

/// Parses the shell-like `KEY=value` format (values may be quoted with `"` or `'`).
pub fn parse(text: &str) -> Option<OsRelease> {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => os.id = value,
            "VERSION_ID" => os.version_id = Some(value),
            "VERSION_CODENAME" => os.version_codename = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
            _ => {}
        }
    }
    (!os.id.is_empty()).then_some(os)
}

fn unquote(v: &str) -> String {
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian() {
        let os = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        let os = os.unwrap_or_default();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn parses_rhel_like_and_rejects_garbage() {
        let os = parse("ID='rocky'\nID_LIKE=\"rhel centos fedora\"\n# c\n").unwrap_or_default();
        assert_eq!(os.id, "rocky");
        assert_eq!(os.id_like, vec!["rhel", "centos", "fedora"]);
        assert_eq!(parse("hello\nworld"), None);
    }
}
