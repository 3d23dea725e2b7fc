//! Every hostile-input and timeout limit by its documented name (docs/limits.md): `gantry scan
//! --limit NAME=VALUE` and the `[scan] limits` table of `gantry serve`'s config use the same names.

use std::str::FromStr;
use std::time::Duration;

use gantry_layer::Limits;
use gantry_registry::FetchLimits;

/// One `--limit NAME=VALUE` argument, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitArg {
    name: LimitName,
    value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Bytes,
    Count,
    Seconds,
}

macro_rules! limit_names {
    ($($variant:ident = $name:literal, $unit:ident;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum LimitName { $($variant),* }

        impl LimitName {
            const ALL: &[(LimitName, &str, Unit)] = &[$((LimitName::$variant, $name, Unit::$unit)),*];
        }
    };
}

limit_names! {
    LayerCompressed = "layer-compressed-bytes", Bytes;
    LayerUncompressed = "layer-uncompressed-bytes", Bytes;
    LayerRatio = "layer-compression-ratio", Count;
    LayerRatioFloor = "layer-ratio-floor-bytes", Bytes;
    LayerEntries = "layer-entries", Count;
    TarExtension = "tar-extension-header-bytes", Bytes;
    Path = "path-bytes", Bytes;
    ZstdWindow = "zstd-window-log-max", Count;
    LayerPackages = "layer-packages", Count;
    LayerFiles = "layer-files", Count;
    LayerFindings = "layer-findings", Count;
    ImagePackages = "image-packages", Count;
    ImageFiles = "image-files", Count;
    ImageFindings = "image-findings", Count;
    AnalyzerMemory = "analyzer-memory-bytes", Bytes;
    Manifest = "manifest-bytes", Bytes;
    Config = "config-bytes", Bytes;
    Connect = "connect-timeout", Seconds;
    Read = "read-timeout", Seconds;
    Request = "request-timeout", Seconds;
}

/// Parses `123`, `64KiB`, `4MiB`, `16GiB`, `1KB` (= 1000) …
pub fn parse_bytes(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Parses `30`, `30s`, `2m`.
fn parse_seconds(v: &str) -> Option<u64> {
    if let Some(m) = v.strip_suffix('m') {
        return m.parse::<u64>().ok()?.checked_mul(60);
    }
    v.strip_suffix('s').unwrap_or(v).parse().ok()
}

impl FromStr for LimitArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names = || {
            LimitName::ALL
                .iter()
                .map(|(_, n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=VALUE; names: {}", names()))?;
        let &(name, _, unit) = LimitName::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .ok_or_else(|| format!("unknown limit {name:?}; names: {}", names()))?;
        let parsed = match unit {
            Unit::Bytes => parse_bytes(value),
            Unit::Count => value.parse().ok(),
            Unit::Seconds => parse_seconds(value),
        };
        if name == LimitName::ZstdWindow {
            // What libzstd accepts as a maximum window (ZSTD_WINDOWLOG_MIN..=MAX on 64-bit).
            return match parsed {
                Some(value @ 10..=31) => Ok(LimitArg { name, value }),
                _ => Err(format!(
                    "invalid value {value:?} (expected a power of two between 10 and 31)"
                )),
            };
        }
        match parsed {
            Some(value) if value > 0 => Ok(LimitArg { name, value }),
            _ => Err(format!(
                "invalid value {value:?} (expected a positive {})",
                match unit {
                    Unit::Bytes => "size such as 4096, 64KiB, 16GiB",
                    Unit::Count => "integer",
                    Unit::Seconds => "duration such as 30s or 2m",
                }
            )),
        }
    }
}

/// Applies the overrides, in order, to the defaults.
pub fn apply(args: &[LimitArg], layer: &mut Limits, fetch: &mut FetchLimits) {
    for a in args {
        let v = a.value;
        match a.name {
            LimitName::LayerCompressed => layer.max_compressed_bytes = v,
            LimitName::LayerUncompressed => layer.max_uncompressed_bytes = v,
            LimitName::LayerRatio => layer.max_ratio = v,
            LimitName::LayerRatioFloor => layer.ratio_floor_bytes = v,
            LimitName::LayerEntries => layer.max_entries = v,
            LimitName::TarExtension => layer.max_extension_bytes = v,
            LimitName::Path => layer.max_path_bytes = usize::try_from(v).unwrap_or(usize::MAX),
            LimitName::ZstdWindow => layer.zstd_window_log_max = u32::try_from(v).unwrap_or(31),
            LimitName::LayerPackages => layer.max_layer_packages = v,
            LimitName::LayerFiles => layer.max_layer_files = v,
            LimitName::LayerFindings => layer.max_layer_findings = v,
            LimitName::ImagePackages => layer.max_image_packages = v,
            LimitName::ImageFiles => layer.max_image_files = v,
            LimitName::ImageFindings => layer.max_image_findings = v,
            LimitName::AnalyzerMemory => layer.analyzer_memory_bytes = v,
            LimitName::Manifest => fetch.max_manifest_bytes = v,
            LimitName::Config => fetch.max_config_bytes = v,
            LimitName::Connect => fetch.connect_timeout = Duration::from_secs(v),
            LimitName::Read => fetch.read_timeout = Duration::from_secs(v),
            LimitName::Request => fetch.request_timeout_manifest = Duration::from_secs(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_counts_and_durations() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("64KiB"), Some(65536));
        assert_eq!(parse_bytes("16GiB"), Some(16 << 30));
        assert_eq!(parse_bytes("1MB"), Some(1_000_000));
        assert_eq!(parse_bytes("1.5GiB"), None);
        assert_eq!(parse_bytes("99999999999TiB"), None);
        assert_eq!(parse_seconds("30s"), Some(30));
        assert_eq!(parse_seconds("2m"), Some(120));
        assert_eq!(parse_seconds("7"), Some(7));
    }

    #[test]
    fn applies_overrides() {
        let args: Vec<LimitArg> = [
            "layer-compression-ratio=10",
            "manifest-bytes=1KiB",
            "read-timeout=2s",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let (mut l, mut f) = (Limits::default(), FetchLimits::default());
        apply(&args, &mut l, &mut f);
        assert_eq!(l.max_ratio, 10);
        assert_eq!(f.max_manifest_bytes, 1024);
        assert_eq!(f.read_timeout, Duration::from_secs(2));
    }

    #[test]
    fn rejects_unknown_names_and_bad_values() {
        let e = "nope=1".parse::<LimitArg>().unwrap_err();
        assert!(e.contains("layer-entries"), "{e}");
        assert!("layer-entries=0".parse::<LimitArg>().is_err());
        assert!("layer-entries=-1".parse::<LimitArg>().is_err());
        assert!("read-timeout=soon".parse::<LimitArg>().is_err());
        assert!("layer-entries".parse::<LimitArg>().is_err());
        assert!("zstd-window-log-max=9".parse::<LimitArg>().is_err());
        assert!("zstd-window-log-max=32".parse::<LimitArg>().is_err());
    }

    #[test]
    fn record_caps_and_the_zstd_window_have_names() {
        let args: Vec<LimitArg> = [
            "zstd-window-log-max=27",
            "layer-packages=10",
            "image-files=20",
            "image-findings=5",
            "analyzer-memory-bytes=64MiB",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let (mut l, mut f) = (Limits::default(), FetchLimits::default());
        apply(&args, &mut l, &mut f);
        assert_eq!(l.zstd_window_log_max, 27);
        assert_eq!(l.max_layer_packages, 10);
        assert_eq!(l.max_image_files, 20);
        assert_eq!(l.max_image_findings, 5);
        assert_eq!(l.analyzer_memory_bytes, 64 << 20);
    }
}
