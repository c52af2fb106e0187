//! Stored timestamps that sort as text.
//!
//! chrono's default RFC 3339 form drops trailing zero groups of the fraction
//! (`…:00.5Z`, `…:00.500001Z`, `…:00Z`), so two timestamps compare wrongly as
//! strings, and store queries order and filter by the stored text. Fields
//! used that way are written with a fixed number of fractional digits
//! instead: six ([`sortable`]) or nine ([`exact`], which loses nothing).
//!
//! The text is written by hand into a stack buffer: through chrono's
//! `Display` every timestamp went through the formatting machinery, a
//! measurable share of encoding a delivery, which carries a dozen of them
//! and is written twice per event.

use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `2026-01-01T10:00:00.` + nine digits + `Z`.
const MAX_LEN: usize = 30;

/// `t` in RFC 3339 with exactly `digits` (6 or 9) fractional digits, UTC.
fn fixed(t: &DateTime<Utc>, digits: usize, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    // A leap second (nanosecond ≥ 1e9) has no fixed-width form here.
    let nanos = Some(t.nanosecond()).filter(|n| *n < 1_000_000_000)?;
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (at..at + width).rev() {
            // Always a single digit: `v % 10`.
            buf[i] = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let fraction = if digits == 6 { nanos / 1000 } else { nanos };
    put(20, fraction, digits);
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        buf[i] = c;
    }
    buf[20 + digits] = b'Z';
    Some(21 + digits)
}

/// Calls `f` with `t` in RFC 3339 at `digits` (6 or 9) fractional digits:
/// the hand-written text, or chrono's own for a year outside 0–9999 (which
/// never sorts with the rest anyway).
fn with_fixed<R>(t: &DateTime<Utc>, digits: usize, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; MAX_LEN];
    if let Some(text) = fixed(t, digits, &mut buf).and_then(|n| std::str::from_utf8(&buf[..n]).ok())
    {
        return f(text);
    }
    let format = if digits == 6 {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    f(&t.to_rfc3339_opts(format, true))
}

fn serialize_fixed<S: Serializer>(
    t: &DateTime<Utc>,
    digits: usize,
    s: S,
) -> Result<S::Ok, S::Error> {
    with_fixed(t, digits, |text| s.serialize_str(text))
}

/// `t` as [`exact`] writes it: for comparing with stored timestamps.
pub fn exact_text(t: &DateTime<Utc>) -> String {
    with_fixed(t, 9, str::to_owned)
}

/// `#[serde(with = "crate::domain::time::sortable")]` for `DateTime<Utc>`.
pub mod sortable {
    use super::*;

    /// Writes `2026-01-01T10:00:00.500000Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        serialize_fixed(t, 6, s)
    }

    /// Reads any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// `#[serde(with = "crate::domain::time::exact")]` for `DateTime<Utc>`:
/// nanoseconds kept, so a value reads back equal to what was written.
pub mod exact {
    use super::*;

    /// Writes `2026-01-01T10:00:00.500000000Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        serialize_fixed(t, 9, s)
    }

    /// Reads any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// [`exact`] for `Option<DateTime<Utc>>` (`null` when absent).
pub mod exact_opt {
    use super::*;

    /// Writes [`exact`]'s text, or `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serialize_fixed(t, 9, s),
            None => s.serialize_none(),
        }
    }

    /// Reads any RFC 3339 timestamp, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct T(#[serde(with = "sortable")] DateTime<Utc>);

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct E(#[serde(with = "exact")] DateTime<Utc>);

    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn text_order_is_time_order() {
        let steps = [0_i64, 1, 500_000, 500_001, 999_999, 1_000_000];
        let micros: Vec<String> = steps
            .iter()
            .map(|us| {
                serde_json::to_string(&T(base() + chrono::Duration::microseconds(*us)))
                    .expect("json")
            })
            .collect();
        let nanos: Vec<String> = steps
            .iter()
            .map(|ns| {
                serde_json::to_string(&E(base() + chrono::Duration::nanoseconds(*ns)))
                    .expect("json")
            })
            .collect();
        for times in [micros, nanos] {
            let mut sorted = times.clone();
            sorted.sort();
            assert_eq!(times, sorted);
        }
    }

    /// The hand-written text is chrono's own, and reads back unchanged.
    #[test]
    fn fixed_text_is_rfc3339_and_round_trips() {
        let times = [
            base(),
            base() + chrono::Duration::nanoseconds(123_456_789),
            Utc.with_ymd_and_hms(1, 2, 3, 4, 5, 6)
                .single()
                .expect("time"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .single()
                .expect("time")
                + chrono::Duration::nanoseconds(999_999_999),
        ];
        for t in times {
            let json = serde_json::to_string(&E(t)).expect("json");
            assert_eq!(
                json,
                format!("\"{}\"", t.to_rfc3339_opts(SecondsFormat::Nanos, true))
            );
            assert_eq!(
                exact_text(&t),
                t.to_rfc3339_opts(SecondsFormat::Nanos, true)
            );
            assert_eq!(serde_json::from_str::<E>(&json).expect("read"), E(t));
            let micros = serde_json::to_string(&T(t)).expect("json");
            assert_eq!(
                micros,
                format!("\"{}\"", t.to_rfc3339_opts(SecondsFormat::Micros, true))
            );
        }
        // Beyond four-digit years: chrono's text.
        let far = Utc
            .with_ymd_and_hms(12026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        let json = serde_json::to_string(&E(far)).expect("json");
        assert_eq!(serde_json::from_str::<E>(&json).expect("read"), E(far));
    }
}
