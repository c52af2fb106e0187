//! The application: configuration and every dependency behind its port.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::TokenKeys;
use crate::cache::ReadCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::catalog::CatalogEntry;
use crate::domain::tenancy::TenantId;
use crate::events::Events;
use crate::outbound::OutboundClient;
use crate::queue::JobQueue;
use crate::secrets::SecretStore;
use crate::store::Store;
use crate::webhooks::model::{SigningKey, Webhook};

/// Everything a request, timer or job needs.
pub struct App {
    /// Checked configuration.
    pub config: Config,
    /// Document store.
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Token verification.
    pub tokens: TokenKeys,
    /// Event facade.
    pub events: Events,
    /// The SSRF-guarded client for every tenant-directed outbound call.
    pub outbound: Arc<OutboundClient>,
    /// Secret store: credentials and webhook secrets live only here.
    pub secrets: Arc<dyn SecretStore>,
    /// Job queue (webhook deliveries, sync runs).
    pub queue: Arc<dyn JobQueue>,
    /// The whole catalog as tenants' requests read it (see [`crate::cache`]).
    pub catalog: ReadCache<(), Vec<CatalogEntry>>,
    /// Each tenant's webhooks as the event fan-out reads them.
    pub webhooks: Arc<ReadCache<TenantId, Vec<Webhook>>>,
    /// Webhook secrets ready to sign with, by tenant, owner and reference
    /// (see [`crate::webhooks::send::SIGNING_KEY_TTL`]).
    pub signing_keys: ReadCache<(TenantId, String, String), SigningKey>,
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
