//! The production event bus: Castiel's RabbitMQ topic exchange (`lapin` 4).
//!
//! - One long-lived connection per process, with lapin's automatic recovery
//!   (`enable_auto_recover`), watched by a supervisor task that reconnects
//!   from scratch when recovery gives up or the first connect fails. The
//!   supervisor is spawned on the current tokio runtime (lapin panics when
//!   connecting outside one) and stops when the bus is dropped.
//! - One publisher channel in confirm mode. Every event is a persistent
//!   message on the durable topic exchange with routing key = event type,
//!   `messageId` = event id, `type` = event type, `appId` = source service,
//!   `content_type` = `application/json` and headers `tenantId`, `version`.
//! - Publishing never waits for a connection: while the broker is
//!   unreachable [`EventBus::publish_each`] fails at once, and a connected
//!   publish is bounded by a timeout, so no request hangs on a dead broker.
//!   The outbox keeps what failed and the relay publishes it later.
//! - Events of one call are pipelined: all frames are written, then all
//!   confirms awaited together.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use secrecy::{ExposeSecret as _, SecretString};

use super::{BusError, Event, EventBus};

/// How long connecting (TCP + AMQP handshake + setup) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the supervisor looks at the connection.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Settings of the RabbitMQ bus.
#[derive(Clone)]
pub struct RabbitSettings {
    /// `amqp://` or `amqps://` URL (credentials inside; never logged).
    pub url: SecretString,
    /// The durable topic exchange (`coder_events`).
    pub exchange: String,
    /// `appId` of every message (the envelope's `source.service`).
    pub app_id: String,
    /// Upper bound of one publish call (frames written and confirms received).
    pub publish_timeout: Duration,
}

impl std::fmt::Debug for RabbitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitSettings")
            .field("exchange", &self.exchange)
            .field("publish_timeout", &self.publish_timeout)
            .finish_non_exhaustive()
    }
}

impl RabbitSettings {
    /// Defaults for a URL and exchange: 2 s publish bound, `appId` = service.
    pub fn new(url: SecretString, exchange: impl Into<String>) -> Self {
        Self {
            url,
            exchange: exchange.into(),
            app_id: super::SOURCE_SERVICE.into(),
            publish_timeout: Duration::from_secs(2),
        }
    }
}

struct Link {
    connection: Connection,
    channel: Channel,
}

struct Inner {
    settings: RabbitSettings,
    link: Mutex<Option<Arc<Link>>>,
    last_error: Mutex<Option<String>>,
}

impl Inner {
    fn channel(&self) -> Option<Channel> {
        let link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        link.as_ref()
            .filter(|l| l.connection.status().connected() && l.channel.status().connected())
            .map(|l| l.channel.clone())
    }

    fn set_error(&self, e: impl std::fmt::Display) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }
}

/// The RabbitMQ implementation of [`EventBus`].
#[derive(Clone)]
pub struct RabbitBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RabbitBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBus")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Opens a connection with automatic recovery (inside the tokio runtime).
pub async fn connect(url: &SecretString, name: &str) -> Result<Connection, BusError> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .enable_auto_recover();
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(url.expose_secret(), props),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(BusError(format!("connecting to RabbitMQ: {e}"))),
        Err(_) => Err(BusError("connecting to RabbitMQ timed out".into())),
    }
}

/// Declares the durable topic exchange.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| BusError(format!("declaring exchange {exchange}: {e}")))
}

async fn open_link(settings: &RabbitSettings) -> Result<Link, BusError> {
    let connection = connect(&settings.url, "castiel-integrations-publisher").await?;
    let setup = async {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok::<_, lapin::Error>(channel)
    };
    let channel = match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
        Ok(Ok(ch)) => ch,
        Ok(Err(e)) => return Err(BusError(format!("opening a channel: {e}"))),
        Err(_) => return Err(BusError("opening a channel timed out".into())),
    };
    declare_exchange(&channel, &settings.exchange).await?;
    Ok(Link {
        connection,
        channel,
    })
}

