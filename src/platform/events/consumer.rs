//! Consuming Castiel's events (`shard.updated`) from RabbitMQ in `serve`.
//!
//! The queue (`integration_sync_service`, durable) is bound to the exchange
//! for each routing key of [`ConsumerSettings::bindings`]. Deliveries are
//! handled one at a time with a bounded prefetch and acked manually only
//! after the handler succeeded. Nothing is requeued forever and nothing is
//! silently acked (the original did both):
//!
//! - a body that is not a valid Castiel envelope, or whose type does not match
//!   its routing key, goes straight to the dead-letter queue
//!   (`<queue>.dlq`, durable);
//! - a handler that rejects the event ([`HandlerError::Rejected`]) sends it
//!   to the dead-letter queue at once; one that fails
//!   ([`HandlerError::Failed`]) is retried [`ConsumerSettings::attempts`]
//!   times with a growing pause, then the event goes to the dead-letter
//!   queue.
//!
//! A dead-lettered message keeps its body and properties and gains the
//! headers `x-dlq-reason`, `x-original-exchange` and `x-original-routing-key`.
//! It is published with a confirm and only then is the original acked; if the
//! dead-letter publish fails the original is requeued (at-least-once).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Confirmation};
use secrecy::SecretString;
use serde_json::json;

use super::rabbitmq::{connect, declare_exchange};
use super::{BusError, Event};
use crate::platform::store::{Container, Store};

/// The routing key this service consumes.
pub const SHARD_UPDATED: &str = "shard.updated";
/// The header naming why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-dlq-reason";

/// Where and how to consume.
#[derive(Clone)]
pub struct ConsumerSettings {
    /// Broker URL (never logged).
    pub url: SecretString,
    /// The topic exchange (`coder_events`).
    pub exchange: String,
    /// The durable queue (`integration_sync_service`).
    pub queue: String,
    /// The durable dead-letter queue (`integration_sync_service.dlq`).
    pub dead_letter_queue: String,
    /// Routing keys bound to the queue.
    pub bindings: Vec<String>,
    /// Unacked deliveries in flight.
    pub prefetch: u16,
    /// Handler calls per message before it is dead-lettered.
    pub attempts: u32,
    /// Pause after the first failure (doubles each time).
    pub retry_delay: Duration,
}

impl std::fmt::Debug for ConsumerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSettings")
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .field("bindings", &self.bindings)
            .finish_non_exhaustive()
    }
}

impl ConsumerSettings {
    /// `queue` bound to `shard.updated`, dead letters in `<queue>.dlq`,
    /// prefetch 20, 3 attempts starting 200 ms apart.
    pub fn new(url: SecretString, exchange: impl Into<String>, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        Self {
            url,
            exchange: exchange.into(),
            dead_letter_queue: format!("{queue}.dlq"),
            queue,
            bindings: vec![SHARD_UPDATED.into()],
            prefetch: 20,
            attempts: 3,
            retry_delay: Duration::from_millis(200),
        }
    }
}

/// Why a handler did not accept an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be handled (bad data): dead-letter it now.
    #[error("rejected: {0}")]
    Rejected(String),
    /// It may work later (a dependency is down): retry, then dead-letter.
    #[error("failed: {0}")]
    Failed(String),
}

/// What the consumer calls for each valid event (the sync issue implements
/// the real `shard.updated` handling).
#[async_trait]
pub trait InboundEventHandler: Send + Sync + 'static {
    /// Handles one event; `Ok` acks it. Must be idempotent per event id
    /// (delivery is at least once).
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

/// The default handler until sync exists: validates `shard.updated` and
/// records it in the outbox container (`kind: "inbound"`, kept 7 days), so
/// no event is silently dropped.
pub struct RecordingHandler {
    store: Arc<dyn Store>,
}

impl RecordingHandler {
    /// Records into `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

/// The shard an event is about (`data.shardId`, else `data.id`).
pub fn shard_id(event: &Event) -> Option<&str> {
    ["shardId", "id"]
        .iter()
        .find_map(|k| event.data.get(*k).and_then(|v| v.as_str()))
        .filter(|s| !s.trim().is_empty())
}

#[async_trait]
impl InboundEventHandler for RecordingHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let shard = if event.event_type == SHARD_UPDATED {
            Some(shard_id(event).ok_or_else(|| {
                HandlerError::Rejected("shard.updated without data.shardId or data.id".into())
            })?)
        } else {
            None
        };
        let record = json!({
            "id": format!("inbound-{}", event.id),
            "tenantId": event.tenant_id.key(),
            "kind": "inbound",
            "eventId": event.id,
            "eventType": event.event_type,
            "shardId": shard,
            "correlationId": event.metadata.correlation_id,
            "receivedAt": chrono::Utc::now(),
            "ttl": 7 * 24 * 3600,
        });
        self.store
            .upsert(Container::Outbox, record)
            .await
            .map_err(|e| HandlerError::Failed(e.to_string()))?;
        tracing::info!(event.id = %event.id, event.type = %event.event_type, tenant.id = %event.tenant_id, shard.id = shard.unwrap_or(""), "recorded inbound event");
        Ok(())
    }
}

