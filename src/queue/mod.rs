//! The job-queue port (SPEC §3): at-least-once delivery of [`JobMessage`]s,
//! optionally not before a given time.
//!
//! Two implementations: [`embedded::EmbeddedQueue`] (a table in the embedded
//! store's SQLite file, worked in-process by [`crate::jobs::workers`]) and
//! [`servicebus::ServiceBusQueue`] (Azure Service Bus over REST; receiving is
//! the Functions trigger, which calls [`crate::jobs::process_job`]).

pub mod embedded;
pub mod servicebus;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::JobMessage;

/// A queue failure (transport or storage).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue cannot be reached or refused the message.
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
    /// The message could not be encoded (a bug).
    #[error("job message could not be encoded: {0}")]
    Encode(String),
    /// The queue configuration is unusable.
    #[error("job queue configuration: {0}")]
    Config(String),
}

/// Sends jobs. Every job must be idempotent: a message may arrive more than once.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Enqueues `message`, visible from `not_before` (now when `None`).
    ///
    /// `message_id` deduplicates: while a message with the same id is still
    /// queued, sending it again is a no-op (embedded; Service Bus when
    /// duplicate detection is enabled on the queue).
    async fn send(
        &self,
        message: &JobMessage,
        not_before: Option<DateTime<Utc>>,
        message_id: &str,
    ) -> Result<(), QueueError>;

    /// Checks the queue.
    async fn health(&self) -> Result<(), QueueError>;

    /// A name for `/ready` (`embedded`, `servicebus`).
    fn name(&self) -> &'static str;

    /// The embedded queue, when this is one (so `serve` can work it).
    fn as_embedded(&self) -> Option<&embedded::EmbeddedQueue> {
        None
    }
}
