//! Outbound webhooks (SPEC §5.5, §8): subscriptions, fan-out of events to
//! them, and signed, retried, logged deliveries on the job queue.

pub mod deliveries;
pub mod delivery;
pub mod fanout;
pub mod limit;
pub mod model;
pub mod schedule;
pub mod send;
pub mod service;
pub mod signing;

use std::sync::Arc;

use self::model::{Delivery, Webhook};
use self::signing::SigningKey;
use crate::clock::Clock;
use crate::config::WebhookSettings;
use crate::domain::tenancy::TenantId;
use crate::platform::cache::ReadCache;
use crate::platform::events::Events;
use crate::platform::outbound::OutboundClient;
use crate::platform::queue::{HandOver, JobQueue};
use crate::platform::secrets::{SecretOwner, SecretStore};
use crate::platform::store::Store;

/// Where a delivery's attempts go: the job queue, and, where this
/// process's workers take them (`serve` on the embedded queue), straight
/// to them with the delivery as written ([`HandOver`]).
#[derive(Clone)]
pub struct AttemptQueue {
    /// The job queue.
    pub jobs: Arc<dyn JobQueue>,
    /// This process's workers, when they take first attempts handed over.
    pub local: Option<Arc<dyn HandOver<Delivery>>>,
}

/// The webhooks feature's context: exactly the ports it uses, and its
/// caches. Built once by the app's wiring; the HTTP handlers, the fan-out,
/// the delivery jobs and the re-drive all work through it.
pub struct Webhooks {
    /// Document store (webhooks, deliveries).
    pub store: Arc<dyn Store>,
    /// Where attempts are queued.
    pub queue: AttemptQueue,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Events (`webhook.delivered`, `webhook.failed`; the outbox).
    pub events: Arc<Events>,
    /// The SSRF-guarded client every attempt goes through.
    pub outbound: Arc<OutboundClient>,
    /// Where signing secrets live.
    pub secrets: Arc<dyn SecretStore>,
    /// `WEBHOOK_*` settings.
    pub settings: WebhookSettings,
    /// Each tenant's webhooks as the fan-out reads them (every webhook
    /// write of this process invalidates its tenant).
    pub hooks: Arc<ReadCache<TenantId, Vec<Webhook>>>,
    /// Webhook secrets ready to sign with, by tenant, owner and reference
    /// (see [`send::SIGNING_KEY_TTL`]).
    pub signing_keys: ReadCache<(TenantId, String, String), SigningKey>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The context over these ports, with empty caches.
    pub fn new(
        store: Arc<dyn Store>,
        queue: AttemptQueue,
        clock: Arc<dyn Clock>,
        events: Arc<Events>,
        outbound: Arc<OutboundClient>,
        secrets: Arc<dyn SecretStore>,
        settings: WebhookSettings,
    ) -> Self {
        Self {
            store,
            queue,
            clock,
            events,
            outbound,
            secrets,
            settings,
            hooks: Arc::new(ReadCache::new(fanout::CACHE_TTL, fanout::CACHED_TENANTS)),
            signing_keys: ReadCache::new(send::SIGNING_KEY_TTL, send::SIGNING_KEYS_CACHED),
        }
    }

    /// The event handler that turns events into deliveries (subscribed to
    /// the events by the wiring). It shares this context's webhook cache
    /// but holds no reference to the events, so nothing is kept alive in a
    /// circle.
    pub fn fanout(&self) -> fanout::WebhookFanout {
        fanout::WebhookFanout::new(
            Arc::clone(&self.store),
            self.queue.clone(),
            Arc::clone(&self.clock),
            Arc::clone(&self.hooks),
        )
    }
}

/// Raised after a delivery succeeded.
pub const EVENT_DELIVERED: &str = "webhook.delivered";
/// Raised after a delivery failed for good (exhausted, 410, webhook gone).
pub const EVENT_FAILED: &str = "webhook.failed";
/// The event `POST /webhooks/{id}/test` sends.
pub const EVENT_TEST: &str = "webhook.test";

/// The secret-store owner of one webhook secret version.
pub fn secret_owner(tenant_id: TenantId, owner_id: &str) -> SecretOwner {
    SecretOwner {
        tenant_id,
        kind: "webhook",
        id: owner_id.to_owned(),
    }
}
