//! When a sync task runs (SPEC §5.6, §9.2.6): schedules are checked with
//! JSON pointers, and the next run is computed in the task's time zone.
//!
//! Cron expressions have five fields (minute first) or six (seconds first)
//! and are read in an IANA time zone (default `UTC`). Across daylight-saving
//! changes the next run follows Vixie cron, as `croner` implements it and
//! always moving forward in real time:
//! - a **repeated hour** (clocks go back): a fixed time (`30 2 * * *`) runs
//!   once, at its first pass; a wildcard or stepped hour (`0 * * * *`) runs
//!   in both passes, so hourly runs stay one real hour apart;
//! - a **skipped hour** (clocks go forward): a fixed time that does not
//!   exist that day runs at the first instant after the gap (a daily
//!   `30 2 * * *` in `Europe/Berlin` runs at 03:00 CEST on the day of the
//!   March change); wildcard times inside the gap are skipped.

use std::str::FromStr as _;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::model::{Schedule, ScheduleType};
use crate::domain::validation::Violations;

/// Longest interval: a week.
pub const MAX_INTERVAL_MINUTES: u32 = 10_080;

/// Longest accepted cron expression.
pub const MAX_CRON_LENGTH: usize = 200;

/// The time zone of a cron schedule without one.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Checks a schedule; `base` is its pointer in the body (`/schedule`).
/// `min_interval_minutes` is `SYNC_MIN_INTERVAL_MINUTES` (an interval is at
/// least that, and at least one minute). Every bad field is reported.
pub fn validate(
    schedule: &Schedule,
    base: &str,
    min_interval_minutes: u32,
    now: DateTime<Utc>,
    v: &mut Violations,
) {
    let p = |field: &str| format!("{base}/{field}");
    let not_here = |v: &mut Violations, field: &str, present: bool| {
        if present {
            v.add(
                p(field),
                format!(
                    "is not allowed with schedule type {}",
                    type_name(schedule.kind)
                ),
            );
        }
    };
    match schedule.kind {
        ScheduleType::Manual => {
            not_here(v, "intervalMinutes", schedule.interval_minutes.is_some());
            not_here(v, "cronExpression", schedule.cron_expression.is_some());
            not_here(v, "timezone", schedule.timezone.is_some());
        }
        ScheduleType::Interval => {
            not_here(v, "cronExpression", schedule.cron_expression.is_some());
            not_here(v, "timezone", schedule.timezone.is_some());
            let min = min_interval_minutes.max(1);
            match schedule.interval_minutes {
                None => v.add(p("intervalMinutes"), "is required for an interval schedule"),
                Some(m) if m < min || m > MAX_INTERVAL_MINUTES => v.add(
                    p("intervalMinutes"),
                    format!("must be from {min} to {MAX_INTERVAL_MINUTES} minutes"),
                ),
                Some(_) => {}
            }
        }
        ScheduleType::Cron => {
            not_here(v, "intervalMinutes", schedule.interval_minutes.is_some());
            let zone = match schedule.timezone.as_deref() {
                None => Some(Tz::UTC),
                Some(name) => {
                    let zone = parse_zone(name);
                    if zone.is_none() {
                        v.add(
                            p("timezone"),
                            "must be an IANA time zone name such as Europe/Berlin or UTC",
                        );
                    }
                    zone
                }
            };
            let cron = match schedule.cron_expression.as_deref() {
                None => {
                    v.add(p("cronExpression"), "is required for a cron schedule");
                    None
                }
                Some(expr) => match parse_cron(expr) {
                    Ok(c) => Some(c),
                    Err(why) => {
                        v.add(p("cronExpression"), why);
                        None
                    }
                },
            };
            if let (Some(cron), Some(zone)) = (cron, zone)
                && next_cron(&cron, zone, now).is_none()
            {
                v.add(p("cronExpression"), "never matches a date");
            }
        }
    }
}

/// The next run strictly after `after`: `after` + the interval for an
/// interval schedule, the next match of the cron expression in its time
/// zone for a cron one; `None` for a manual schedule (or one that does not
/// validate, which a stored task never holds).
pub fn next_run_at(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule.kind {
        ScheduleType::Manual => None,
        ScheduleType::Interval => {
            let minutes = schedule.interval_minutes?;
            after.checked_add_signed(Duration::minutes(i64::from(minutes)))
        }
        ScheduleType::Cron => {
            let cron = parse_cron(schedule.cron_expression.as_deref()?).ok()?;
            let zone = match schedule.timezone.as_deref() {
                None => Tz::UTC,
                Some(name) => parse_zone(name)?,
            };
            next_cron(&cron, zone, after)
        }
    }
}

fn next_cron(cron: &Cron, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&zone), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_zone(name: &str) -> Option<Tz> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    Tz::from_str(name).ok()
}

/// Parses a five- or six-field expression (no `@daily` nicknames, no year
/// field: SPEC §5.6 names the two forms).
fn parse_cron(expr: &str) -> Result<Cron, String> {
    if expr.len() > MAX_CRON_LENGTH {
        return Err(format!("must have at most {MAX_CRON_LENGTH} characters"));
    }
    let fields = expr.split_whitespace().count();
    if expr.contains('@') || !(5..=6).contains(&fields) {
        return Err(
            "must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                .to_owned(),
        );
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("is not a valid cron expression: {e}"))
}

fn type_name(kind: ScheduleType) -> &'static str {
    match kind {
        ScheduleType::Manual => "manual",
        ScheduleType::Interval => "interval",
        ScheduleType::Cron => "cron",
    }
}

#[cfg(test)]
mod tests;
