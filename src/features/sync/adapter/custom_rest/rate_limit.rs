//! `rateLimitPerSecond`: at most N calls of one integration in any window
//! of a second, across every adapter of that integration in this process.
//!
//! A sliding-window log: the limiter remembers when its last N calls were
//! let through and lets the next one go only once the oldest of them is a
//! window old. The window is a second plus [`MARGIN`]: the API counts
//! arrivals, which trail the moment a call is let through by a varying
//! few milliseconds (scheduling, connection set-up), so a window of exactly
//! one second here could show N + 1 calls in one second there.
//!
//! Limiters live in a process-wide registry keyed by integration id, so two
//! runs of one integration (a scheduled run and a connection test, say)
//! share one budget. Processes do not share it: the limit is per process.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// Slack added to the one-second window (see the module doc).
pub const MARGIN: Duration = Duration::from_millis(100);

const WINDOW: Duration = Duration::from_secs(1).saturating_add(MARGIN);

/// Registry entries above which idle limiters are dropped.
const PRUNE_ABOVE: usize = 1024;

/// Lets at most N calls through in any window of a second (plus margin).
pub struct RateLimiter {
    per_second: AtomicUsize,
    /// When the last calls were let through, oldest first.
    granted: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter of its own (not shared through the registry).
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: AtomicUsize::new(per_second.max(1) as usize),
            granted: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// The limiter shared by every adapter of `integration` in this
    /// process; a changed limit applies from the next call on.
    pub fn shared(integration: Uuid, per_second: u32) -> Arc<Self> {
        static REGISTRY: LazyLock<Mutex<HashMap<Uuid, Arc<RateLimiter>>>> =
            LazyLock::new(Mutex::default);
        // A poisoned map only means another thread panicked while holding
        // it; the map itself is still whole.
        let mut map = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, l| Arc::strong_count(l) > 1 || !l.is_idle());
        }
        let limiter = map
            .entry(integration)
            .or_insert_with(|| Arc::new(Self::new(per_second)))
            .clone();
        drop(map);
        limiter.set_rate(per_second);
        limiter
    }

    fn set_rate(&self, per_second: u32) {
        self.per_second
            .store(per_second.max(1) as usize, Ordering::Relaxed);
    }

    /// Whether no call was let through within the last window.
    fn is_idle(&self) -> bool {
        self.granted
            .try_lock()
            .is_ok_and(|g| g.back().is_none_or(|last| last.elapsed() >= WINDOW))
    }

    /// Waits until one more call fits, and counts it. Waiters are served
    /// in arrival order (the lock is fair).
    pub async fn acquire(&self) {
        let mut granted = self.granted.lock().await;
        while granted.len() >= self.per_second.load(Ordering::Relaxed) {
            let Some(&oldest) = granted.front() else {
                break;
            };
            tokio::time::sleep_until(oldest + WINDOW).await;
            granted.pop_front();
        }
        granted.push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_window_holds_more_than_the_limit() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..5 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u < *t + WINDOW).count();
            assert!(in_window <= 3, "{times:?}");
        }
    }

    #[test]
    fn one_integration_shares_one_limiter() {
        let id = Uuid::new_v4();
        let a = RateLimiter::shared(id, 5);
        let b = RateLimiter::shared(id, 5);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &RateLimiter::shared(Uuid::new_v4(), 5)));
    }
}
