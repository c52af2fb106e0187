//! Schedules: validation pointers and next runs across Berlin's DST changes.

use chrono::TimeZone as _;

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap_or_default()
}

fn cron(expr: &str, tz: Option<&str>) -> Schedule {
    Schedule {
        kind: ScheduleType::Cron,
        interval_minutes: None,
        cron_expression: Some(expr.to_owned()),
        timezone: tz.map(str::to_owned),
    }
}

fn interval(minutes: u32) -> Schedule {
    Schedule {
        kind: ScheduleType::Interval,
        interval_minutes: Some(minutes),
        cron_expression: None,
        timezone: None,
    }
}

fn manual() -> Schedule {
    Schedule {
        kind: ScheduleType::Manual,
        interval_minutes: None,
        cron_expression: None,
        timezone: None,
    }
}

/// The next `n` runs after `from`, each computed from the previous one.
fn runs(s: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut at = from;
    for _ in 0..n {
        let Some(next) = next_run_at(s, at) else {
            break;
        };
        out.push(next);
        at = next;
    }
    out
}

fn pointers(s: &Schedule, min: u32) -> Vec<(String, String)> {
    let mut v = Violations::default();
    validate(s, "/schedule", min, utc(2026, 12, 7, 12, 0), &mut v);
    v.into_vec()
        .into_iter()
        .map(|x| (x.pointer, x.detail))
        .collect()
}

const BERLIN: Option<&str> = Some("Europe/Berlin");

#[test]
fn berlin_daily_runs_once_on_the_october_change_day() {
    // 25 Oct 2026, 03:00 CEST → 02:00 CET: 02:30 happens twice locally.
    let s = cron("30 2 * * *", BERLIN);
    let got = runs(&s, utc(2026, 10, 23, 12, 0), 4);
    assert_eq!(
        got,
        vec![
            utc(2026, 10, 24, 0, 30), // 02:30 CEST
            utc(2026, 10, 25, 0, 30), // 02:30 CEST, the first pass only
            utc(2026, 10, 26, 1, 30), // 02:30 CET
            utc(2026, 10, 27, 1, 30),
        ]
    );
    // Asked from inside the repeated hour (after the first pass), the second
    // pass is not a run: the next one is the following day.
    assert_eq!(
        next_run_at(&s, utc(2026, 10, 25, 1, 0)),
        Some(utc(2026, 10, 26, 1, 30))
    );
}

#[test]
fn berlin_hourly_runs_through_the_repeated_hour() {
    let s = cron("0 * * * *", BERLIN);
    let got = runs(&s, utc(2026, 10, 24, 21, 30), 6);
    assert_eq!(
        got,
        vec![
            utc(2026, 10, 24, 22, 0), // 00:00 CEST
            utc(2026, 10, 24, 23, 0), // 01:00 CEST
            utc(2026, 10, 25, 0, 0),  // 02:00 CEST
            utc(2026, 10, 25, 1, 0),  // 02:00 CET (the repeated hour)
            utc(2026, 10, 25, 2, 0),  // 03:00 CET
            utc(2026, 10, 25, 3, 0),  // 04:00 CET
        ]
    );
    let half = cron("*/30 * * * *", BERLIN);
    let got = runs(&half, utc(2026, 10, 24, 23, 50), 5);
    assert_eq!(
        got,
        vec![
            utc(2026, 10, 25, 0, 0),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1, 0),
            utc(2026, 10, 25, 1, 30),
            utc(2026, 10, 25, 2, 0),
        ]
    );
}

