//! Reading the dates providers send, for `dateToISO` and `dateToUnix`.
//!
//! Salesforce writes date-times as `2024-05-01T10:00:00.000+0000` (an
//! offset without a colon, which RFC 3339 does not allow) and dates as
//! `2024-05-01`; other APIs send RFC 3339, naive timestamps or Unix seconds.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::transforms::quoted;

/// Date-times with an offset that RFC 3339 does not cover (`+0000`).
const WITH_OFFSET: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"];
/// Date-times without an offset, read as UTC.
const NAIVE: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
];

/// Parses a date or date-time string (`None` when it is none of the forms).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.to_utc());
    }
    for f in WITH_OFFSET {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.to_utc());
        }
    }
    for f in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// Reads a date from a string or Unix seconds; `Ok(None)` for a blank
/// string (Salesforce sends null, other APIs `""`, for no date).
pub fn read(transform: &str, v: &Value) -> Result<Option<DateTime<Utc>>, String> {
    match v {
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse(s)
            .map(Some)
            .ok_or_else(|| format!("{transform}: {} is not a date", quoted(s))),
        Value::Number(n) => {
            let secs = n.as_f64().unwrap_or(f64::NAN);
            if !secs.is_finite() {
                return Err(format!("{transform}: {n} is not a Unix time"));
            }
            #[allow(
                clippy::cast_possible_truncation,
                reason = "checked to be finite; out-of-range values saturate and are refused below"
            )]
            let millis = (secs * 1000.0).round() as i64;
            DateTime::from_timestamp_millis(millis)
                .map(Some)
                .ok_or_else(|| format!("{transform}: {n} is out of range"))
        }
        other => Err(format!(
            "{transform} takes a date string or Unix seconds, not {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
                _ => "an object",
            }
        )),
    }
}

/// The ISO 8601 form every date is written in: UTC, milliseconds, `Z`.
pub fn iso(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Millis, true)
}