/// Keeps one link up while the bus lives.
async fn supervise(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let settings = inner.settings.clone();
        drop(inner);
        match open_link(&settings).await {
            Ok(link) => {
                let link = Arc::new(link);
                let Some(inner) = weak.upgrade() else {
                    let _ = link.connection.close(200, "bye".into()).await;
                    return;
                };
                *inner.link.lock().unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
                *inner
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                drop(inner);
                tracing::info!(exchange = %settings.exchange, "connected to RabbitMQ");
                backoff = Duration::from_millis(200);
                // Watch: lapin recovers transient failures by itself; a closed or
                // errored connection (recovery exhausted) is replaced.
                loop {
                    tokio::time::sleep(WATCH_EVERY).await;
                    let Some(inner) = weak.upgrade() else {
                        let _ = link.connection.close(200, "bye".into()).await;
                        return;
                    };
                    let status = link.connection.status();
                    if status.closed() || status.errored() || link.channel.status().closing() {
                        inner.set_error("connection to RabbitMQ lost");
                        *inner.link.lock().unwrap_or_else(PoisonError::into_inner) = None;
                        tracing::warn!("RabbitMQ connection lost; reconnecting");
                        break;
                    }
                }
            }
            Err(e) => {
                if let Some(inner) = weak.upgrade() {
                    tracing::debug!(error = %e, "RabbitMQ not reachable");
                    inner.set_error(&e);
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl RabbitBus {
    /// Starts the bus: the connection is made in the background, so this
    /// returns at once even when the broker is down. Must be called inside a
    /// tokio runtime.
    pub fn start(settings: RabbitSettings) -> Self {
        let inner = Arc::new(Inner {
            settings,
            link: Mutex::new(None),
            last_error: Mutex::new(Some("connecting".into())),
        });
        tokio::spawn(supervise(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// Waits until connected, up to `within` (start-up and tests).
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.inner.channel().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.inner.channel().is_some()
    }
}

/// The AMQP properties of an event.
pub fn properties(event: &Event, app_id: &str) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "tenantId".into(),
        AMQPValue::LongString(LongString::from(event.tenant_id.to_string())),
    );
    headers.insert(
        "version".into(),
        AMQPValue::LongString(LongString::from(event.version.clone())),
    );
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_app_id(app_id.into())
        .with_timestamp(u64::try_from(event.timestamp.timestamp()).unwrap_or_default())
        .with_headers(headers)
}

async fn publish_pipelined(
    channel: &Channel,
    settings: &RabbitSettings,
    events: &[Event],
    out: &mut [Result<(), BusError>],
) {
    let mut pending = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                out[i] = Err(BusError(format!("encoding event: {e}")));
                continue;
            }
        };
        match channel
            .basic_publish(
                settings.exchange.as_str().into(),
                event.event_type.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties(event, &settings.app_id),
            )
            .await
        {
            Ok(confirm) => pending.push((i, confirm)),
            Err(e) => {
                // The channel is broken: the rest would fail the same way.
                for slot in out.iter_mut().skip(i) {
                    *slot = Err(BusError(format!("publishing: {e}")));
                }
                break;
            }
        }
    }
    for (i, confirm) in pending {
        out[i] = match confirm.await {
            Ok(Confirmation::Ack(_)) => Ok(()),
            Ok(Confirmation::Nack(_)) => Err(BusError("the broker refused the event".into())),
            Ok(Confirmation::NotRequested) => Err(BusError("confirms are off".into())),
            Err(e) => Err(BusError(format!("waiting for the confirm: {e}"))),
        };
    }
}

#[async_trait]
impl EventBus for RabbitBus {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        self.publish_each(events)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    async fn publish_each(&self, events: &[Event]) -> Vec<Result<(), BusError>> {
        let fail = |why: &str| events.iter().map(|_| Err(BusError(why.into()))).collect();
        if events.is_empty() {
            return Vec::new();
        }
        let Some(channel) = self.inner.channel() else {
            return fail("not connected to RabbitMQ");
        };
        let settings = &self.inner.settings;
        let mut out: Vec<Result<(), BusError>> = events
            .iter()
            .map(|_| Err(BusError("not published".into())))
            .collect();
        match tokio::time::timeout(
            settings.publish_timeout,
            publish_pipelined(&channel, settings, events, &mut out),
        )
        .await
        {
            Ok(()) => out,
            Err(_) => {
                self.inner.set_error("publishing timed out");
                fail("publishing to RabbitMQ timed out")
            }
        }
    }

    async fn health(&self) -> Result<(), BusError> {
        if self.inner.channel().is_some() {
            return Ok(());
        }
        let why = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "not connected".into());
        Err(BusError(why))
    }

    fn name(&self) -> &'static str {
        "rabbitmq"
    }
}
