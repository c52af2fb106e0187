//! The job-queue port (SPEC §3): at-least-once delivery of [`JobMessage`]s,
//! optionally not before a given time.
//!
//! Two implementations: [`embedded::EmbeddedQueue`] (a table in the embedded
//! store's SQLite file, worked in-process by [`crate::jobs::workers`]) and
//! [`servicebus::ServiceBusQueue`] (Azure Service Bus over REST; receiving is
//! the Functions trigger, which calls [`crate::jobs::process_job`]).

pub mod embedded;
pub mod servicebus;

use std::any::Any;
use std::sync::Arc;

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

/// What a sender knows that a job sent in this process can use instead of
/// reading it back (see [`JobQueue::send_carrying`]). Only ever a shortcut:
/// a job must run the same without it.
#[derive(Clone)]
pub struct Carry(pub Arc<dyn Any + Send + Sync>);

impl std::fmt::Debug for Carry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Carry")
    }
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

    /// [`JobQueue::send`], handing `carry` to the job when this process runs
    /// it straight from the send (the embedded queue's hand-off); dropped by
    /// queues whose jobs are received elsewhere or later.
    async fn send_carrying(
        &self,
        message: &JobMessage,
        not_before: Option<DateTime<Utc>>,
        message_id: &str,
        carry: Option<Carry>,
    ) -> Result<(), QueueError> {
        let _ = carry;
        self.send(message, not_before, message_id).await
    }

    /// Checks the queue.
    async fn health(&self) -> Result<(), QueueError>;

    /// A name for `/ready` (`embedded`, `servicebus`).
    fn name(&self) -> &'static str;

    /// The embedded queue, when this is one (so `serve` can work it).
    fn as_embedded(&self) -> Option<&embedded::EmbeddedQueue> {
        None
    }
}
