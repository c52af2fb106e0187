//! The application: configuration and every dependency behind its port.

pub mod jobs;
pub mod periodic;
pub mod rotate_key;
pub mod wiring;

use std::ops::Deref;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::features::catalog::Catalog;
use crate::features::connections::Connections;
use crate::features::integrations::Integrations;
use crate::features::sync::SyncEngine;
use crate::features::webhooks::Webhooks;
use crate::features::webhooks::model::Delivery;
use crate::platform::auth::TokenKeys;
use crate::platform::events::Events;
use crate::platform::queue::JobQueue;
use crate::platform::queue::embedded::EmbeddedQueue;
use crate::platform::secrets::SecretStore;
use crate::platform::shards::ShardSink;
use crate::platform::shards::local::LocalShards;
use crate::platform::store::Store;

pub use self::wiring::{build, build_with};

/// What a job handed over to `serve`'s workers carries: the delivery as
/// the fan-out wrote it, so that its first attempt reads nothing back.
pub type Carried = Delivery;

/// The application: configuration, the ports, and one context per feature.
/// Drivers hold it; features get only their own context.
pub struct App {
    /// Checked configuration.
    pub config: Config,
    /// Document store (readiness, the purge, tests).
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Token verification (the HTTP edge).
    pub tokens: TokenKeys,
    /// Events: the bus, local handlers and the outbox (and its relay).
    pub events: Arc<Events>,
    /// Secret store (readiness).
    pub secrets: Arc<dyn SecretStore>,
    /// Job queue (readiness; features send through their contexts).
    pub queue: Arc<dyn JobQueue>,
    /// The embedded queue, when it is the job queue: `serve`'s workers take
    /// its jobs, and first attempts are handed to them (see [`Carried`]).
    pub local_queue: Option<Arc<EmbeddedQueue<Carried>>>,
    /// The catalog feature.
    pub catalog: Arc<Catalog>,
    /// The integrations feature.
    pub integrations: Arc<Integrations>,
    /// The webhooks feature.
    pub webhooks: Arc<Webhooks>,
    /// The connections feature (credentials, OAuth, token refresh).
    pub connections: Arc<Connections>,
    /// Where synced records go (readiness).
    pub shards: Arc<dyn ShardSink>,
    /// The local shard store when it is the sink (`SHARDS=embedded`): what
    /// `/api/v1/shards` browses; `None` with Castiel's shard-manager.
    pub local_shards: Option<Arc<LocalShards>>,
    /// The sync feature (tasks, runs, adapters).
    pub sync: Arc<SyncEngine>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle to the [`App`] (axum state).
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl From<App> for AppState {
    fn from(app: App) -> Self {
        Self(Arc::new(app))
    }
}
