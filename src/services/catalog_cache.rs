//! The catalog as read by tenants' requests, cached in memory.
//!
//! Every integration create looks up its provider, and the catalog is a few
//! dozen entries that only super-admins change: reading it per request cost a
//! cross-partition query each time. The whole catalog is kept for [`TTL`];
//! this process's admin writes drop it at once, another instance's admin
//! writes are seen within [`TTL`]. Admin routes themselves always read the
//! store.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::domain::catalog::CatalogEntry;

/// How long a loaded catalog is served before it is read again.
pub const TTL: Duration = Duration::from_secs(30);

/// The cached catalog of one process.
#[derive(Debug, Default)]
pub struct CatalogCache {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the cached entries were read, and the entries.
    loaded: Option<(Instant, Arc<Vec<CatalogEntry>>)>,
    /// The last invalidation: a read that started before it is not kept.
    invalidated_at: Option<Instant>,
}

impl CatalogCache {
    /// The cached entries, if read less than [`TTL`] ago.
    pub fn fresh(&self) -> Option<Arc<Vec<CatalogEntry>>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .loaded
            .as_ref()
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, entries)| Arc::clone(entries))
    }

    /// Keeps entries whose read started at `read_at`, unless an
    /// invalidation came since (the read may predate the admin's write).
    pub fn keep(&self, read_at: Instant, entries: Vec<CatalogEntry>) -> Arc<Vec<CatalogEntry>> {
        let entries = Arc::new(entries);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let stale = state.invalidated_at.is_some_and(|at| read_at <= at)
            || state.loaded.as_ref().is_some_and(|(at, _)| read_at < *at);
        if !stale {
            state.loaded = Some((read_at, Arc::clone(&entries)));
        }
        entries
    }

    /// Forgets the catalog (after an admin write in this process).
    pub fn invalidate(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.loaded = None;
        state.invalidated_at = Some(Instant::now());
    }
}
