//! The event work `serve` runs in-process beside the HTTP API: the outbox
//! relay every few seconds and, when `RABBITMQ_URL` is set, the consumer of
//! `shard.updated`. (In Functions the host drives the same functions: the
//! `outbox-relay` timer and the `shard-updated` RabbitMQ trigger.)

use std::sync::Arc;
use std::time::Duration;

use super::consumer::{
    self, ConsumerHandle, ConsumerSettings, InboundEventHandler, RecordingHandler,
};
use super::outbox::spawn_relay_loop;
use crate::state::AppState;

/// How often `serve` runs the outbox relay.
pub const RELAY_EVERY: Duration = Duration::from_secs(2);

/// The running background tasks.
#[derive(Debug)]
pub struct Background {
    relay: tokio::task::JoinHandle<()>,
    consumer: Option<ConsumerHandle>,
}

/// Starts the relay loop and, with a broker configured, the consumer (with
/// the default [`RecordingHandler`] until sync provides its own).
pub fn start(state: &AppState) -> Background {
    let handler: Arc<dyn InboundEventHandler> =
        Arc::new(RecordingHandler::new(state.store.clone()));
    start_with(state, handler)
}

/// Like [`start`], with a given inbound handler.
pub fn start_with(state: &AppState, handler: Arc<dyn InboundEventHandler>) -> Background {
    let relay = spawn_relay_loop(Arc::downgrade(&state.0), RELAY_EVERY);
    let consumer = state.config.rabbitmq_url.as_ref().map(|url| {
        consumer::spawn(
            ConsumerSettings::new(
                url.clone(),
                state.config.rabbitmq_exchange.clone(),
                state.config.rabbitmq_queue.clone(),
            ),
            handler,
        )
    });
    Background { relay, consumer }
}

impl Background {
    /// Stops the consumer and the relay loop.
    pub async fn stop(self) {
        if let Some(c) = self.consumer {
            c.stop().await;
        }
        self.relay.abort();
    }
}
