//! Service Bus queue trigger adapter (`docs/functions-protocol.md` §8.2, extension 5.x).
//!
//! `Data.<binding>` is the message body converted to a .NET string and then
//! serialized again, so a JSON body arrives as a JSON string holding a JSON
//! string literal. Scalar metadata arrive as strings (`"DeliveryCount":"1"`),
//! `*Utc` times without offset, and the body's own top-level fields are
//! copied over same-named metadata (§5.3, §5.5): a metadata key that the
//! body also has is not trusted and reads as unknown.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Received;
use super::envelope::{EnvelopeError, Invocation};
use crate::jobs::JobError;

/// One received Service Bus message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceBusMessage {
    /// The body as UTF-8 text (exactly what the sender put in).
    pub body: String,
    /// 1-based delivery count; `None` when the host's value is unknown or
    /// was overwritten by a body field.
    pub receives: Option<u32>,
    /// The broker's message id.
    pub message_id: Option<String>,
    /// The broker's sequence number (use it, not times, for ordering).
    pub sequence_number: Option<i64>,
    /// When the message was enqueued.
    pub enqueued_at: Option<DateTime<Utc>>,
    /// Content type, when the sender set one.
    pub content_type: Option<String>,
    /// Correlation id, when the sender set one.
    pub correlation_id: Option<String>,
    /// Application properties.
    pub application_properties: Map<String, Value>,
}

/// Turns a queue trigger's `Data` value into the body text: a JSON string
/// holding a JSON string literal (the host's double encoding) → that
/// literal's content; a JSON string holding anything else, or plain text →
/// the text itself (older hosts, the Learn examples); an object or array
/// (a host that passed a JSON value) → its JSON text.
pub fn body_text(v: &Value) -> String {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => inner,
            _ => s.clone(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The top-level keys of a JSON-object body, lower-cased (the fields the
/// host copies over metadata).
pub fn leaked_keys(body: &str) -> BTreeSet<String> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(m)) => m.keys().map(|k| k.to_ascii_lowercase()).collect(),
        _ => BTreeSet::new(),
    }
}

impl ServiceBusMessage {
    /// Decodes a Service Bus invocation.
    pub fn from_invocation(inv: &Invocation, binding: &str) -> Result<Self, EnvelopeError> {
        let body = body_text(inv.binding(binding)?);
        let leaked = leaked_keys(&body);
        let trusted = |key: &str| !leaked.contains(&key.to_ascii_lowercase());
        let text = |key: &str| trusted(key).then(|| inv.meta_str(key)).flatten();
        let time = |with_offset: &str, utc: &str| {
            trusted(with_offset)
                .then(|| inv.meta_time(with_offset))
                .flatten()
                .or_else(|| trusted(utc).then(|| inv.meta_time(utc)).flatten())
        };
        if !trusted("DeliveryCount") {
            tracing::warn!(
                "the message body has a top-level `deliveryCount`; the host's value is unknown"
            );
        }
        Ok(Self {
            receives: trusted("DeliveryCount")
                .then(|| inv.meta_i64("DeliveryCount"))
                .flatten()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1),
            message_id: text("MessageId"),
            sequence_number: trusted("SequenceNumber")
                .then(|| inv.meta_i64("SequenceNumber"))
                .flatten(),
            enqueued_at: time("EnqueuedTime", "EnqueuedTimeUtc"),
            content_type: text("ContentType"),
            correlation_id: text("CorrelationId"),
            application_properties: trusted("ApplicationProperties")
                .then(|| {
                    inv.meta_object("ApplicationProperties")
                        .or_else(|| inv.meta_object("UserProperties"))
                })
                .flatten()
                .unwrap_or_default(),
            body,
        })
    }

    /// The body as a typed JSON message; a body that does not decode can
    /// never succeed, so the error is [`JobError::Reject`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        decode_json(&self.body)
    }

    /// What jobs get besides the body.
    pub fn received(&self) -> Received {
        Received {
            receives: self.receives,
            message_id: self.message_id.clone(),
            enqueued_at: self.enqueued_at,
        }
    }
}

