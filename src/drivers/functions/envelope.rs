//! The custom-handler invocation envelope: `{"Data":{..},"Metadata":{..}}` in,
//! `{"Outputs":{..},"Logs":[..],"ReturnValue":..}` out.
//!
//! Decoding follows `docs/functions-protocol.md` §5 (the host's value
//! conversion): scalars and trigger bodies arrive as JSON strings holding
//! JSON (`"DeliveryCount":"1"`, `"MessageId":"\"m-123\""`), top-level
//! `DateTime`s have no offset and whole seconds, keys are case-insensitive on
//! the host side, and a JSON trigger body's top-level fields leak into
//! `Metadata`, overwriting same-named keys. Every accessor here tolerates
//! both the encoded and the plain form.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Why an invocation body could not be read (answered with 400: the host
/// itself sent something no retry can fix).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Zero bytes (or only whitespace).
    #[error("the invocation body is empty")]
    Empty,
    /// Not JSON.
    #[error("the invocation body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the invocation body is not a JSON object")]
    NotObject,
    /// `Data` holds no value for the trigger binding.
    #[error("`Data` has no value for the trigger binding `{0}`")]
    MissingBinding(String),
}

/// A decoded invocation request.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    data: Map<String, Value>,
    metadata: Map<String, Value>,
}

/// `Value::String` holding JSON → that JSON; anything else unchanged
/// (`docs/functions-protocol.md` §5.3).
pub fn host_unwrap(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// Case-insensitive key lookup (the host's dictionaries ignore case).
pub fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn object(v: &Value) -> Option<Map<String, Value>> {
    match host_unwrap(v) {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

impl Invocation {
    /// Parses the request body. Missing `Data`/`Metadata` read as empty;
    /// adapters then report the missing trigger value.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(EnvelopeError::Empty);
        }
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let root = object(&v).ok_or(EnvelopeError::NotObject)?;
        let part = |name: &str| get_ci(&root, name).and_then(object).unwrap_or_default();
        Ok(Self {
            data: part("Data"),
            metadata: part("Metadata"),
        })
    }

    /// Builds an invocation from its parts (tests, local drivers).
    pub fn from_parts(data: Map<String, Value>, metadata: Map<String, Value>) -> Self {
        Self { data, metadata }
    }

    /// The raw `Data` value of a binding; when the name is not found and
    /// `Data` has exactly one entry, that entry (the trigger).
    pub fn binding(&self, name: &str) -> Result<&Value, EnvelopeError> {
        get_ci(&self.data, name)
            .or_else(|| {
                (self.data.len() == 1)
                    .then(|| self.data.values().next())
                    .flatten()
            })
            .ok_or_else(|| EnvelopeError::MissingBinding(name.to_owned()))
    }

    /// A metadata value, unwrapped once.
    pub fn meta(&self, key: &str) -> Option<Value> {
        get_ci(&self.metadata, key)
            .map(host_unwrap)
            .filter(|v| !v.is_null())
    }

    /// A metadata object (`ApplicationProperties`, `BasicProperties`, `sys`).
    pub fn meta_object(&self, key: &str) -> Option<Map<String, Value>> {
        get_ci(&self.metadata, key).and_then(object)
    }

    /// A metadata scalar as text.
    pub fn meta_str(&self, key: &str) -> Option<String> {
        scalar_str(&self.meta(key)?)
    }

    /// A metadata scalar as an integer (`"4"`, `4`, `"\"4\""`).
    pub fn meta_i64(&self, key: &str) -> Option<i64> {
        scalar_i64(&self.meta(key)?)
    }

    /// A metadata scalar as a boolean (`"true"`, `true`).
    pub fn meta_bool(&self, key: &str) -> Option<bool> {
        scalar_bool(&self.meta(key)?)
    }

    /// A metadata timestamp (with or without offset; no offset means UTC).
    pub fn meta_time(&self, key: &str) -> Option<DateTime<Utc>> {
        parse_time(&self.meta_str(key)?)
    }

    /// `Metadata.sys.UtcNow`, the host's invocation time.
    pub fn utc_now(&self) -> Option<DateTime<Utc>> {
        let sys = self.meta_object("sys")?;
        parse_time(&scalar_str(&host_unwrap(get_ci(&sys, "UtcNow")?))?)
    }
}

/// A scalar JSON value as text (numbers and booleans spelled out).
pub fn scalar_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A scalar JSON value as an integer.
pub fn scalar_i64(v: &Value) -> Option<i64> {
    match host_unwrap(v) {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A scalar JSON value as a boolean.
pub fn scalar_bool(v: &Value) -> Option<bool> {
    match host_unwrap(v) {
        Value::Bool(b) => Some(b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses the host's timestamps: RFC 3339 with offset, ISO without offset
/// (UTC, `docs/functions-protocol.md` §5.4), or .NET's invariant `MM/dd/yyyy HH:mm:ss`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%m/%d/%Y %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|n| n.and_utc())
}

/// The handler's answer to a successful invocation (`docs/functions-protocol.md` §6.1): always
/// a JSON object, never empty.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct InvocationReply {
    /// Values for output bindings, by binding name (case-sensitive).
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    /// Lines the host logs at Information in the invocation's scope.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// For a `$return` binding; none of ours has one.
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unwraps_double_encoded_scalars() {
        let inv = Invocation::parse(
            br#"{"Data":{"msg":"\"x\""},"Metadata":{"DeliveryCount":"3","MessageId":"\"m-1\"","Flag":"true","N":7}}"#,
        )
        .expect("parse");
        assert_eq!(inv.meta_i64("deliverycount"), Some(3));
        assert_eq!(inv.meta_str("MessageId").as_deref(), Some("m-1"));
        assert_eq!(inv.meta_bool("flag"), Some(true));
        assert_eq!(inv.meta_i64("N"), Some(7));
        assert_eq!(inv.binding("other").expect("single"), &json!("\"x\""));
    }

    #[test]
    fn times_with_and_without_offset() {
        let a = parse_time("2025-05-01T12:00:00").expect("naive");
        let b = parse_time("2025-05-01T12:00:00+00:00").expect("offset");
        let c = parse_time("2025-05-01T12:00:00.0123456Z").expect("fraction");
        assert_eq!(a, b);
        assert!(c > a);
        assert_eq!(parse_time("05/01/2025 12:00:00"), Some(a));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(
            Invocation::parse(b"").expect_err("empty"),
            EnvelopeError::Empty
        );
        assert_eq!(
            Invocation::parse(b" \n").expect_err("blank"),
            EnvelopeError::Empty
        );
        assert!(matches!(
            Invocation::parse(b"{\"Data\":"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(
            Invocation::parse(b"[1,2]").expect_err("array"),
            EnvelopeError::NotObject
        );
        let empty = Invocation::parse(b"{}").expect("object");
        assert!(matches!(
            empty.binding("timer"),
            Err(EnvelopeError::MissingBinding(_))
        ));
    }

    #[test]
    fn reply_serializes_with_host_names() {
        let v = serde_json::to_value(InvocationReply::default()).expect("json");
        assert_eq!(v, json!({"Outputs":{},"Logs":[],"ReturnValue":null}));
    }
}
