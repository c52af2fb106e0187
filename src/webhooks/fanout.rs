//! Fan-out: every event (except `webhook.*`) is offered to the tenant's
//! matching webhooks. Idempotent per (event, webhook): the delivery id is
//! derived from both, so an event re-driven after a crash finds its
//! deliveries and only re-enqueues what has not run.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::delivery::{Handed, enqueue_handing};
use super::model::{Delivery, DeliveryStatus, Webhook, delivery_id};

use crate::cache::ReadCache;
use crate::clock::Clock;
use crate::domain::tenancy::TenantId;
use crate::events::{Event, EventHandler};
use crate::queue::JobQueue;
use crate::store::{Query, Store, StoreError};

/// How long the fan-out uses a tenant's webhooks as read: a webhook created
/// or changed on another instance gets events within this time (on this
/// instance at once). A stale entry cannot send anything wrong: each attempt
/// reads its webhook again and a disabled or deleted one is not called.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// Tenants whose webhooks are cached at once.
pub const CACHED_TENANTS: usize = 10_000;

/// The event handler that turns events into deliveries.
pub struct WebhookFanout {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    webhooks: Arc<ReadCache<TenantId, Vec<Webhook>>>,
}

impl std::fmt::Debug for WebhookFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookFanout").finish_non_exhaustive()
    }
}

impl WebhookFanout {
    /// A fan-out over the app's store and queue, reading webhooks through
    /// `webhooks` (which the webhook service invalidates on every write).
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        clock: Arc<dyn Clock>,
        webhooks: Arc<ReadCache<TenantId, Vec<Webhook>>>,
    ) -> Self {
        Self {
            store,
            queue,
            clock,
            webhooks,
        }
    }
}

/// What one delivery carries about its event.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    /// Event id.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: &'a str,
    /// Event time.
    pub timestamp: DateTime<Utc>,
    /// Event data.
    pub data: &'a Value,
    /// The integration it is about.
    pub integration_id: Option<Uuid>,
}

/// Creates the delivery of an event for a webhook if absent and enqueues its
/// first attempt (`skipped`, without a job, when the webhook is disabled).
pub async fn offer(
    store: &dyn Store,
    queue: &dyn JobQueue,
    now: DateTime<Utc>,
    webhook: &Webhook,
    o: &Offer<'_>,
) -> anyhow::Result<Delivery> {
    let status = if webhook.enabled {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Skipped
    };
    let d = Delivery {
        id: delivery_id(o.event_id, webhook.id),
        tenant_id: webhook.tenant_id,
        webhook_id: webhook.id,
        event_id: o.event_id,
        event_type: o.event_type.to_owned(),
        integration_id: o.integration_id,
        payload: json!({
            "type": o.event_type,
            "timestamp": o.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": o.data,
        }),
        status,
        attempt_count: 0,
        round_start: 0,
        next_attempt_at: webhook.enabled.then_some(now),
        attempts: Vec::new(),
        created_at: now,
        updated_at: now,
        completed_at: (!webhook.enabled).then_some(now),
        sort_key: super::model::sort_key(now),
        etag: String::new(),
    };
    // An enabled webhook's delivery and its first job are written side by
    // side rather than one after the other (one commit to wait for instead
    // of two). Either alone is harmless: a job that finds no delivery is
    // retried a few times (the delivery's write may still be landing) and
    // then dropped, a pending delivery without a job is re-enqueued by the
    // sweep, and the job of a delivery that already existed is deduplicated
    // by its message id or, if the delivery has moved on, stale.
    let inserted = if webhook.enabled {
        let handed = Arc::new(Handed::default());
        let insert = async {
            let inserted = store.insert(&d).await;
            if let Ok(saved) = &inserted {
                handed.written(saved.clone());
            }
            inserted
        };
        // Biased: the delivery's write is queued first, so it commits no
        // later than the job; polled first, it is recorded in `handed`
        // before the job is handed over (a job that finds nothing there
        // reads the delivery instead).
        let (inserted, enqueued) = tokio::join!(
            biased;
            insert,
            enqueue_handing(queue, &d, now, Arc::clone(&handed))
        );
        enqueued?;
        inserted
    } else {
        store.insert(&d).await
    };
    match inserted {
        Ok(saved) => Ok(saved),
        Err(StoreError::Conflict) => store
            .get::<Delivery>(&d.tenant_id.key(), &d.id.to_string())
            .await?
            .ok_or_else(|| anyhow::anyhow!("delivery {} vanished", d.id)),
        Err(e) => Err(e.into()),
    }
}

/// The integration an event is about, from its data.
pub fn integration_of(data: &Value) -> Option<Uuid> {
    data.get("integrationId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

#[async_trait]
impl EventHandler for WebhookFanout {
    fn wants(&self, event_type: &str) -> bool {
        !event_type.starts_with("webhook.")
    }

    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        if !self.wants(&event.event_type) {
            return Ok(());
        }
        let integration_id = integration_of(&event.data);
        let hooks = self
            .webhooks
            .get_or_load(
                &event.tenant_id,
                self.store
                    .all::<Webhook>(Query::partition(event.tenant_id.key()).limit(1000), 20),
            )
            .await?;
        let o = Offer {
            event_id: event.id,
            event_type: &event.event_type,
            timestamp: event.timestamp,
            data: &event.data,
            integration_id,
        };
        let now = self.clock.now();
        let mut first_error = None;
        for w in hooks
            .iter()
            .filter(|w| w.wants(&event.event_type, integration_id))
        {
            if let Err(e) = offer(self.store.as_ref(), self.queue.as_ref(), now, w, &o).await {
                tracing::warn!(webhook.id = %w.id, event.id = %event.id, error = %e, "offering an event to a webhook failed");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
