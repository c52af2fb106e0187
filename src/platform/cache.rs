//! Read-through caches for small, rarely written sets that hot paths read on
//! every call (the catalog for each integration create, a tenant's webhooks
//! for each event).
//!
//! Entries live for a fixed time; this process's writes invalidate at once,
//! another instance's writes are seen within the time to live. A read that
//! started before an invalidation is never kept, so a load racing with a
//! write cannot store what the write replaced.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// A map of loaded values with a time to live and invalidation.
#[derive(Debug)]
pub struct ReadCache<K, V> {
    ttl: Duration,
    max_keys: usize,
    state: RwLock<State<K, V>>,
}

#[derive(Debug)]
struct State<K, V> {
    slots: HashMap<K, Slot<V>>,
    /// When the whole map was last emptied (a read older than this is stale).
    cleared_at: Instant,
}

#[derive(Debug)]
struct Slot<V> {
    loaded: Option<(Instant, Arc<V>)>,
    invalidated_at: Option<Instant>,
}

impl<K: Eq + Hash + Clone, V> ReadCache<K, V> {
    /// A cache whose values live `ttl`, holding at most `max_keys` keys (it
    /// is emptied when full).
    pub fn new(ttl: Duration, max_keys: usize) -> Self {
        Self {
            ttl,
            max_keys: max_keys.max(1),
            state: RwLock::new(State {
                slots: HashMap::new(),
                cleared_at: Instant::now(),
            }),
        }
    }

    /// The value of `key` if it was read less than the time to live ago.
    pub fn fresh(&self, key: &K) -> Option<Arc<V>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .slots
            .get(key)
            .and_then(|s| s.loaded.as_ref())
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| Arc::clone(v))
    }

    /// Keeps a value whose read started at `read_at`, unless the key was
    /// invalidated since (the read may predate that write).
    pub fn keep(&self, key: K, read_at: Instant, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if read_at <= state.cleared_at {
            return value;
        }
        if state.slots.len() >= self.max_keys && !state.slots.contains_key(&key) {
            state.slots.clear();
            state.cleared_at = Instant::now();
            return value;
        }
        let slot = state.slots.entry(key).or_insert(Slot {
            loaded: None,
            invalidated_at: None,
        });
        let stale = slot.invalidated_at.is_some_and(|at| read_at <= at)
            || slot.loaded.as_ref().is_some_and(|(at, _)| read_at < *at);
        if !stale {
            slot.loaded = Some((read_at, Arc::clone(&value)));
        }
        value
    }

    /// The fresh value of `key`, or what `load` reads (then kept).
    pub async fn get_or_load<E, Fut>(&self, key: &K, load: Fut) -> Result<Arc<V>, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.fresh(key) {
            return Ok(v);
        }
        let read_at = Instant::now();
        let value = load.await?;
        Ok(self.keep(key.clone(), read_at, value))
    }

    /// Forgets `key` after a write in this process.
    pub fn invalidate(&self, key: &K) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(slot) = state.slots.get_mut(key) {
            slot.loaded = None;
            slot.invalidated_at = Some(now);
        } else if state.slots.len() >= self.max_keys {
            state.slots.clear();
            state.cleared_at = now;
        } else {
            state.slots.insert(
                key.clone(),
                Slot {
                    loaded: None,
                    invalidated_at: Some(now),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_once_until_invalidated() {
        let cache: ReadCache<u8, u32> = ReadCache::new(Duration::from_secs(60), 8);
        let v = cache
            .get_or_load(&1, async { Ok::<_, ()>(7) })
            .await
            .expect("infallible load");
        assert_eq!(*v, 7);
        let v = cache
            .get_or_load(&1, async { Ok::<_, ()>(8) })
            .await
            .expect("infallible load");
        assert_eq!(*v, 7, "served from the cache");
        cache.invalidate(&1);
        let v = cache
            .get_or_load(&1, async { Ok::<_, ()>(9) })
            .await
            .expect("infallible load");
        assert_eq!(*v, 9, "read again after the invalidation");
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let cache: ReadCache<u8, u32> = ReadCache::new(Duration::from_secs(60), 8);
        let read_at = Instant::now();
        cache.invalidate(&1); // a write lands while the read is in flight
        cache.keep(1, read_at, 1);
        assert!(cache.fresh(&1).is_none());
    }

    #[test]
    fn values_expire() {
        let cache: ReadCache<u8, u32> = ReadCache::new(Duration::ZERO, 8);
        cache.keep(1, Instant::now(), 1);
        assert!(cache.fresh(&1).is_none());
    }

    #[test]
    fn a_full_cache_is_emptied_and_keeps_no_older_read() {
        let cache: ReadCache<u8, u32> = ReadCache::new(Duration::from_secs(60), 2);
        let early = Instant::now();
        cache.keep(1, Instant::now(), 1);
        cache.keep(2, Instant::now(), 2);
        cache.keep(3, Instant::now(), 3); // full: emptied
        assert!(cache.fresh(&1).is_none() && cache.fresh(&3).is_none());
        cache.keep(4, early, 4);
        assert!(cache.fresh(&4).is_none(), "read before the clear");
    }
}
