//! The RabbitMQ consumer `serve` runs beside the HTTP API when
//! `RABBITMQ_URL` is set: Castiel's `shard.updated` events. (In Functions
//! the host drives the same work through the `shard-updated` trigger.)

use std::sync::Arc;

use crate::app::AppState;
use crate::platform::events::consumer::{
    self, ConsumerHandle, ConsumerSettings, InboundEventHandler, RecordingHandler,
};

/// The running consumer, if any.
#[derive(Debug)]
pub struct Background {
    consumer: Option<ConsumerHandle>,
}

/// Starts the consumer when a broker is configured (with the default
/// [`RecordingHandler`] until sync provides its own).
pub fn start(state: &AppState) -> Background {
    let handler: Arc<dyn InboundEventHandler> =
        Arc::new(RecordingHandler::new(state.store.clone()));
    start_with(state, handler)
}

/// Like [`start`], with a given inbound handler.
pub fn start_with(state: &AppState, handler: Arc<dyn InboundEventHandler>) -> Background {
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
    Background { consumer }
}

impl Background {
    /// Stops the consumer.
    pub async fn stop(self) {
        if let Some(c) = self.consumer {
            c.stop().await;
        }
    }
}
