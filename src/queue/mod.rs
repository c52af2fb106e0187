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

/// What a sender knows that a job handed over in this process can use
/// instead of reading it back (see [`JobQueue::hand_over`]). Only ever a
/// shortcut: a job must run the same without it.
#[derive(Clone)]
pub struct Carry {
    /// What the sender knew.
    pub value: Arc<dyn Any + Send + Sync>,
    /// About how much memory it holds: a backlog of carries is kept within
    /// a budget of bytes, not of jobs (a payload may be 100 bytes or 1 MiB).
    pub bytes: usize,
}

impl Carry {
    /// `value`, which holds about `bytes` of memory.
    pub fn new(value: Arc<dyn Any + Send + Sync>, bytes: usize) -> Self {
        Self { value, bytes }
    }
}

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

    /// Hands a job due now straight to this process's workers, unrecorded,
    /// with `carry`; `false` when it was not handed over (no workers here,
    /// or all busy with a full backlog), and the caller sends it instead.
    ///
    /// Only for a job the caller's own record re-drives should it be lost
    /// with the process: a pending delivery is found by the sweep that
    /// `serve` runs when it starts. Queues received elsewhere never take it.
    fn hand_over(&self, message: &JobMessage, message_id: &str, carry: Carry) -> bool {
        let _ = (message, message_id, carry);
        false
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
