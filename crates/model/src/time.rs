//! RFC 3339 timestamps: the one formatter for every time Gantry writes (SBOM
//! `metadata.timestamp`, image `created`, API and webhook times, `gantry --version`'s build
//! date), by `humantime` rather than by hand.
//!
//! Self-contained on purpose (std and humantime only): the CLI's build script includes this
//! file by path, so the build date is formatted by this same code without compiling
//! gantry-model a second time for the build host.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second RFC 3339's four-digit year can write, 9999-12-31T23:59:59Z — also the last
/// one `humantime` formats (its `Display` fails past it).
pub const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) of a Unix time in seconds; `None` before 1970 or after
/// [`MAX_UNIX_SECONDS`], for input that must not be guessed at (a webhook's push time).
///
/// ```
/// use gantry_model::time::rfc3339_checked;
/// assert_eq!(rfc3339_checked(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
/// assert_eq!(rfc3339_checked(-1), None);
/// ```
pub fn rfc3339_checked(unix_seconds: i64) -> Option<String> {
    let secs = u64::try_from(unix_seconds)
        .ok()
        .filter(|_| unix_seconds <= MAX_UNIX_SECONDS)?;
    Some(humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string())
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) of a Unix time in seconds, clamped into what the format can
/// write: earlier times are written as 1970-01-01T00:00:00Z, later ones as
/// 9999-12-31T23:59:59Z.
///
/// ```
/// assert_eq!(gantry_model::time::rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
/// ```
pub fn rfc3339(unix_seconds: i64) -> String {
    rfc3339_checked(unix_seconds.clamp(0, MAX_UNIX_SECONDS)).unwrap_or_default()
}

/// [`rfc3339`] of a Unix time in milliseconds (how the store keeps times), to the second.
pub fn rfc3339_millis(unix_millis: i64) -> String {
    rfc3339(unix_millis.div_euclid(1000))
}

/// The current time, as [`rfc3339`] writes it.
pub fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_bounds() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_586_922_308, "2020-04-15T03:45:08Z"),
            (951_782_400 + 3661, "2000-02-29T01:01:01Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (MAX_UNIX_SECONDS, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339_checked(secs).as_deref(), Some(want), "{secs}");
            assert_eq!(rfc3339(secs), want, "{secs}");
        }
        assert_eq!(rfc3339_checked(-1), None);
        assert_eq!(rfc3339_checked(MAX_UNIX_SECONDS + 1), None);
        assert_eq!(rfc3339_checked(i64::MAX), None);
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_millis(1_704_067_200_999), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339_millis(-1), "1970-01-01T00:00:00Z");
        assert!(now().starts_with("20"));
    }
}
