//! Reading records out of a custom API's answers: the records array at
//! `recordsPointer`, each record's id (`idField`, a string or a number) and
//! change time (`updatedAtField`, RFC 3339 text or unix seconds).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::super::{AdapterError, AdapterResult, FieldInfo, Record};
use crate::features::integrations::custom_api::ListCall;

/// The records array at `pointer` (`""`: the answer itself). `null` there
/// is an empty page; anything else that is not an array is a bad answer.
pub fn array<'a>(body: &'a Value, pointer: &str) -> AdapterResult<&'a [Value]> {
    match body.pointer(pointer) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) => Ok(&[]),
        Some(_) => Err(AdapterError::BadAnswer(format!(
            "the records pointer {pointer:?} does not point to an array"
        ))),
        None => Err(AdapterError::BadAnswer(format!(
            "the answer has nothing at the records pointer {pointer:?}"
        ))),
    }
}

/// One record of a listing or a read.
pub fn record(list: &ListCall, value: &Value) -> AdapterResult<Record> {
    let Value::Object(fields) = value else {
        return Err(AdapterError::BadAnswer(
            "a record is not a JSON object".into(),
        ));
    };
    let id = id_of(fields, &list.id_field).ok_or_else(|| {
        AdapterError::BadAnswer(format!(
            "a record has no usable id in {:?} (a string or a number)",
            list.id_field
        ))
    })?;
    let modified_at = list
        .updated_at_field
        .as_deref()
        .and_then(|f| fields.get(f))
        .and_then(timestamp);
    Ok(Record {
        id,
        modified_at,
        fields: fields.clone(),
    })
}

/// The id: a non-empty string, or a number written out.
pub fn id_of(fields: &Map<String, Value>, field: &str) -> Option<String> {
    match fields.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A change time: RFC 3339 text (also `+0000`-style offsets), or unix
/// seconds (integer or fractional).
pub fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => {
            if let Some(secs) = n.as_i64() {
                DateTime::from_timestamp(secs, 0)
            } else {
                let f = n.as_f64()?;
                if !f.is_finite() {
                    return None;
                }
                let secs = f.floor();
                let nanos = ((f - secs) * 1e9).round().clamp(0.0, 999_999_999.0);
                DateTime::from_timestamp(secs as i64, nanos as u32)
            }
        }
        _ => None,
    }
}

/// The fields of one record, with types inferred from their values: what
/// `describe` can say of an API that publishes no schema (which fields a
/// create needs is not known: none is marked required).
pub fn infer_fields(record: &Map<String, Value>) -> Vec<FieldInfo> {
    record
        .iter()
        .map(|(name, value)| FieldInfo {
            name: name.clone(),
            label: name.clone(),
            kind: kind_of(value).into(),
            required: false,
        })
        .collect()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::String(s) if is_datetime(s) => "datetime",
        Value::String(s) if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => "date",
        Value::Null | Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_datetime(s: &str) -> bool {
    timestamp(&Value::String(s.to_owned())).is_some()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list() -> ListCall {
        serde_json::from_value(json!({
            "path": "/x", "recordsPointer": "/data", "idField": "id", "updatedAtField": "updated"
        }))
        .expect("list call")
    }

    #[test]
    fn ids_and_times_are_read() {
        let r = record(&list(), &json!({"id": 42, "updated": 1_700_000_000})).expect("record");
        assert_eq!(r.id, "42");
        assert_eq!(
            r.modified_at.map(|t| t.to_rfc3339()),
            Some("2023-11-14T22:13:20+00:00".into())
        );
        let r = record(
            &list(),
            &json!({"id": "a", "updated": "2024-05-01T10:00:00.000+0000"}),
        )
        .expect("record");
        assert_eq!(
            r.modified_at.map(|t| t.to_rfc3339()),
            Some("2024-05-01T10:00:00+00:00".into())
        );
        assert!(record(&list(), &json!({"id": ""})).is_err());
        assert!(record(&list(), &json!({"id": true})).is_err());
        assert!(record(&list(), &json!([1])).is_err());
    }

    #[test]
    fn the_records_pointer_must_reach_an_array() {
        let body = json!({"data": [1], "meta": {}});
        assert_eq!(array(&body, "/data").expect("array").len(), 1);
        assert!(array(&body, "/meta").is_err());
        assert!(array(&body, "/nothing").is_err());
        assert!(
            array(&json!({"data": null}), "/data")
                .expect("empty")
                .is_empty()
        );
        assert_eq!(array(&json!([1, 2]), "").expect("root").len(), 2);
    }

    #[test]
    fn field_types_are_inferred() {
        let Value::Object(rec) =
            json!({"id": "a", "n": 1.5, "d": "2024-01-02", "t": "2024-01-02T03:04:05Z", "b": true})
        else {
            unreachable!()
        };
        let kinds: Vec<(String, String)> = infer_fields(&rec)
            .into_iter()
            .map(|f| (f.name, f.kind))
            .collect();
        assert!(kinds.contains(&("n".into(), "number".into())));
        assert!(kinds.contains(&("d".into(), "date".into())));
        assert!(kinds.contains(&("t".into(), "datetime".into())));
        assert!(kinds.contains(&("b".into(), "boolean".into())));
        assert!(kinds.contains(&("id".into(), "string".into())));
    }
}
