//! Reading the dates providers send, for `dateToISO` and `dateToUnix`.
//!
//! Salesforce writes date-times as `2024-05-01T10:00:00.000+0000` (an
//! offset without a colon, which RFC 3339 does not allow) and dates as
//! `2024-05-01`; other APIs send RFC 3339, naive timestamps or Unix seconds.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
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
    if let Some(d) = fast(s.as_bytes()) {
        return Some(d);
    }
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

/// The forms Salesforce sends, read without a format string (a sync maps
/// several dates per record): `YYYY-MM-DD`, and `YYYY-MM-DDTHH:MM:SS`
/// with an optional fraction and `Z`, `±HHMM` or `±HH:MM`. Anything else
/// (or an impossible date) is left to the general parsers.
fn fast(b: &[u8]) -> Option<DateTime<Utc>> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    }
    let date = |b: &[u8]| -> Option<NaiveDate> {
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = i32::try_from(num(&b[0..4])?).ok()?;
        NaiveDate::from_ymd_opt(year, num(&b[5..7])?, num(&b[8..10])?)
    };
    if b.len() == 10 {
        return date(b)?.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    }
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let day = date(&b[..10])?;
    let (h, m, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(&rest[1..=digits])? * 10u32.pow(u32::try_from(9 - digits).ok()?);
        rest = &rest[1 + digits..];
    }
    let offset_minutes: i64 = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), hh @ ..] if rest.len() == 5 || rest.len() == 6 => {
            let (oh, om) = match hh {
                [a, b2, c, d] => (num(&[*a, *b2])?, num(&[*c, *d])?),
                [a, b2, b':', c, d] => (num(&[*a, *b2])?, num(&[*c, *d])?),
                _ => return None,
            };
            let minutes = i64::from(oh * 60 + om);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let local = day.and_hms_nano_opt(h, m, sec, nanos)?;
    Some((local - Duration::minutes(offset_minutes)).and_utc())
}
