//! Tenants' integrations (SPEC §5.3): one configured provider per
//! integration, with its settings and field mappings.

pub mod custom_api;
pub mod model;
pub mod service;

use std::sync::Arc;

use crate::clock::Clock;
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
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrations").finish_non_exhaustive()
    }
}
