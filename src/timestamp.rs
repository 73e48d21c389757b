//! Parsing of the Hub's timestamps into seconds since the Unix epoch.
//!
//! JupyterHub renders naive UTC datetimes as `isoformat() + "Z"`, with the fraction present only
//! when microseconds are non-zero. Older Hubs and proxies have sent naive strings and explicit
//! offsets; like the reference culler we read a missing zone as UTC.

use chrono::{DateTime, NaiveDateTime};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid timestamp: {0:?}")]
pub struct TimestampError(pub String);

/// Seconds since the Unix epoch (with microsecond precision) of an ISO-8601 timestamp.
pub fn parse_timestamp(text: &str) -> Result<f64, TimestampError> {
    let text = text.trim();
    if let Ok(aware) = DateTime::parse_from_rfc3339(text) {
        return Ok(epoch_seconds(
            aware.timestamp(),
            aware.timestamp_subsec_micros(),
        ));
    }
    // Naive forms (no zone): assumed UTC, as `dateutil` + the reference culler do.
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            let utc = naive.and_utc();
            return Ok(epoch_seconds(
                utc.timestamp(),
                utc.timestamp_subsec_micros(),
            ));
        }
    }
    Err(TimestampError(text.chars().take(64).collect()))
}

fn epoch_seconds(secs: i64, micros: u32) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let whole = secs as f64;
    whole + f64::from(micros) / 1e6
}

/// Seconds since the epoch as ISO 8601 UTC to the second: `2026-11-27T10:00:00Z`.
pub fn format_utc(seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let whole = seconds.floor() as i64;
    DateTime::from_timestamp(whole, 0).map_or_else(
        || "an unknown time".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// Seconds since the epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `HH:MM:SS` with unbounded hours, like the reference's `format_td`; "unknown" for `None`.
pub fn format_duration(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else {
        return "unknown".to_owned();
    };
    let sign = if seconds < 0.0 { "-" } else { "" };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = seconds.abs().floor() as u64;
    format!(
        "{sign}{:02}:{:02}:{:02}",
        total / 3600,
        (total % 3600) / 60,
        total % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: f64 = 1_795_773_600.0; // 2026-11-27T10:00:00Z

    #[test]
    fn utc_to_the_second() {
        assert_eq!(format_utc(BASE + 0.9), "2026-11-27T10:00:00Z");
    }

    #[test]
    fn zulu_without_fraction() {
        assert_eq!(parse_timestamp("2026-11-27T10:00:00Z").unwrap(), BASE);
    }

    #[test]
    fn zulu_with_microseconds() {
        let t = parse_timestamp("2026-11-27T10:00:00.985000Z").unwrap();
        assert!((t - (BASE + 0.985)).abs() < 1e-6);
    }

    #[test]
    fn lowercase_z_and_milliseconds() {
        let t = parse_timestamp("2026-11-27t10:00:00.5z").unwrap();
        assert!((t - (BASE + 0.5)).abs() < 1e-6);
    }

    #[test]
    fn explicit_offsets_are_honoured() {
        assert_eq!(parse_timestamp("2026-11-27T12:00:00+02:00").unwrap(), BASE);
        assert_eq!(parse_timestamp("2026-11-27T05:00:00-05:00").unwrap(), BASE);
        assert_eq!(parse_timestamp("2026-11-27T10:00:00+00:00").unwrap(), BASE);
    }

    #[test]
    fn naive_is_utc() {
        assert_eq!(parse_timestamp("2026-11-27T10:00:00").unwrap(), BASE);
        assert_eq!(parse_timestamp("2026-11-27 10:00:00").unwrap(), BASE);
        let t = parse_timestamp("2026-11-27T10:00:00.250").unwrap();
        assert!((t - (BASE + 0.25)).abs() < 1e-6);
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(parse_timestamp(" 2026-11-27T10:00:00Z\n").unwrap(), BASE);
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-27",
            "1795773600",
            "2026-11-27T25:00:00Z",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn error_message_is_bounded() {
        let long = "x".repeat(10_000);
        let err = parse_timestamp(&long).unwrap_err();
        assert!(err.to_string().len() < 100);
    }

    #[test]
    fn durations_format_like_the_reference() {
        assert_eq!(format_duration(None), "unknown");
        assert_eq!(format_duration(Some(0.0)), "00:00:00");
        assert_eq!(format_duration(Some(3661.9)), "01:01:01");
        assert_eq!(format_duration(Some(217_990_989.0)), "60553:03:09");
        assert_eq!(format_duration(Some(-5.0)), "-00:00:05");
    }
}
