//! toolchain: the content evidence of build leftovers, collected per layer.
//!
//! Most toolchain evidence needs no content and is derived from the final filesystem and
//! package databases in [`crate::facts`] (a compiler deleted by a later layer does not run,
//! so only the squashed view can say what is left; see `facts::toolchain`). This analyzer
//! collects what needs bytes:
//!
//! - **source maps**: a `*.map` file counts only when its first bytes look like a source map
//!   (`{"version":3`, optionally behind the `)]}'` guard the spec allows); `System.map`,
//!   keyboard maps and linker maps are not source maps.
//!
//! **No ELF evidence, on purpose.** Recognising a renamed compiler from its bytes needs
//! what is far into the file: Go's `\xff Go buildinf:` blob and `cmd/go` path sit at the
//! start of the data segment, megabytes in; GCC's and Clang's identifying strings are in
//! `.rodata`/`.comment`, near the end. The walk streams each layer once and reads a bounded
//! prefix of each file, so this would mean reading every executable whole — several times
//! the bytes every other analyzer reads together — for evidence that is weaker than what
//! the package databases already give (a distribution's compiler, whatever its name, is
//! listed in its package's file list, and the facts attribute it). Binaries installed by
//! hand are recognised by path. If ELF identity is ever needed it belongs in a dedicated
//! analyzer with a per-layer byte budget.

use gantry_model::fs::FileEntry;

use super::{Analyzer, Interest, LayerAnalysis};
use crate::{Budget, LayerReport};

const ID: &str = "toolchain";

/// The `version` key comes first in every generator's output; 512 bytes leaves room for a
/// BOM, the XSSI guard and whitespace.
const MAX_BYTES: usize = 512;

/// Collects content evidence of build leftovers.
#[derive(Debug)]
pub struct ToolchainAnalyzer;

impl Analyzer for ToolchainAnalyzer {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> u32 {
        1
    }

    fn interest(&self) -> Interest {
        Interest::paths(&["**/*.map"], MAX_BYTES)
    }

    fn start_layer(&self, _budget: &Budget) -> Box<dyn LayerAnalysis> {
        // One path per `*.map` entry: bounded by the entry count.
        Box::<ToolchainLayer>::default()
    }
}

#[derive(Default)]
struct ToolchainLayer {
    source_maps: Vec<String>,
}

impl LayerAnalysis for ToolchainLayer {
    fn file(&mut self, entry: &FileEntry, content: &[u8], _complete: bool) {
        if looks_like_source_map(content) {
            self.source_maps.push(entry.path.clone());
        }
    }

    fn finish(self: Box<Self>, report: &mut LayerReport) {
        report.source_maps.extend(self.source_maps);
    }
}

/// Whether `prefix` starts like a source map v3: a JSON object whose first key is
/// `"version"` with the value 3.
pub fn looks_like_source_map(prefix: &[u8]) -> bool {
    let mut s = prefix.strip_prefix(b"\xef\xbb\xbf").unwrap_or(prefix);
    s = s.trim_ascii_start();
    if let Some(rest) = s.strip_prefix(b")]}'") {
        s = rest.trim_ascii_start();
    }
    let Some(rest) = s.strip_prefix(b"{") else {
        return false;
    };
    let Some(rest) = rest.trim_ascii_start().strip_prefix(b"\"version\"") else {
        return false;
    };
    let Some(rest) = rest.trim_ascii_start().strip_prefix(b":") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    rest.starts_with(b"3") && !rest.get(1).is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_source_maps() {
        assert!(looks_like_source_map(
            br#"{"version":3,"file":"app.js","sources":["../src/app.ts"]}"#
        ));
        assert!(looks_like_source_map(b"\xef\xbb\xbf\n{\n  \"version\": 3,"));
        assert!(looks_like_source_map(b")]}'\n{\"version\":3}"));
        assert!(!looks_like_source_map(b"ffffffff81000000 T _text\n"));
        assert!(!looks_like_source_map(br#"{"version":30}"#));
        assert!(!looks_like_source_map(br#"{"file":"x"}"#));
        assert!(!looks_like_source_map(b""));
        assert!(!looks_like_source_map(b"{"));
    }
}
