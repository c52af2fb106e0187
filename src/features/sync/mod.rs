//! Sync (SPEC §5.6, §9): tasks, their runs (executions), the limits that
//! hold across processes, the adapters that reach external systems, and the
//! shards the records become.

pub mod adapter;
pub mod connection_test;
pub mod executions;
pub mod model;
pub mod run;
pub mod schedule;
pub mod tasks;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::SyncLimits;
use crate::features::catalog::Catalog;
use crate::features::integrations::Integrations;
use crate::platform::events::Events;
use crate::platform::queue::JobQueue;
use crate::platform::shards::ShardSink;
use crate::platform::store::Store;

use adapter::AdapterContext;

/// The sync feature's context.
pub struct SyncEngine {
    /// Document store (tasks, executions, links, the tenant ledger).
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Events (`integration.sync.*`, `sync.task.completed`).
    pub events: Arc<Events>,
    /// Where runs are queued.
    pub queue: Arc<dyn JobQueue>,
    /// Where synced records go.
    pub shards: Arc<dyn ShardSink>,
    /// What adapters need: connections, the outbound client, provider settings.
    pub adapters: AdapterContext,
    /// The integrations being synced.
    pub integrations: Arc<Integrations>,
    /// Providers (default mappings).
    pub catalog: Arc<Catalog>,
    /// Limits (SPEC §9.2).
    pub limits: SyncLimits,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
