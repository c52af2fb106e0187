//! Outbound webhooks (SPEC §5.5, §8): subscriptions, fan-out of events to
//! them, and signed, retried, logged deliveries on the job queue.

pub mod delivery;
pub mod fanout;
pub mod limit;
pub mod model;
pub mod schedule;
pub mod send;
pub mod service;

use crate::domain::tenancy::TenantId;
use crate::secrets::SecretOwner;

/// Raised after a delivery succeeded.
pub const EVENT_DELIVERED: &str = "webhook.delivered";
/// Raised after a delivery failed for good (exhausted, 410, webhook gone).
pub const EVENT_FAILED: &str = "webhook.failed";
/// The event `POST /webhooks/{id}/test` sends.
pub const EVENT_TEST: &str = "webhook.test";

/// The secret-store owner of one webhook secret version.
pub fn secret_owner(tenant_id: TenantId, owner_id: &str) -> SecretOwner {
    SecretOwner {
        tenant_id,
        kind: "webhook",
        id: owner_id.to_owned(),
    }
}
