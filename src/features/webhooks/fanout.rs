//! Fan-out: every event (except `webhook.*`) is offered to the tenant's
//! matching webhooks. Idempotent per (event, webhook): the delivery id is
//! derived from both, so an event re-driven after a crash finds its
//! deliveries and only re-enqueues what has not run.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::AttemptQueue;
use super::delivery::{enqueue, start};
use super::model::{Delivery, DeliveryStatus, Payload, Webhook, delivery_id};

use crate::clock::Clock;
use crate::domain::tenancy::TenantId;
use crate::platform::cache::ReadCache;
use crate::platform::events::{AfterCommit, Event, EventHandler, Staged};
use crate::platform::store::{Document, Query, Store, StoreError, Write, as_written};

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
    queue: AttemptQueue,
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
        queue: AttemptQueue,
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

/// What a delivery sends: `{type, timestamp, data}`.
#[derive(Serialize)]
struct Sends<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a Value,
}

impl Offer<'_> {
    /// The body every delivery of the event sends, as JSON text: encoded
    /// once, and sent byte for byte the same by every attempt.
    pub fn payload(&self) -> serde_json::Result<Payload> {
        serde_json::value::to_raw_value(&Sends {
            event_type: self.event_type,
            timestamp: self
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data: self.data,
        })
        .map(Payload)
    }
}

/// The delivery of an event for a webhook, as first written: pending, due
/// now (`skipped` and final when the webhook is disabled).
fn new_delivery(
    now: DateTime<Utc>,
    webhook: &Webhook,
    o: &Offer<'_>,
    payload: Payload,
) -> Delivery {
    let status = if webhook.enabled {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Skipped
    };
    Delivery {
        id: delivery_id(o.event_id, webhook.id),
        tenant_id: webhook.tenant_id,
        webhook_id: webhook.id,
        event_id: o.event_id,
        event_type: o.event_type.to_owned(),
        integration_id: o.integration_id,
        payload,
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
    }
}

/// A delivery with the ETag of the document its insert produced.
fn written(d: Delivery, doc: Option<Document>) -> Delivery {
    match doc {
        Some(doc) => as_written(d, &doc),
        None => d,
    }
}

/// Creates the delivery of an event for a webhook if absent and starts its
/// first attempt (none for a `skipped` one). An existing pending delivery
/// (the event is re-driven) has its current attempt enqueued again, which
/// the job's message id deduplicates.
pub async fn offer(
    store: &dyn Store,
    queue: &AttemptQueue,
    now: DateTime<Utc>,
    webhook: &Webhook,
    o: &Offer<'_>,
) -> anyhow::Result<Delivery> {
    let d = new_delivery(now, webhook, o, o.payload()?);
    write_and_start(store, queue, now, d).await
}

/// [`offer`] for a delivery already built.
async fn write_and_start(
    store: &dyn Store,
    queue: &AttemptQueue,
    now: DateTime<Utc>,
    d: Delivery,
) -> anyhow::Result<Delivery> {
    match Write::insert(&d)?.apply(store).await {
        Ok(doc) => {
            let saved = written(d, doc);
            start(queue, saved.clone(), now).await?;
            Ok(saved)
        }
        Err(StoreError::Conflict) => {
            let existing = store
                .get::<Delivery>(&d.tenant_id.key(), &d.id.to_string())
                .await?
                .ok_or_else(|| anyhow::anyhow!("delivery {} vanished", d.id))?;
            if existing.status == DeliveryStatus::Pending {
                enqueue(queue.jobs.as_ref(), &existing, now).await?;
            }
            Ok(existing)
        }
        Err(e) => Err(e.into()),
    }
}

/// The integration an event is about, from its data.
pub fn integration_of(data: &Value) -> Option<Uuid> {
    data.get("integrationId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// A tenant's webhooks, read through `cache` (at most [`CACHE_TTL`] old):
/// the fan-out picks the webhooks that want an event from these, and a first
/// attempt handed over with its delivery finds its webhook here.
pub async fn tenant_webhooks(
    store: &dyn Store,
    cache: &ReadCache<TenantId, Vec<Webhook>>,
    tenant: TenantId,
) -> Result<Arc<Vec<Webhook>>, StoreError> {
    // An async block: the query is built only when the cache misses.
    let load = async {
        store
            .all::<Webhook>(Query::partition(tenant.key()).limit(1000), 20)
            .await
    };
    cache.get_or_load(&tenant, load).await
}

impl WebhookFanout {
    /// The tenant's webhooks (read through the cache); those that want an
    /// event are picked by [`Webhook::wants`].
    async fn hooks(&self, tenant: TenantId) -> anyhow::Result<Arc<Vec<Webhook>>> {
        Ok(tenant_webhooks(self.store.as_ref(), &self.webhooks, tenant).await?)
    }

    /// The deliveries of `event`, one per webhook that wants it, as first
    /// written; the payload is encoded only when some webhook does.
    async fn deliveries_for(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Delivery>> {
        let o = offer_of(event);
        let hooks = self.hooks(event.tenant_id).await?;
        let mut wanting = hooks
            .iter()
            .filter(|w| w.wants(o.event_type, o.integration_id))
            .peekable();
        if wanting.peek().is_none() {
            return Ok(Vec::new());
        }
        let payload = o.payload()?;
        Ok(wanting
            .map(|w| new_delivery(now, w, &o, payload.clone()))
            .collect())
    }
}

/// What one delivery carries about `event`.
fn offer_of(event: &Event) -> Offer<'_> {
    Offer {
        event_id: event.id,
        event_type: &event.event_type,
        timestamp: event.timestamp,
        data: &event.data,
        integration_id: integration_of(&event.data),
    }
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
        let now = self.clock.now();
        let mut first_error = None;
        for d in self.deliveries_for(event, now).await? {
            let webhook_id = d.webhook_id;
            let written = write_and_start(self.store.as_ref(), &self.queue, now, d).await;
            if let Err(e) = written {
                tracing::warn!(webhook.id = %webhook_id, event.id = %event.id, error = %e, "offering an event to a webhook failed");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The deliveries commit with the event's change; their first attempts
    /// start once committed (a new event's deliveries cannot exist yet).
    async fn stage(&self, event: &Event) -> anyhow::Result<Option<Staged>> {
        let now = self.clock.now();
        let deliveries = self.deliveries_for(event, now).await?;
        let writes = deliveries
            .iter()
            .map(Write::insert)
            .collect::<Result<Vec<_>, _>>()?;
        let queue = self.queue.clone();
        let then: AfterCommit = Box::new(move |docs| {
            Box::pin(async move {
                for (d, doc) in deliveries.into_iter().zip(docs) {
                    let id = d.id;
                    if let Err(e) = start(&queue, written(d, doc), now).await {
                        // Pending without a job: the re-drive sends it again.
                        tracing::warn!(delivery.id = %id, error = %e, "starting a delivery failed");
                    }
                }
            })
        });
        Ok(Some(Staged { writes, then }))
    }
}
