//! The job-queue port (SPEC §3): at-least-once delivery of [`JobMessage`]s,
//! optionally not before a given time.
//!
//! Two implementations: [`embedded::EmbeddedQueue`] (a table in the embedded
//! store's SQLite file, worked in-process by `serve`'s workers, which hold
//! it themselves) and [`servicebus::ServiceBusQueue`] (Azure Service Bus over
//! REST; receiving is the Functions host's trigger).

pub mod embedded;
pub mod message;
pub mod servicebus;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use message::{JobMessage, SYNC_QUEUE, WEBHOOK_QUEUE};

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
}

/// Hands a job due now straight to this process's workers, unrecorded,
/// with what the sender already holds (`carry`), so that the job need not
/// read it back. `false` when it was not handed over (no workers in this
/// process, or a full backlog): the caller sends it instead.
///
/// Only for a job that the sender's own record re-drives should it be lost
/// with the process (a pending delivery is found by the webhook re-drive). A
/// queue worked elsewhere (Service Bus) has no such port: the app's wiring
/// gives it only where `serve`'s workers take the embedded queue's jobs.
pub trait HandOver<C>: Send + Sync + 'static {
    /// Hands `message` over with `carry`, which holds about `bytes` of memory.
    fn hand_over(&self, message: &JobMessage, message_id: &str, carry: C, bytes: usize) -> bool;
}
