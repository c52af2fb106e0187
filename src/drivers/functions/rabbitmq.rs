//! RabbitMQ trigger adapter (`docs/functions-protocol.md` §8.3, §7.4; metadata shapes [derived]).
//!
//! `Data.<binding>` is the double-encoded UTF-8 body; `Metadata` has
//! `DeliveryTag`, `Redelivered`, `Exchange`, `RoutingKey` and a
//! `BasicProperties` object whose headers may carry
//! `x-ms-rabbitmq-requeuecount`, the extension's retry counter (as a number,
//! a numeric string, or base64 bytes). The extension retries by republishing
//! with that counter incremented and rejects at 5.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Received;
use super::envelope::{EnvelopeError, Invocation, get_ci, host_unwrap, scalar_i64, scalar_str};
use super::service_bus::{body_text, decode_json, leaked_keys};
use crate::jobs::JobError;

/// The header the RabbitMQ extension counts its republishes in.
pub const REQUEUE_HEADER: &str = "x-ms-rabbitmq-requeuecount";

/// Deliveries the extension makes before rejecting (counts 0 through 5).
pub const MAX_RECEIVES: u32 = 6;

/// One received RabbitMQ message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RabbitMqMessage {
    /// The body as UTF-8 text.
    pub body: String,
    /// The routing key it was published with.
    pub routing_key: Option<String>,
    /// The exchange (empty for the default exchange).
    pub exchange: Option<String>,
    /// The broker's redelivery flag.
    pub redelivered: bool,
    /// The extension's republish counter (0 on first delivery); `None` when
    /// unknown (the body shadowed `BasicProperties`).
    pub requeue_count: Option<u32>,
    /// AMQP message id, when set.
    pub message_id: Option<String>,
    /// AMQP headers as the host serialized them.
    pub headers: Map<String, Value>,
}

fn header_count(v: &Value) -> Option<u32> {
    if let Some(n) = scalar_i64(v) {
        return u32::try_from(n).ok();
    }
    let s = scalar_str(&host_unwrap(v))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()?.trim().parse().ok()
}

impl RabbitMqMessage {
    /// Decodes a RabbitMQ invocation.
    pub fn from_invocation(inv: &Invocation, binding: &str) -> Result<Self, EnvelopeError> {
        let body = body_text(inv.binding(binding)?);
        let leaked = leaked_keys(&body);
        let trusted = |key: &str| !leaked.contains(&key.to_ascii_lowercase());
        let text = |key: &str| trusted(key).then(|| inv.meta_str(key)).flatten();
        let props = trusted("BasicProperties")
            .then(|| inv.meta_object("BasicProperties"))
            .flatten();
        let headers = props
            .as_ref()
            .and_then(|p| get_ci(p, "Headers"))
            .map(host_unwrap)
            .and_then(|h| h.as_object().cloned())
            .unwrap_or_default();
        let requeue_count = match (&props, get_ci(&headers, REQUEUE_HEADER)) {
            (None, _) => None,
            (Some(_), None) => Some(0),
            (Some(_), Some(v)) => header_count(v),
        };
        Ok(Self {
            routing_key: text("RoutingKey"),
            exchange: text("Exchange"),
            redelivered: trusted("Redelivered")
                .then(|| inv.meta_bool("Redelivered"))
                .flatten()
                .unwrap_or(false),
            requeue_count,
            message_id: props
                .as_ref()
                .and_then(|p| get_ci(p, "MessageId"))
                .and_then(|v| scalar_str(&host_unwrap(v))),
            headers,
            body,
        })
    }

    /// The body as typed JSON ([`JobError::Reject`] when it does not decode).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        decode_json(&self.body)
    }

    /// What jobs get besides the body (receives = requeue count + 1).
    pub fn received(&self) -> Received {
        Received {
            receives: self.requeue_count.map(|c| c.saturating_add(1)),
            message_id: self.message_id.clone(),
            enqueued_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invocation(meta: &Value) -> Invocation {
        let body = r#"{"type":"shard.updated","tenantId":"acme","data":{"shardId":"eu-1"}}"#;
        let env =
            json!({"Data":{"msg": serde_json::to_string(body).expect("enc")}, "Metadata": meta});
        Invocation::parse(env.to_string().as_bytes()).expect("parse")
    }

    #[test]
    fn first_delivery_and_requeue_counts() {
        let first = invocation(&json!({"ConsumerTag":"\"amq.ctag-1\"","DeliveryTag":"1",
            "Redelivered":"false","Exchange":"\"\"","RoutingKey":"\"integration_sync_service\"",
            "BasicProperties":{"Headers":null,"MessageId":"m-1"}}));
        let m = RabbitMqMessage::from_invocation(&first, "msg").expect("message");
        assert_eq!(m.requeue_count, Some(0));
        assert_eq!(m.received().receives, Some(1));
        assert_eq!(m.routing_key.as_deref(), Some("integration_sync_service"));
        assert_eq!(m.exchange.as_deref(), Some(""));
        assert_eq!(m.message_id.as_deref(), Some("m-1"));
        for header in [json!(3), json!("3"), json!("Mw==")] {
            let again =
                invocation(&json!({"BasicProperties":{"Headers":{REQUEUE_HEADER: header}}}));
            let m = RabbitMqMessage::from_invocation(&again, "msg").expect("message");
            assert_eq!(m.received().receives, Some(4));
        }
        let unknown = invocation(&json!({}));
        let m = RabbitMqMessage::from_invocation(&unknown, "msg").expect("message");
        assert_eq!(m.received().receives, None);
    }
}
