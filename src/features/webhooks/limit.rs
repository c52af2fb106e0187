//! `rateLimitPerSecond`: an in-process token bucket per webhook (each
//! process paces its own attempts; with N processes the endpoint sees at
//! most N × the rate).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

struct Bucket {
    tokens: f64,
    at: Instant,
}

fn buckets() -> &'static Mutex<HashMap<Uuid, Bucket>> {
    static B: OnceLock<Mutex<HashMap<Uuid, Bucket>>> = OnceLock::new();
    B.get_or_init(Default::default)
}

/// Takes a token for `webhook` at `rate` per second: `None` when the attempt
/// may go now, else how long to wait.
pub fn take(webhook: Uuid, rate: u32) -> Option<Duration> {
    let rate = f64::from(rate.max(1));
    let now = Instant::now();
    let mut map = buckets().lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() > 100_000 {
        map.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(60));
    }
    let b = map.entry(webhook).or_insert(Bucket {
        tokens: rate,
        at: now,
    });
    b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        None
    } else {
        Some(Duration::from_secs_f64((1.0 - b.tokens) / rate).max(Duration::from_millis(10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_rate_waits() {
        let id = Uuid::new_v4();
        assert!((0..3).all(|_| take(id, 3).is_none()));
        let wait = take(id, 3).expect("over the rate");
        assert!(wait <= Duration::from_millis(400));
    }
}
