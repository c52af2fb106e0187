//! Tenants' integrations (SPEC §5.3): one configured provider per
//! integration, with its settings and field mappings.

pub mod credentials;
pub mod custom_api;
pub mod mapping;
pub mod model;
pub mod service;
pub mod sync_state;

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::tenancy::Ctx;
use crate::features::catalog::Catalog;
use crate::features::webhooks::Webhooks;
use crate::platform::events::Events;
use crate::platform::outbound::OutboundClient;
use crate::platform::store::Store;

/// The integrations feature's context: the ports it uses and the features
/// it relies on (the catalog for providers; webhooks, whose subscriptions
/// to an integration go with it).
pub struct Integrations {
    /// Document store (integrations).
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Events (`integration.*`; the outbox).
    pub events: Arc<Events>,
    /// The SSRF guard that checks instance URLs before they are stored.
    pub outbound: Arc<OutboundClient>,
    /// The catalog the providers come from.
    pub catalog: Arc<Catalog>,
    /// Webhooks, for deleting an integration's subscriptions with it.
    pub webhooks: Arc<Webhooks>,
    /// Features whose documents belong to an integration and go with it
    /// (connections, with their secrets). They import this feature, so
    /// they are told rather than called.
    pub dependents: RwLock<Vec<Arc<dyn Dependent>>>,
}

/// A feature that keeps documents of an integration (its connections, its
/// sync tasks) and deletes them when the integration is deleted.
#[async_trait]
pub trait Dependent: Send + Sync + 'static {
    /// The integration is gone: delete what belongs to it. Errors are
    /// logged by the caller (the integration itself is already deleted).
    async fn integration_deleted(
        &self,
        ctx: &Ctx,
        integration_id: Uuid,
    ) -> crate::error::Result<()>;
}

impl Integrations {
    /// Adds a feature to tell when an integration is deleted.
    pub fn add_dependent(&self, dependent: Arc<dyn Dependent>) {
        self.dependents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dependent);
    }

    /// The features to tell when an integration is deleted.
    pub fn dependents(&self) -> Vec<Arc<dyn Dependent>> {
        self.dependents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrations").finish_non_exhaustive()
    }
}
