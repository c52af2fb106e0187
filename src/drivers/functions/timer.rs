//! Timer trigger adapter (`docs/functions-protocol.md` §8.1, §9): `Data.<binding>` is the
//! host's `TimerInfo` — `{"Schedule":{..},"ScheduleStatus":{..}|null,"IsPastDue":bool}`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::envelope::{
    EnvelopeError, Invocation, get_ci, host_unwrap, parse_time, scalar_bool, scalar_str,
};

/// A timer firing, as a job sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerInput {
    /// The host fired late (after a restart or a long previous run).
    pub is_past_due: bool,
    /// The previous occurrence (`ScheduleStatus.Last`; none with `useMonitor:false`).
    pub last: Option<DateTime<Utc>>,
    /// The next scheduled occurrence.
    pub next: Option<DateTime<Utc>>,
    /// When the host fired this one (`Metadata.sys.UtcNow`).
    pub fired_at: Option<DateTime<Utc>>,
}

impl TimerInput {
    /// Decodes a timer invocation; a `Data` value that is not an object (or
    /// a string holding one) is malformed.
    pub fn from_invocation(inv: &Invocation, binding: &str) -> Result<Self, EnvelopeError> {
        let info = match host_unwrap(inv.binding(binding)?) {
            Value::Object(m) => m,
            _ => return Err(EnvelopeError::MissingBinding(binding.to_owned())),
        };
        let status = get_ci(&info, "ScheduleStatus").map(host_unwrap);
        let time = |key: &str| {
            status
                .as_ref()
                .and_then(Value::as_object)
                .and_then(|s| get_ci(s, key))
                .and_then(|v| scalar_str(&host_unwrap(v)))
                .and_then(|s| parse_time(&s))
        };
        Ok(Self {
            is_past_due: get_ci(&info, "IsPastDue")
                .and_then(scalar_bool)
                .unwrap_or(false),
            last: time("Last"),
            next: time("Next"),
            fired_at: inv.utc_now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_reference_fixture() {
        let body = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2025-05-01T12:00:00.0049674+00:00","Next":"2025-05-01T12:15:00+00:00","LastUpdated":"2025-05-01T12:00:00.0049674+00:00"},"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"SyncShards","UtcNow":"2025-05-01T12:15:00.0123456Z","RandGuid":"35e6e68c-5583-436c-a277-5aec2b416ba8"}}}"#;
        let inv = Invocation::parse(body).expect("parse");
        let t = TimerInput::from_invocation(&inv, "timer").expect("timer");
        assert!(!t.is_past_due);
        assert_eq!(t.next, parse_time("2025-05-01T12:15:00Z"));
        assert!(t.fired_at.is_some());
    }

    #[test]
    fn tolerates_null_status_and_string_flags() {
        let body = br#"{"Data":{"timer":"{\"Schedule\":{},\"ScheduleStatus\":null,\"IsPastDue\":\"true\"}"},"Metadata":{}}"#;
        let inv = Invocation::parse(body).expect("parse");
        let t = TimerInput::from_invocation(&inv, "timer").expect("timer");
        assert!(t.is_past_due);
        assert_eq!(t.last, None);
        let bad = Invocation::parse(br#"{"Data":{"timer":42}}"#).expect("parse");
        assert!(TimerInput::from_invocation(&bad, "timer").is_err());
    }
}
