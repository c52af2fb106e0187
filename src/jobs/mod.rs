//! Queue jobs: the one message type every queue carries and the one entry
//! point that runs a job, whichever trigger received it (the `serve` workers
//! of [`workers`] or a Service Bus invocation of the Functions handler).

pub mod workers;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::tenancy::TenantId;
use crate::queue::Carry;
use crate::state::App;

/// The Service Bus queue of webhook delivery attempts.
pub const WEBHOOK_QUEUE: &str = "webhook-deliveries";

/// A job. New kinds (sync runs) are new variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum JobMessage {
    /// One attempt of one webhook delivery.
    #[serde(rename_all = "camelCase")]
    WebhookDelivery {
        /// The delivery's tenant (its partition).
        tenant_id: TenantId,
        /// The delivery.
        delivery_id: Uuid,
        /// Which attempt this is (0-based count of attempts already made);
        /// a message whose attempt no longer matches the delivery is stale.
        attempt: u32,
    },
}

impl JobMessage {
    /// The queue (Service Bus entity) this message goes to.
    pub fn queue(&self) -> &'static str {
        match self {
            JobMessage::WebhookDelivery { .. } => WEBHOOK_QUEUE,
        }
    }
}

/// What a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// The job's work was done.
    Done,
    /// Nothing to do (already done, stale or gone): the message is consumed.
    NoOp,
}

/// A job that must run again later (the message is not consumed).
#[derive(Debug, thiserror::Error)]
#[error("job failed and will be retried: {cause}")]
pub struct JobError {
    /// Why (logged; never shown to a tenant).
    pub cause: anyhow::Error,
    /// When to retry, if the failure said.
    pub retry_after: Option<Duration>,
}

impl From<anyhow::Error> for JobError {
    fn from(cause: anyhow::Error) -> Self {
        Self {
            cause,
            retry_after: None,
        }
    }
}

impl From<crate::error::Error> for JobError {
    fn from(e: crate::error::Error) -> Self {
        Self::from(anyhow::Error::new(e))
    }
}

/// Runs one job. `delivery_count` is how many times the queue has handed
/// this message out (1 = first), for logging and poison handling.
pub async fn process_job(
    app: &App,
    message: JobMessage,
    delivery_count: u32,
) -> Result<JobOutcome, JobError> {
    process_carried(app, message, delivery_count, None).await
}

/// [`process_job`] with what the sender handed along (see
/// [`crate::queue::JobQueue::hand_over`]).
pub async fn process_carried(
    app: &App,
    message: JobMessage,
    delivery_count: u32,
    carry: Option<Carry>,
) -> Result<JobOutcome, JobError> {
    match message {
        JobMessage::WebhookDelivery {
            tenant_id,
            delivery_id,
            attempt,
        } => {
            let job = crate::webhooks::delivery::Job {
                tenant: tenant_id,
                delivery_id,
                attempt,
                delivery_count,
            };
            let handed = carry
                .and_then(|c| c.value.downcast::<crate::webhooks::model::Delivery>().ok())
                .map(|d| std::sync::Arc::try_unwrap(d).unwrap_or_else(|d| (*d).clone()));
            crate::webhooks::delivery::attempt(app, job, handed).await
        }
    }
}
