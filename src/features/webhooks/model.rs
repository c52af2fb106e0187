//! Webhook subscriptions and deliveries (SPEC §5.5, §8) as stored documents,
//! plus the pure rules about them: event matching, delivery ids. (Secrets
//! and signatures: [`super::signing`].)

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::tenancy::TenantId;
use crate::platform::secrets::SecretRef;
use crate::platform::store::{Container, ETag, Entity};

/// One signing secret of a webhook (a reference; the value is in the SecretStore).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecret {
    /// Reference in the secret store.
    pub secret_ref: SecretRef,
    /// Owner id used in the secret store (`{webhookId}.{n}`).
    pub owner_id: String,
    /// When a rotated-out secret stops signing; `None` for the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A webhook subscription as stored (container `integration_webhooks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Id.
    pub id: Uuid,
    /// Owner tenant (partition key).
    pub tenant_id: TenantId,
    /// Only this integration's events.
    #[serde(default)]
    pub integration_id: Option<Uuid>,
    /// Target URL.
    pub url: String,
    /// Event types or patterns (`integration.*`, `*`).
    pub events: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Whether events are delivered (else recorded as `skipped`).
    pub enabled: bool,
    /// Why the service disabled it.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Maximum deliveries per second to this endpoint.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Failed attempts since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// First failed attempt since the last success.
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Last attempt.
    #[serde(default)]
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Outcome of the last attempt (`succeeded` or `failed`).
    #[serde(default)]
    pub last_delivery_status: Option<String>,
    /// Signing secrets: the current one last; rotated-out ones carry `expiresAt`.
    #[serde(default)]
    pub secrets: Vec<SigningSecret>,
    /// Counter for secret owner ids.
    #[serde(default)]
    pub secret_version: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Creator.
    #[serde(default)]
    pub created_by: Option<String>,
    /// Version (never stored).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

impl Entity for Webhook {
    const CONTAINER: Container = Container::Webhooks;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.as_str().to_owned();
    }
}

impl Webhook {
    /// Whether this webhook wants an event of this type about this integration.
    pub fn wants(&self, event_type: &str, integration_id: Option<Uuid>) -> bool {
        if let Some(only) = self.integration_id
            && integration_id != Some(only)
        {
            return false;
        }
        self.events.iter().any(|p| pattern_matches(p, event_type))
    }

    /// Secrets that sign at `now` (current + rotated-out within their grace).
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &SigningSecret> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|t| t > now))
    }
}

