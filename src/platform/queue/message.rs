//! The messages the job queue carries: one variant per kind of queued work.
//! The queue owns this type (its workers and triggers decode it); each
//! variant names only domain basics, and the app's job dispatch
//! (`app::jobs`) hands it to the feature that does the work.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::tenancy::TenantId;

/// The Service Bus queue of webhook delivery attempts.
pub const WEBHOOK_QUEUE: &str = "webhook-deliveries";

/// The Service Bus queue of sync runs.
pub const SYNC_QUEUE: &str = "sync-runs";

/// A job. Each kind of queued work is one variant.
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
        /// The attempt to make, numbered from 0 (= attempts already made);
        /// a message whose attempt no longer matches the delivery is stale.
        attempt: u32,
    },
    /// One sync run (an execution), started or resumed.
    #[serde(rename_all = "camelCase")]
    SyncRun {
        /// The execution's tenant (its partition).
        tenant_id: TenantId,
        /// The execution to run; a message for one that is over, or that a
        /// live run holds, is a no-op.
        execution_id: Uuid,
    },
}

impl JobMessage {
    /// The queue (Service Bus entity) this message goes to.
    pub fn queue(&self) -> &'static str {
        match self {
            JobMessage::WebhookDelivery { .. } => WEBHOOK_QUEUE,
            JobMessage::SyncRun { .. } => SYNC_QUEUE,
        }
    }
}
