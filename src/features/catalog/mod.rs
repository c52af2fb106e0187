//! The provider catalog (SPEC §5.1, §5.2): built-in and admin-defined
//! providers, read by tenants through a cache.

pub mod defaults;
pub mod model;
pub mod service;

use std::sync::Arc;

use self::model::CatalogEntry;
use crate::clock::Clock;
use crate::platform::cache::ReadCache;
use crate::platform::outbound::OutboundPolicy;
use crate::platform::store::Store;

/// The catalog feature's context: its store, clock and the whole catalog
/// as tenants' requests read it.
pub struct Catalog {
    /// Document store (catalog entries).
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// The URL policy a provider's token URL must pass when stored.
    pub urls: OutboundPolicy,
    /// Every entry, read through this cache (invalidated by every write of
    /// this process; at most [`service::CACHE_TTL`] old otherwise).
    pub entries: ReadCache<(), Vec<CatalogEntry>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// The context over these ports, with an empty cache.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, urls: OutboundPolicy) -> Self {
        Self {
            store,
            clock,
            urls,
            entries: ReadCache::new(service::CACHE_TTL, 1),
        }
    }
}
