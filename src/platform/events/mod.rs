//! Domain events (SPEC §7): Castiel's envelope and the event-bus port.
//!
//! Services raise events through [`Events::emit`]; the configured
//! [`EventBus`] carries them (in-process by default, RabbitMQ in
//! production), and local [`EventHandler`]s (webhook fan-out, sync) get every
//! event either way.

pub mod consumer;
pub mod in_process;
pub mod outbox;
pub mod rabbitmq;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::tenancy::{Ctx, TenantId};

/// The configured bus: RabbitMQ when `RABBITMQ_URL` is set, else in-process.
///
/// Must be called inside the tokio runtime (the RabbitMQ bus connects in the
/// background and never blocks start-up on the broker).
pub fn bus_for(config: &crate::config::Config) -> Arc<dyn EventBus> {
    match &config.rabbitmq_url {
        Some(url) => Arc::new(rabbitmq::RabbitBus::start(rabbitmq::RabbitSettings::new(
            url.clone(),
            config.rabbitmq_exchange.clone(),
        ))),
        None => Arc::new(in_process::InProcessBus),
    }
}

/// The service name in every envelope's `source`.
pub const SOURCE_SERVICE: &str = "integration-manager";

/// Who published an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Always [`SOURCE_SERVICE`].
    pub service: String,
    /// This process (host name and pid).
    pub instance: String,
}

/// Tracing metadata of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The request or job flow this event belongs to.
    pub correlation_id: String,
    /// The event that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The user who caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Castiel's event envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique id, time-ordered (UUIDv7; also the AMQP `messageId`).
    pub id: Uuid,
    /// Event type, also the routing key (`integration.created`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Envelope version, `1.0`.
    pub version: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The tenant it concerns.
    pub tenant_id: TenantId,
    /// Publisher.
    pub source: Source,
    /// What it is about (never a secret).
    pub data: Value,
    /// Correlation.
    pub metadata: Metadata,
}

/// The event types this service publishes.
pub mod types {
    /// An integration was created.
    pub const INTEGRATION_CREATED: &str = "integration.created";
    /// An integration was changed.
    pub const INTEGRATION_UPDATED: &str = "integration.updated";
    /// An integration was deleted.
    pub const INTEGRATION_DELETED: &str = "integration.deleted";
    /// A connection's access token was refreshed.
    pub const TOKEN_REFRESHED: &str = "integration.token.refreshed";
    /// A connection's token could not be refreshed (it is now expired).
    pub const TOKEN_REFRESH_FAILED: &str = "integration.token.refresh_failed";
    /// A sync run started.
    pub const SYNC_STARTED: &str = "integration.sync.started";
    /// A sync run completed (`completed` or `partial`).
    pub const SYNC_COMPLETED: &str = "integration.sync.completed";
    /// A sync run failed or was cancelled.
    pub const SYNC_FAILED: &str = "integration.sync.failed";
    /// A sync task's run ended, however it ended.
    pub const TASK_COMPLETED: &str = "sync.task.completed";

    /// A shard of the local shard store was edited (`PUT /api/v1/shards/{id}`),
    /// raised as Castiel's shard-manager raises it; the sync consumes it.
    pub const SHARD_UPDATED: &str = "shard.updated";
    /// Every event type this service publishes (SPEC §7), including those
    /// of features still to come: a subscription may name any of them.
    pub const PUBLISHED: &[&str] = &[
        INTEGRATION_CREATED,
        INTEGRATION_UPDATED,
        INTEGRATION_DELETED,
        "webhook.delivered",
        "webhook.failed",
        TASK_COMPLETED,
        SYNC_STARTED,
        SYNC_COMPLETED,
        SYNC_FAILED,
        "integration.conflict.detected",
        TOKEN_REFRESHED,
        TOKEN_REFRESH_FAILED,
    ];
}

/// A transport failure of the bus.
#[derive(Debug, thiserror::Error)]
#[error("event bus: {0}")]
pub struct BusError(pub String);

/// Where events go beyond this process.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes events, returning once the transport has accepted all of them.
    async fn publish(&self, events: &[Event]) -> Result<(), BusError>;
    /// Publishes events (pipelined where the transport can), with one result
    /// per event: `Ok` only once the transport confirmed that event.
    async fn publish_each(&self, events: &[Event]) -> Vec<Result<(), BusError>> {
        match self.publish(events).await {
            Ok(()) => events.iter().map(|_| Ok(())).collect(),
            Err(e) => events.iter().map(|_| Err(BusError(e.0.clone()))).collect(),
        }
    }
    /// Checks the transport.
    async fn health(&self) -> Result<(), BusError>;
    /// A name for `/ready` (`in-process`, `rabbitmq`).
    fn name(&self) -> &'static str;
    /// Whether the bus carries events out of this process. An event that
    /// stays in the process and that no local handler wants is owed to
    /// nobody, so it needs no outbox entry.
    fn carries_out(&self) -> bool {
        true
    }
}