#[test]
fn berlin_march_gap_runs_a_missing_fixed_time_right_after_the_gap() {
    // 29 Mar 2026, 02:00 CET → 03:00 CEST: 02:30 does not exist that day.
    // The daily run happens at the first instant after the gap (03:00
    // CEST = 01:00 UTC), once, then at 02:30 CEST again the next day.
    let s = cron("30 2 * * *", BERLIN);
    let got = runs(&s, utc(2026, 3, 28, 12, 0), 2);
    assert_eq!(got, vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]);
    // Hourly runs skip the hour that does not exist and stay one real hour apart.
    let hourly = cron("0 * * * *", BERLIN);
    let got = runs(&hourly, utc(2026, 3, 28, 23, 30), 3);
    assert_eq!(
        got,
        vec![
            utc(2026, 3, 29, 0, 0), // 01:00 CET
            utc(2026, 3, 29, 1, 0), // 03:00 CEST
            utc(2026, 3, 29, 2, 0), // 04:00 CEST
        ]
    );
}

#[test]
fn six_fields_put_seconds_first_and_utc_is_the_default_zone() {
    let s = cron("15 30 2 * * *", None);
    assert_eq!(
        next_run_at(&s, utc(2026, 10, 25, 0, 0)),
        Utc.with_ymd_and_hms(2026, 10, 25, 2, 30, 15).single()
    );
    let five = cron("0 9 * * MON-FRI", Some("America/New_York"));
    // Friday 4 Dec 2026 after 14:00 UTC (09:00 EST): next is Monday 7 Dec, 14:00 UTC.
    assert_eq!(
        next_run_at(&five, utc(2026, 12, 4, 14, 0)),
        Some(utc(2026, 12, 7, 14, 0))
    );
}

#[test]
fn interval_and_manual() {
    let at = utc(2026, 12, 7, 10, 3);
    assert_eq!(
        next_run_at(&interval(15), at),
        Some(utc(2026, 12, 7, 10, 18))
    );
    assert_eq!(next_run_at(&manual(), at), None);
}

#[test]
fn valid_schedules_pass() {
    for s in [
        manual(),
        interval(5),
        interval(MAX_INTERVAL_MINUTES),
        cron("*/15 * * * *", None),
        cron("0 0 8 * * 1-5", Some("Europe/Berlin")),
        cron("0 3 L * *", Some("UTC")),
    ] {
        assert_eq!(pointers(&s, 5), vec![], "{s:?}");
    }
    // A minimum of 0 (limits off) still means at least one minute.
    assert_eq!(pointers(&interval(1), 0), vec![]);
}

#[test]
fn every_bad_field_is_named() {
    let p = |s: &Schedule, min| {
        pointers(s, min)
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>()
    };
    let mut m = manual();
    m.interval_minutes = Some(5);
    m.cron_expression = Some("* * * * *".into());
    m.timezone = Some("UTC".into());
    assert_eq!(
        p(&m, 5),
        [
            "/schedule/intervalMinutes",
            "/schedule/cronExpression",
            "/schedule/timezone"
        ]
    );
    assert_eq!(p(&interval(4), 5), ["/schedule/intervalMinutes"]);
    assert_eq!(p(&interval(0), 0), ["/schedule/intervalMinutes"]);
    assert_eq!(
        p(&interval(MAX_INTERVAL_MINUTES + 1), 5),
        ["/schedule/intervalMinutes"]
    );
    let mut i = interval(5);
    i.interval_minutes = None;
    i.timezone = Some("UTC".into());
    assert_eq!(
        p(&i, 5),
        ["/schedule/timezone", "/schedule/intervalMinutes"]
    );
    let mut c = cron("* * * *", Some("Mars/Olympus"));
    c.interval_minutes = Some(5);
    assert_eq!(
        p(&c, 5),
        [
            "/schedule/intervalMinutes",
            "/schedule/timezone",
            "/schedule/cronExpression"
        ]
    );
    for bad in [
        "",
        "* * * * * * *",
        "@daily",
        "61 * * * *",
        "* 25 * * *",
        "x * * * *",
        "0 0 30 2 *",
    ] {
        assert_eq!(
            p(&cron(bad, None), 5),
            ["/schedule/cronExpression"],
            "{bad:?}"
        );
    }
    let mut missing = cron("", None);
    missing.cron_expression = None;
    assert_eq!(p(&missing, 5), ["/schedule/cronExpression"]);
}
