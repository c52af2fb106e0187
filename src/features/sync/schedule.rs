//! When a task runs next (placeholder until schedules land: interval only).

use chrono::{DateTime, Duration, Utc};

use super::model::{Schedule, ScheduleType};

/// The next run after `after`; `None` for manual schedules.
pub fn next_run_at(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule.kind {
        ScheduleType::Interval => schedule
            .interval_minutes
            .map(|m| after + Duration::minutes(i64::from(m))),
        _ => None,
    }
}