/// A running consumer; [`ConsumerHandle::stop`] ends it cleanly.
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ConsumerHandle {
    /// Stops consuming (unacked deliveries go back to the queue) and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts consuming in the background, reconnecting until stopped.
pub fn spawn(settings: ConsumerSettings, handler: Arc<dyn InboundEventHandler>) -> ConsumerHandle {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            match consume(&settings, handler.as_ref(), &mut stopped).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(queue = %settings.queue, error = %e, "event consumer interrupted; reconnecting");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stopped.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    ConsumerHandle { stop, task }
}

/// Declares the queue, its dead-letter queue and the bindings.
pub async fn declare_topology(channel: &Channel, s: &ConsumerSettings) -> Result<(), BusError> {
    let err = |what: &str, e: lapin::Error| BusError(format!("{what}: {e}"));
    declare_exchange(channel, &s.exchange).await?;
    for q in [&s.queue, &s.dead_letter_queue] {
        channel
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| err("declaring a queue", e))?;
    }
    for key in &s.bindings {
        channel
            .queue_bind(
                s.queue.as_str().into(),
                s.exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| err("binding the queue", e))?;
    }
    Ok(())
}

/// Consumes until stopped (`Ok`) or the connection fails (`Err`).
async fn consume(
    s: &ConsumerSettings,
    handler: &dyn InboundEventHandler,
    stopped: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), BusError> {
    let err = |what: &str, e: lapin::Error| BusError(format!("{what}: {e}"));
    let conn = connect(&s.url, "castiel-integrations-consumer").await?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| err("opening a channel", e))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| err("confirm mode", e))?;
    declare_topology(&channel, s).await?;
    channel
        .basic_qos(s.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| err("setting the prefetch", e))?;
    let mut deliveries = channel
        .basic_consume(
            s.queue.as_str().into(),
            "castiel-integrations".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| err("consuming", e))?;
    tracing::info!(queue = %s.queue, "consuming events");
    let result = loop {
        let next = tokio::select! {
            d = deliveries.next() => d,
            _ = stopped.changed() => break Ok(()),
        };
        match next {
            Some(Ok(delivery)) => {
                if let Err(e) = process(&channel, s, handler, delivery).await {
                    break Err(err("acknowledging", e));
                }
            }
            Some(Err(e)) => match channel.wait_for_recovery(e).await {
                Ok(()) => continue,
                Err(e) => break Err(err("consumer", e)),
            },
            None => break Err(BusError("the consumer was cancelled".into())),
        }
    };
    let _ = conn.close(200, "bye".into()).await;
    result
}

/// Why a delivery cannot be handled, if it cannot.
pub fn check_envelope(delivery_routing_key: &str, body: &[u8]) -> Result<Event, String> {
    let event: Event =
        serde_json::from_slice(body).map_err(|e| format!("invalid envelope: {e}"))?;
    if event.version != "1.0" {
        return Err(format!("unsupported envelope version {:?}", event.version));
    }
    if event.event_type.is_empty() || event.event_type != delivery_routing_key {
        return Err(format!(
            "event type {:?} does not match routing key {delivery_routing_key:?}",
            event.event_type
        ));
    }
    Ok(event)
}

async fn process(
    channel: &Channel,
    s: &ConsumerSettings,
    handler: &dyn InboundEventHandler,
    delivery: Delivery,
) -> Result<(), lapin::Error> {
    let event = match check_envelope(delivery.routing_key.as_str(), &delivery.data) {
        Ok(e) => e,
        Err(reason) => return dead_letter(channel, s, &delivery, &reason).await,
    };
    let mut delay = s.retry_delay;
    let attempts = s.attempts.max(1);
    for attempt in 1..=attempts {
        match handler.handle(&event).await {
            Ok(()) => {
                delivery.ack(BasicAckOptions::default()).await?;
                return Ok(());
            }
            Err(HandlerError::Rejected(why)) => {
                return dead_letter(channel, s, &delivery, &format!("rejected: {why}")).await;
            }
            Err(HandlerError::Failed(why)) if attempt == attempts => {
                let reason = format!("handler failed {attempts} times: {why}");
                return dead_letter(channel, s, &delivery, &reason).await;
            }
            Err(HandlerError::Failed(why)) => {
                tracing::warn!(event.id = %event.id, attempt, error = %why, "event handler failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Ok(())
}

async fn dead_letter(
    channel: &Channel,
    s: &ConsumerSettings,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), lapin::Error> {
    tracing::warn!(queue = %s.queue, routing_key = %delivery.routing_key, reason, "dead-lettering a message");
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    let text = |v: &str| AMQPValue::LongString(LongString::from(v.to_owned()));
    headers.insert(REASON_HEADER.into(), text(reason));
    headers.insert(
        "x-original-exchange".into(),
        text(delivery.exchange.as_str()),
    );
    headers.insert(
        "x-original-routing-key".into(),
        text(delivery.routing_key.as_str()),
    );
    let props = delivery.properties.clone().with_headers(headers);
    let confirmed = async {
        channel
            .basic_publish(
                "".into(),
                s.dead_letter_queue.as_str().into(),
                BasicPublishOptions::default(),
                &delivery.data,
                props,
            )
            .await?
            .await
    }
    .await;
    match confirmed {
        Ok(Confirmation::Ack(_)) => {
            delivery.ack(BasicAckOptions::default()).await?;
        }
        other => {
            tracing::error!(outcome = ?other.map(|c| c.is_ack()), "dead-letter publish failed; requeueing");
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}
