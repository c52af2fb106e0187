//! Invocation payloads the emulated host builds: timer, Service Bus and
//! RabbitMQ envelopes with the host's value conversion
//! (`docs/functions-protocol.md` §5, §8).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::definitions::FunctionDef;

/// How a Service Bus output binding turns a value into message bodies (§6.5):
/// arrays → one message per element, objects → indented JSON text.
pub fn service_bus_bodies(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(service_bus_bodies).collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![serde_json::to_string_pretty(other).expect("json")],
    }
}

/// `GetHttpScriptInvocationContextValue` for scalars (§5.3): a .NET string
/// or number passed through `JsonConvert.SerializeObject`.
pub fn enc(v: impl serde::Serialize) -> Value {
    Value::String(serde_json::to_string(&v).expect("json"))
}

/// A `DateTime` (Utc kind): ISO, no offset, whole seconds (§5.4).
pub fn datetime(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// A `DateTimeOffset`: with `+00:00`, whole seconds.
pub fn datetime_offset(t: DateTime<Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
}

/// `Utility.ApplyBindingData` (§5.5): a JSON-object trigger body's top-level
/// non-array properties overwrite same-named metadata, case-insensitively
/// (objects as objects, the rest via `(string)token`).
pub fn leak_body_into(meta: &mut Map<String, Value>, body: &str) {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return;
    };
    for (k, v) in fields {
        let value = match v {
            Value::Array(_) | Value::Null => continue,
            Value::Object(_) => v,
            Value::String(s) => enc(s),
            Value::Bool(b) => enc(if b { "True" } else { "False" }),
            Value::Number(n) => enc(n.to_string()),
        };
        let existing = meta
            .keys()
            .find(|key| key.eq_ignore_ascii_case(&k))
            .cloned();
        meta.insert(existing.unwrap_or(k), value);
    }
}

pub(crate) fn finish_metadata(mut meta: Map<String, Value>, function: &str) -> Value {
    meta.insert(
        "sys".into(),
        json!({"MethodName": function, "UtcNow": Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true), "RandGuid": uuid::Uuid::new_v4().to_string()}),
    );
    // Null values are omitted; keys ending in "trigger" are dropped (§5.2).
    meta.retain(|k, v| !v.is_null() && !k.to_ascii_lowercase().ends_with("trigger"));
    Value::Object(meta)
}

/// A timer invocation body (§8.1).
pub fn timer_envelope(def: &FunctionDef, past_due: bool, with_status: bool) -> Value {
    let now = Utc::now();
    let status = if with_status {
        json!({
            "Last": (now - chrono::Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Nanos, false),
            "Next": (now + chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            "LastUpdated": now.to_rfc3339_opts(SecondsFormat::Nanos, false),
        })
    } else {
        Value::Null
    };
    let mut data = Map::new();
    data.insert(
        def.trigger()["name"].as_str().expect("name").to_owned(),
        json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": status, "IsPastDue": past_due}),
    );
    let mut meta = Map::new();
    meta.insert(
        "TimerTrigger".into(),
        enc(now.format("%m/%d/%Y %H:%M:%S").to_string()),
    );
    json!({"Data": data, "Metadata": finish_metadata(meta, &def.name)})
}

/// A message on an emulated queue.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub body: String,
    pub message_id: String,
    pub sequence_number: i64,
    pub enqueued: DateTime<Utc>,
    pub application_properties: Map<String, Value>,
}

impl QueueMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            message_id: uuid::Uuid::new_v4().simple().to_string(),
            sequence_number: 42,
            enqueued: Utc::now(),
            application_properties: Map::new(),
        }
    }
}

/// A Service Bus invocation body (§8.2), for a given delivery count.
pub fn service_bus_envelope(def: &FunctionDef, m: &QueueMessage, delivery_count: u32) -> Value {
    let mut data = Map::new();
    data.insert(
        def.trigger()["name"].as_str().expect("name").to_owned(),
        enc(&m.body),
    );
    let mut meta = Map::new();
    for k in [
        "MessageReceiver",
        "MessageSession",
        "MessageActions",
        "SessionActions",
        "ReceiveActions",
    ] {
        meta.insert(k.into(), json!({}));
    }
    meta.insert(
        "Client".into(),
        json!({"FullyQualifiedNamespace": "castiel-test.servicebus.windows.net", "IsClosed": false, "TransportType": 0, "Identifier": "castiel-test-1"}),
    );
    meta.insert("DeliveryCount".into(), enc(delivery_count));
    meta.insert("LockToken".into(), enc(uuid::Uuid::new_v4().to_string()));
    let expires = m.enqueued + chrono::Duration::days(14);
    meta.insert("ExpiresAtUtc".into(), datetime(expires));
    meta.insert("ExpiresAt".into(), datetime_offset(expires));
    meta.insert("EnqueuedTimeUtc".into(), datetime(m.enqueued));
    meta.insert("EnqueuedTime".into(), datetime_offset(m.enqueued));
    meta.insert("MessageId".into(), enc(&m.message_id));
    meta.insert("SequenceNumber".into(), enc(m.sequence_number));
    meta.insert(
        "ApplicationProperties".into(),
        Value::Object(m.application_properties.clone()),
    );
    meta.insert(
        "UserProperties".into(),
        Value::Object(m.application_properties.clone()),
    );
    meta.insert("ContentType".into(), Value::Null);
    leak_body_into(&mut meta, &m.body);
    json!({"Data": data, "Metadata": finish_metadata(meta, &def.name)})
}

/// A RabbitMQ invocation body (§8.3, [derived]); `requeue_count` is the
/// extension's `x-ms-rabbitmq-requeuecount` header (absent on first delivery).
pub fn rabbitmq_envelope(def: &FunctionDef, m: &QueueMessage, requeue_count: Option<u32>) -> Value {
    let mut data = Map::new();
    data.insert(
        def.trigger()["name"].as_str().expect("name").to_owned(),
        enc(&m.body),
    );
    let queue = def.trigger()["queueName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let headers = requeue_count.map_or(Value::Null, |n| json!({"x-ms-rabbitmq-requeuecount": n}));
    let mut meta = Map::new();
    meta.insert("ConsumerTag".into(), enc("amq.ctag-test"));
    meta.insert("DeliveryTag".into(), enc(1));
    meta.insert("Redelivered".into(), enc(false));
    meta.insert("Exchange".into(), enc(""));
    meta.insert("RoutingKey".into(), enc(queue));
    meta.insert(
        "BasicProperties".into(),
        json!({"Headers": headers, "MessageId": m.message_id, "DeliveryMode": 2}),
    );
    leak_body_into(&mut meta, &m.body);
    json!({"Data": data, "Metadata": finish_metadata(meta, &def.name)})
}