/// What follows a handler's staged writes once they are committed, given
/// the documents they produced, in order (see [`Staged`]).
pub type AfterCommit = Box<
    dyn FnOnce(
            Vec<Option<crate::platform::store::Document>>,
        ) -> futures::future::BoxFuture<'static, ()>
        + Send,
>;

/// A local handler's work on one event, done in the transaction of the
/// change that raises it (see [`EventHandler::stage`]).
pub struct Staged {
    /// Writes that commit with the change, all or none.
    pub writes: Vec<crate::platform::store::Write>,
    /// Runs once they are committed.
    pub then: AfterCommit,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

/// A local consumer of every event raised in this process.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event; errors are logged by the caller.
    async fn handle(&self, event: &Event) -> anyhow::Result<()>;
    /// The handler's work on `event` as writes that commit together with
    /// the change raising it, in the store the events are recorded in (the
    /// app's store, when it has transactions), then `then`.
    /// The default, `Ok(None)`, stages nothing: the handler is called after
    /// the commit instead. What it stages must come to what [`Self::handle`]
    /// does, which still runs whenever an event is re-driven.
    async fn stage(&self, _event: &Event) -> anyhow::Result<Option<Staged>> {
        Ok(None)
    }
    /// Whether events of this type concern the handler at all (it is not
    /// called for others).
    fn wants(&self, _event_type: &str) -> bool {
        true
    }
}

/// The facade services use to raise events.
pub struct Events {
    bus: Arc<dyn EventBus>,
    handlers: std::sync::RwLock<Vec<Arc<dyn EventHandler>>>,
    clock: Arc<dyn Clock>,
    instance: String,
    outbox: Option<outbox::Outbox>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("bus", &self.bus.name())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// A facade over a bus.
    pub fn new(bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        Self {
            bus,
            handlers: Default::default(),
            clock,
            instance: format!("{host}-{}", std::process::id()),
            outbox: None,
        }
    }

    /// Records every event in the outbox of `store` before it is published
    /// (see [`outbox`]); without it events are published directly.
    #[must_use]
    pub fn with_outbox(mut self, store: Arc<dyn crate::platform::store::Store>) -> Self {
        self.outbox = Some(outbox::Outbox::new(store));
        self
    }

    /// Adds a local handler.
    pub fn subscribe(&self, handler: Arc<dyn EventHandler>) {
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handler);
    }

    /// The local handlers, copied out of their lock (handlers are awaited,
    /// which the lock must not be held across).
    pub(crate) fn local_handlers(&self) -> Vec<Arc<dyn EventHandler>> {
        self.handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The bus (for health checks).
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// Builds an envelope for the context's tenant and flow.
    pub fn envelope(&self, ctx: &Ctx, event_type: &str, data: Value) -> Event {
        Event {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            version: "1.0".into(),
            timestamp: self.clock.now(),
            tenant_id: ctx.tenant(),
            source: Source {
                service: SOURCE_SERVICE.into(),
                instance: self.instance.clone(),
            },
            data,
            metadata: Metadata {
                correlation_id: ctx.correlation_id.clone(),
                causation_id: ctx.causation_id.clone(),
                user_id: ctx.principal.user_id.clone(),
            },
        }
    }

    /// Raises events whose change already happened: recorded in the outbox
    /// (when configured), then local handlers, then the bus.
    ///
    /// A bus failure is logged and does not fail the caller's change; the
    /// outbox relay publishes the event later. Changes should prefer
    /// [`Events::within`], which records the events before the change.
    pub async fn emit(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Err(events) = self.emit_recorded(events).await {
            self.emit_unrecorded(&events).await;
        }
    }

    /// Local handlers, then the bus, with nothing recorded.
    async fn emit_unrecorded(&self, events: &[Event]) {
        for event in events {
            self.run_handlers(event).await;
        }
        if let Err(e) = self.bus.publish(events).await {
            tracing::warn!(error = %e, count = events.len(), "publishing events failed");
        }
    }

    /// Whether anyone is owed one of these events: the bus carries events
    /// out of the process, or a local handler wants one. Events owed to
    /// nobody (`webhook.delivered` on the in-process bus) are not recorded
    /// in the outbox: there is nothing to re-drive.
    fn owed(&self, events: &[Event]) -> bool {
        events.iter().any(|e| self.wanted(&e.event_type))
    }

    /// Whether an event of this type would reach anyone: the bus carries
    /// events out of the process, or a local handler wants it. An event
    /// nobody would get (`webhook.delivered` on the in-process bus) need not
    /// even be built.
    pub fn wanted(&self, event_type: &str) -> bool {
        self.bus.carries_out()
            || self
                .handlers
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .any(|h| h.wants(event_type))
    }
}
