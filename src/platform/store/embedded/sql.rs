//! Store queries translated to SQLite: filters on `json_extract` paths, one
//! sort key with `(pk, id)` tie-break, and keyset continuation tokens bound to
//! the query that issued them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};

use super::LIVE;
use crate::platform::store::query::{Op, Query, Scope};
use crate::platform::store::{Container, StoreError, StoreResult};

/// A query translated to SQLite, with its parameters.
pub(super) struct SqlQuery {
    /// The statement, ending in `LIMIT n` (one more than the page size).
    pub(super) text: String,
    /// Its parameters, in order.
    pub(super) params: Vec<SqlValue>,
    /// The query's shape hash, bound into its continuation tokens.
    pub(super) fingerprint: u64,
}

fn json_path(field: &str) -> String {
    format!("'$.{field}'")
}

fn sql_value(v: &Value) -> StoreResult<SqlValue> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        _ => return Err(StoreError::Invalid("filters compare scalars only".into())),
    })
}

fn json_of(v: &SqlValue) -> Value {
    match v {
        SqlValue::Integer(i) => json!(i),
        SqlValue::Real(f) => json!(f),
        SqlValue::Text(s) => json!(s),
        SqlValue::Null | SqlValue::Blob(_) => Value::Null,
    }
}

fn fingerprint(container: Container, query: &Query) -> u64 {
    // FNV-1a over the query's shape: a token only continues the query that issued it.
    let shape = format!(
        "{}|{:?}|{:?}|{:?}",
        container.name(),
        query.scope,
        query.filters,
        query.order_by
    );
    shape.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn encode_token(fp: u64, sort: &SqlValue, pk: &str, id: &str) -> String {
    let raw = json!({ "f": format!("{fp:x}"), "s": json_of(sort), "p": pk, "i": id });
    URL_SAFE_NO_PAD.encode(raw.to_string())
}

fn decode_token(fp: u64, token: &str) -> StoreResult<(SqlValue, String, String)> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::InvalidContinuation)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidContinuation)?;
    if v.get("f").and_then(Value::as_str) != Some(format!("{fp:x}").as_str()) {
        return Err(StoreError::InvalidContinuation);
    }
    let sort = sql_value(v.get("s").unwrap_or(&Value::Null))
        .map_err(|_| StoreError::InvalidContinuation)?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(StoreError::InvalidContinuation)
    };
    Ok((sort, text("p")?, text("i")?))
}

impl SqlQuery {
    pub(super) fn build(container: Container, query: &Query, now_ms: i64) -> StoreResult<Self> {
        query.validate().map_err(StoreError::Invalid)?;
        let mut text = String::from("SELECT pk, id, etag, body, ");
        let mut params: Vec<SqlValue> = Vec::new();
        let sort_expr = match &query.order_by {
            Some(o) => format!("ifnull(json_extract(body, {}), '')", json_path(&o.field)),
            None => "id".to_owned(),
        };
        text.push_str(&sort_expr);
        text.push_str(" AS sort_key FROM documents WHERE container = ? AND ");
        text.push_str(LIVE);
        params.push(SqlValue::Text(container.name().to_owned()));
        params.push(SqlValue::Integer(now_ms));
        if let Scope::Partition(pk) = &query.scope {
            text.push_str(" AND pk = ?");
            params.push(SqlValue::Text(pk.clone()));
        }
        for f in &query.filters {
            let path = json_path(&f.field);
            let x = format!("json_extract(body, {path})");
            let clause = match f.op {
                Op::Eq if f.value.is_null() => format!("{x} IS NULL"),
                Op::Eq => format!("{x} = ?"),
                Op::Ne => format!("{x} != ?"),
                Op::Lt => format!("{x} < ?"),
                Op::Lte => format!("{x} <= ?"),
                Op::Gt => format!("{x} > ?"),
                Op::Gte => format!("{x} >= ?"),
                Op::ContainsText => format!("instr(lower({x}), lower(?)) > 0"),
                Op::ArrayContains => {
                    format!(
                        "EXISTS (SELECT 1 FROM json_each(body, {path}) WHERE json_each.value = ?)"
                    )
                }
                Op::IsDefined => format!("ifnull(json_type(body, {path}), 'null') != 'null'"),
                Op::IsUndefined => format!("ifnull(json_type(body, {path}), 'null') = 'null'"),
                Op::In => {
                    let values = f.value.as_array().map(Vec::as_slice).unwrap_or_default();
                    if values.is_empty() {
                        "0".to_owned()
                    } else {
                        for v in values {
                            params.push(sql_value(v)?);
                        }
                        format!("{x} IN ({})", vec!["?"; values.len()].join(", "))
                    }
                }
            };
            let takes_value = !(matches!(f.op, Op::IsDefined | Op::IsUndefined | Op::In)
                || (f.op == Op::Eq && f.value.is_null()));
            if takes_value {
                params.push(sql_value(&f.value)?);
            }
            text.push_str(" AND ");
            text.push_str(&clause);
        }
        let descending = query.order_by.as_ref().is_some_and(|o| o.descending);
        let (cmp, dir) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let fp = fingerprint(container, query);
        if let Some(token) = &query.continuation {
            let (sort, pk, id) = decode_token(fp, token)?;
            text.push_str(&format!(
                " AND (({sort_expr}) {cmp} ? OR (({sort_expr}) = ? AND (pk, id) {cmp} (?, ?)))"
            ));
            params.extend([sort.clone(), sort, SqlValue::Text(pk), SqlValue::Text(id)]);
        }
        text.push_str(&format!(" ORDER BY sort_key {dir}, pk {dir}, id {dir}"));
        // The limit is part of the text, not a parameter: SQLite (3.50)
        // recompiles a statement whose LIMIT is bound on every execution,
        // which cost more than the query itself.
        text.push_str(&format!(" LIMIT {}", u64::from(query.max_items) + 1));
        Ok(Self {
            text,
            params,
            fingerprint: fp,
        })
    }
}
