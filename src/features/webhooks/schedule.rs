//! The retry schedule of SPEC §8 and how an endpoint's answer moves it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;

/// Gaps before attempts 2..=8 (attempt 1 is immediate).
pub const GAPS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts per round: the first plus one per gap.
pub const ATTEMPTS_PER_ROUND: u32 = GAPS.len() as u32 + 1;

/// The jittered gap after the `made`-th attempt of a round (1-based), or
/// `None` when the round is over.
pub fn next_gap(made: u32) -> Option<Duration> {
    let base = GAPS.get(usize::try_from(made.checked_sub(1)?).ok()?)?;
    let factor = rand::rng().random_range(0.8..=1.2);
    Some(base.mul_f64(factor))
}

/// The delay an endpoint asked for with `Retry-After` (seconds or an HTTP
/// date), capped at twice the scheduled gap.
pub fn honour_retry_after(header: Option<&str>, gap: Duration, now: DateTime<Utc>) -> Duration {
    let Some(raw) = header.map(str::trim) else {
        return gap;
    };
    let asked = if let Ok(secs) = raw.parse::<u64>() {
        Some(Duration::from_secs(secs))
    } else {
        DateTime::parse_from_rfc2822(raw)
            .ok()
            .map(|t| (t.with_timezone(&Utc) - now).to_std().unwrap_or_default())
    };
    match asked {
        Some(d) => d.min(gap * 2),
        None => gap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_has_eight_attempts_with_jitter() {
        assert_eq!(ATTEMPTS_PER_ROUND, 8);
        for (i, base) in GAPS.iter().enumerate() {
            let g = next_gap(u32::try_from(i).unwrap_or(0) + 1).unwrap_or_default();
            assert!(
                g >= base.mul_f64(0.8) && g <= base.mul_f64(1.2),
                "{i}: {g:?}"
            );
        }
        assert!(next_gap(8).is_none());
        assert!(next_gap(0).is_none());
    }

    #[test]
    fn retry_after_is_capped() {
        let now = Utc::now();
        let gap = Duration::from_secs(5);
        assert_eq!(
            honour_retry_after(Some("3"), gap, now),
            Duration::from_secs(3)
        );
        assert_eq!(
            honour_retry_after(Some("60"), gap, now),
            Duration::from_secs(10)
        );
        assert_eq!(honour_retry_after(Some("soon"), gap, now), gap);
        assert_eq!(honour_retry_after(None, gap, now), gap);
    }
}