/// The API view of a webhook: no secret references.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// Id.
    pub id: Uuid,
    /// Owner tenant.
    pub tenant_id: TenantId,
    /// Only this integration's events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<Uuid>,
    /// Target URL.
    pub url: String,
    /// Event types or patterns.
    pub events: Vec<String>,
    /// Free text.
    pub description: String,
    /// Whether events are delivered.
    pub enabled: bool,
    /// Why the service disabled it.
    pub disabled_reason: Option<String>,
    /// Maximum deliveries per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Last attempt.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Outcome of the last attempt.
    pub last_delivery_status: Option<String>,
    /// When a rotated-out secret stops signing, if one still does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub etag: String,
    /// The signing secret: only in the answer to create and rotate (not in
    /// an `Idempotency-Key` replay of the create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    /// The view of a stored webhook at `now`.
    pub fn of(w: &Webhook, now: DateTime<Utc>) -> Self {
        Self {
            id: w.id,
            tenant_id: w.tenant_id,
            integration_id: w.integration_id,
            url: w.url.clone(),
            events: w.events.clone(),
            description: w.description.clone(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            rate_limit_per_second: w.rate_limit_per_second,
            consecutive_failures: w.consecutive_failures,
            last_delivery_at: w.last_delivery_at,
            last_delivery_status: w.last_delivery_status.clone(),
            previous_secret_expires_at: w
                .secrets
                .iter()
                .filter_map(|s| s.expires_at)
                .filter(|t| *t > now)
                .max(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            etag: w.etag.clone(),
            secret: None,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Stopped without success before the schedule ran out (410, webhook gone or disabled).
    Failed,
    /// Every scheduled attempt failed.
    Exhausted,
    /// The webhook was disabled when the event happened; `recover` delivers it.
    Skipped,
}

impl DeliveryStatus {
    /// Whether no attempt will follow without `retry` or `recover`.
    pub fn is_final(self) -> bool {
        self != DeliveryStatus::Pending
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1-based number.
    pub number: u32,
    /// When it started.
    #[serde(with = "crate::domain::time::exact")]
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status, if it answered.
    pub response_status: Option<u16>,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it failed (no secret, nothing internal).
    pub error: Option<String>,
    /// The first 1 KiB of the response body.
    pub response_body: Option<String>,
    /// Whether it counts as a success.
    pub succeeded: bool,
}

/// One event offered to one webhook (container `integration_webhook_deliveries`, 7 days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Id: the `webhook-id` header, stable across retries.
    pub id: Uuid,
    /// Owner tenant (partition key).
    pub tenant_id: TenantId,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The event delivered.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// The integration it is about, if any.
    #[serde(default)]
    pub integration_id: Option<Uuid>,
    /// The body sent: `{type, timestamp, data}`.
    #[schema(value_type = Object)]
    pub payload: Payload,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far (all rounds).
    pub attempt_count: u32,
    /// Attempts made before the current round (`retry`/`recover` start a new one).
    #[serde(default)]
    pub round_start: u32,
    /// When the next attempt is due (pending only; compared as text by
    /// the re-drive, so written at a fixed width).
    #[serde(default, with = "crate::domain::time::exact_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Created.
    #[serde(with = "crate::domain::time::exact")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "crate::domain::time::exact")]
    pub updated_at: DateTime<Utc>,
    /// When it reached its final status.
    #[serde(default, with = "crate::domain::time::exact_opt")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The log's sort key: creation time in milliseconds × 1000 plus a
    /// per-process counter, so deliveries of one millisecond keep their order.
    #[serde(default)]
    pub sort_key: i64,
    /// Version (never stored).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

/// A delivery's body as JSON text: encoded once by the fan-out and sent byte
/// for byte the same by every attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(pub Box<serde_json::value::RawValue>);

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Payload {
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl Delivery {
    /// About how much memory it holds (the struct and what its fields own).
    pub fn approx_bytes(&self) -> usize {
        let attempts: usize = self
            .attempts
            .iter()
            .map(|a| {
                size_of::<Attempt>()
                    + a.error.as_ref().map_or(0, String::capacity)
                    + a.response_body.as_ref().map_or(0, String::capacity)
            })
            .sum();
        size_of::<Self>()
            + self.payload.as_str().len()
            + self.event_type.capacity()
            + self.etag.capacity()
            + attempts
    }
}

impl Entity for Delivery {
    const CONTAINER: Container = Container::WebhookDeliveries;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.as_str().to_owned();
    }
    /// Written as text (two writes per delivery, the busiest documents)
    /// whenever its etag, the one field never stored, is not set.
    fn text_address(&self) -> Option<(String, String)> {
        self.etag
            .is_empty()
            .then(|| (self.id.to_string(), self.tenant_id.key()))
    }
}

/// A delivery in lists: everything but the attempts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySummary {
    /// Id (`webhook-id`).
    pub id: Uuid,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempt_count: u32,
    /// Next attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Status of the last attempt's answer.
    pub last_response_status: Option<u16>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Final since.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Delivery> for DeliverySummary {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type.clone(),
            status: d.status,
            attempt_count: d.attempt_count,
            next_attempt_at: d.next_attempt_at,
            last_response_status: d.attempts.last().and_then(|a| a.response_status),
            created_at: d.created_at,
            updated_at: d.updated_at,
            completed_at: d.completed_at,
        }
    }
}

/// A sort key for a delivery created at `now` (see [`Delivery::sort_key`]).
pub fn sort_key(now: DateTime<Utc>) -> i64 {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000;
    now.timestamp_millis() * 1000 + i64::from(n)
}

/// The namespace of delivery ids (UUID v5 of `{eventId}:{webhookId}`).
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1b_2d4c_8a3e_4c11_9d7a_52e0_c0de_4a11);

/// The delivery id of one event for one webhook: the same on every re-drive.
///
/// A name-based hash of both ids, except that its first 48 bits are the
/// event id's (the event's millisecond timestamp, event ids being UUIDv7):
/// deliveries created together get neighbouring ids, so their index entries
/// share pages instead of each landing on a random one. Marked as a custom
/// (version 8) UUID, which RFC 9562 defines for exactly this.
pub fn delivery_id(event_id: Uuid, webhook_id: Uuid) -> Uuid {
    let hashed = Uuid::new_v5(
        &DELIVERY_NAMESPACE,
        format!("{event_id}:{webhook_id}").as_bytes(),
    );
    let mut bytes = *hashed.as_bytes();
    bytes[..6].copy_from_slice(&event_id.as_bytes()[..6]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Whether an event pattern matches a type: exact, `prefix.*` or `*`.
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == event_type,
    }
}

/// Whether a string is a valid event pattern.
pub fn is_valid_pattern(p: &str) -> bool {
    if p == "*" {
        return true;
    }
    let name = p.strip_suffix(".*").unwrap_or(p);
    !name.is_empty()
        && name.len() <= 100
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "integration.created"));
        assert!(pattern_matches("integration.*", "integration.sync.started"));
        assert!(!pattern_matches("integration.*", "integrations.x"));
        assert!(pattern_matches(
            "integration.created",
            "integration.created"
        ));
        assert!(!pattern_matches(
            "integration.created",
            "integration.updated"
        ));
        assert!(is_valid_pattern("integration.*"));
        assert!(!is_valid_pattern("Integration.x"));
        assert!(!is_valid_pattern("a..b"));
        assert!(!is_valid_pattern(".*"));
    }

    #[test]
    fn delivery_ids_are_stable_distinct_and_ordered_like_their_events() {
        let (e1, e2, w1, w2) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let d = delivery_id(e1, w1);
        assert_eq!(d, delivery_id(e1, w1), "the same on every re-drive");
        assert_ne!(d, delivery_id(e1, w2));
        assert_ne!(d, delivery_id(e2, w1));
        assert_eq!(
            d.as_bytes()[..6],
            e1.as_bytes()[..6],
            "the event's time first"
        );
        assert_eq!(d.get_version_num(), 8);
        assert_eq!(d.get_variant(), uuid::Variant::RFC4122);
    }
}