/// Decodes a queue body as typed JSON, naming the bad field on failure.
pub fn decode_json<T: DeserializeOwned>(body: &str) -> Result<T, JobError> {
    let de = &mut serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        JobError::reject(anyhow::anyhow!(
            "the message body does not decode at `{}`: {}",
            e.path(),
            e.inner()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The payload shape of `docs/functions-protocol.md` §8.2.
    const FIXTURE: &str = r#"{"Data":{"msg":"\"{\\\"type\\\":\\\"shard.updated\\\",\\\"tenantId\\\":\\\"acme\\\",\\\"shardId\\\":\\\"eu-1\\\",\\\"version\\\":7}\""},"Metadata":{"MessageReceiver":{},"MessageSession":{},"MessageActions":{},"SessionActions":{},"ReceiveActions":{},"Client":{"FullyQualifiedNamespace":"myns.servicebus.windows.net","IsClosed":false,"TransportType":0,"Identifier":"..."},"DeliveryCount":"1","LockToken":"\"c8a5d0a4-4d3e-4e7e-9a2b-0b6a7f2a9e11\"","ExpiresAtUtc":"2025-05-15T12:00:00","ExpiresAt":"2025-05-15T12:00:00+00:00","EnqueuedTimeUtc":"2025-05-01T12:00:00","EnqueuedTime":"2025-05-01T12:00:00+00:00","MessageId":"\"m-123\"","SequenceNumber":"42","ApplicationProperties":{"tenant":"acme"},"UserProperties":{"tenant":"acme"},"type":"\"shard.updated\"","tenantId":"\"acme\"","shardId":"\"eu-1\"","version":"\"7\"","sys":{"MethodName":"ShardUpdated","UtcNow":"2025-05-01T12:00:01.1234567Z","RandGuid":"..."}}}"#;

    #[test]
    fn decodes_the_reference_fixture() {
        let inv = Invocation::parse(FIXTURE.as_bytes()).expect("parse");
        let m = ServiceBusMessage::from_invocation(&inv, "msg").expect("message");
        assert_eq!(
            serde_json::from_str::<Value>(&m.body).expect("json body"),
            json!({"type":"shard.updated","tenantId":"acme","shardId":"eu-1","version":7})
        );
        assert_eq!(m.receives, Some(1));
        assert_eq!(m.message_id.as_deref(), Some("m-123"));
        assert_eq!(m.sequence_number, Some(42));
        assert_eq!(m.application_properties["tenant"], "acme");
        assert!(m.enqueued_at.is_some());
    }

    #[test]
    fn body_fields_shadowing_metadata_are_not_trusted() {
        let body = r#"{"deliveryCount":99,"messageId":"evil"}"#;
        let env = json!({"Data":{"msg": serde_json::to_string(body).expect("enc")},
            "Metadata":{"DeliveryCount":"\"99\"","MessageId":"\"evil\"","SequenceNumber":"5"}});
        let inv = Invocation::parse(env.to_string().as_bytes()).expect("parse");
        let m = ServiceBusMessage::from_invocation(&inv, "msg").expect("message");
        assert_eq!(m.receives, None);
        assert_eq!(m.message_id, None);
        assert_eq!(m.sequence_number, Some(5));
    }

    #[test]
    fn single_encoded_and_plain_bodies() {
        assert_eq!(body_text(&json!("{\"a\":1}")), "{\"a\":1}");
        assert_eq!(body_text(&json!("hello")), "hello");
        assert_eq!(body_text(&json!("\"hello\"")), "hello");
        assert_eq!(body_text(&json!({"a":1})), "{\"a\":1}");
        assert_eq!(body_text(&Value::Null), "");
    }

    #[test]
    fn undecodable_bodies_are_rejected() {
        let e = decode_json::<std::collections::BTreeMap<String, u32>>("{\"a\":\"x\"}")
            .expect_err("bad");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains('a'));
    }
}
