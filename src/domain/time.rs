//! Stored timestamps that sort as text.
//!
//! chrono's default RFC 3339 form drops trailing zero groups of the fraction
//! (`…:00.5Z`, `…:00.500001Z`, `…:00Z`), so two timestamps compare wrongly as
//! strings, and store queries order by the stored text. Fields used as sort
//! keys are written with exactly six fractional digits instead.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `#[serde(with = "crate::domain::time::sortable")]` for `DateTime<Utc>`.
pub mod sortable {
    use super::*;

    /// Writes `2026-01-01T10:00:00.500000Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    /// Reads any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct T(#[serde(with = "sortable")] DateTime<Utc>);

    #[test]
    fn text_order_is_time_order() {
        let base = Utc
            .with_ymd_and_hms(2026, 1, 1, 10, 0, 0)
            .single()
            .expect("time");
        let times: Vec<String> = [0_i64, 1, 500_000, 500_001, 999_999, 1_000_000]
            .iter()
            .map(|us| {
                serde_json::to_string(&T(base + chrono::Duration::microseconds(*us))).expect("json")
            })
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted);
    }
}
