//! Extractors that turn raw input into typed values or a 400 naming every
//! bad field: JSON bodies, list query strings, `If-Match`, `Idempotency-Key`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use utoipa::PartialSchema;
use utoipa::openapi::{RefOr, Schema};

use super::error::ApiError;
use crate::domain::pages::PageRequest;
use crate::domain::validation::{Violations, escape_token};
use crate::platform::store::ETag;

/// The largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A request body type: its schema tells which fields are required.
pub trait ApiInput: DeserializeOwned + PartialSchema {
    /// Fields that the server owns: named in the error instead of "unknown field".
    const READ_ONLY: &'static [&'static str] = &[];
}

/// A JSON body parsed into `T`, with the SHA-256 of its bytes.
#[derive(Debug)]
pub struct Valid<T> {
    /// The parsed body.
    pub value: T,
    /// Digest of the raw body (idempotency fingerprint).
    pub digest: [u8; 32],
}

fn is_json(parts: &axum::http::HeaderMap) -> bool {
    parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<S, T> FromRequest<S> for Valid<T>
where
    S: Send + Sync,
    T: ApiInput,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else if timed_out(&r) {
                ApiError::request_timeout()
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(Violations::one(
                "",
                "a JSON object body is required",
            )));
        }
        let value = super::json::parse_strict(&bytes).map_err(ApiError::invalid)?;
        let value = parse_value::<T>(value, &required_fields::<T>(), T::READ_ONLY)?;
        Ok(Self { value, digest })
    }
}

/// `8168.0` is the integer 8168 in JSON (and JSON Schema): numbers with no
/// fractional part are made integers before typed parsing, which would
/// otherwise refuse them where an integer is expected.
fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "integral and within f64's exact integer range"
                )]
                let i = f as i64;
                *value = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn required_fields<T: PartialSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(o)) => o.required.clone(),
        _ => Vec::new(),
    }
}

/// Deserializes `value` as `T`, collecting every unknown, read-only, missing
/// and wrongly typed field it can find (not only the first).
///
/// After each error the offending field is removed and deserialization is
/// retried. A field inside an array element cannot be removed without
/// shifting the pointers of its siblings, so the nearest enclosing field of
/// an object is pruned instead (only the first error of an array is named).
pub fn parse_value<T: DeserializeOwned>(
    mut value: Value,
    required: &[String],
    read_only: &[&str],
) -> Result<T, Violations> {
    integral_floats_as_integers(&mut value);
    let mut v = Violations::default();
    let Some(obj) = value.as_object_mut() else {
        return Err(Violations::one("", "must be a JSON object"));
    };
    for f in read_only {
        if obj.remove(*f).is_some() {
            v.add(
                format!("/{}", escape_token(f)),
                "is set by the server and cannot be written",
            );
        }
    }
    for f in required {
        if obj.get(f).is_none_or(Value::is_null) {
            v.add(format!("/{}", escape_token(f)), "is required");
        }
    }
    let mut pruned: Vec<String> = Vec::new();
    let is_pruned = |pruned: &[String], p: &str| {
        pruned.iter().any(|x| {
            p == x
                || p.strip_prefix(x.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    };
    for _ in 0..64 {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) if v.is_empty() => return Ok(parsed),
            Ok(_) => return Err(v),
            Err(e) => e,
        };
        let mut pointer = String::new();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&escape_token(key));
                }
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push_str(&format!("/{index}"));
                }
                _ => {}
            }
        }
        let msg = err.inner().to_string();
        // The pointer whose removal lets deserialization go further.
        let culprit = if let Some(field) = quoted_after(&msg, "unknown field `") {
            let tail = format!("/{}", escape_token(&field));
            if !pointer.ends_with(&tail) {
                pointer.push_str(&tail);
            }
            v.add(&pointer, "unknown field");
            pointer
        } else if let Some(field) = quoted_after(&msg, "missing field `") {
            let missing = format!("{pointer}/{}", escape_token(&field));
            if !is_pruned(&pruned, &missing) {
                v.add(missing, "is required");
            }
            // The struct lacking the field goes.
            pointer
        } else {
            v.add(&pointer, clean_message(&msg));
            pointer
        };
        match prune(&mut value, &culprit) {
            Some(removed) => pruned.push(removed),
            None => return Err(v),
        }
    }
    Err(v)
}

fn quoted_after(msg: &str, prefix: &str) -> Option<String> {
    let rest = &msg[msg.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_owned())
}

fn clean_message(msg: &str) -> String {
    // serde's messages are precise ("invalid type: string \"x\", expected u32"); keep
    // them but drop the position suffix, which refers to an internal value.
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}

/// Removes the value at `pointer`, or the nearest ancestor that is a field of
/// an object; returns the pointer removed (`None`: nothing removable).
fn prune(value: &mut Value, pointer: &str) -> Option<String> {
    let mut p = pointer;
    loop {
        let (parent, last) = p.rsplit_once('/')?;
        match value.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                let key = last.replace("~1", "/").replace("~0", "~");
                return m.remove(&key).map(|_| p.to_owned());
            }
            Some(Value::Array(_)) => p = parent,
            _ => return None,
        }
    }
}

/// The query string as name → value, checked by [`QueryParams::finish`].
#[derive(Debug)]
pub struct QueryParams {
    params: HashMap<String, String>,
    violations: Violations,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("the query string is malformed"))?;
        Ok(Self {
            params,
            violations: Violations::default(),
        })
    }
}

impl QueryParams {
    /// A text parameter (1–200 characters).
    pub fn text(&mut self, name: &str) -> Option<String> {
        let v = self.params.remove(name)?;
        if v.is_empty() || v.chars().count() > 200 {
            self.violations.add(
                format!("/{name}"),
                format!("query parameter {name} must have 1 to 200 characters"),
            );
            return None;
        }
        Some(v)
    }

    /// A parameter parsed as a JSON string enum / scalar (`status=pending`, `enabled=true`).
    pub fn parse<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        let raw = self.params.remove(name)?;
        let as_json = serde_json::from_str::<Value>(&raw)
            .ok()
            .filter(|v| v.is_boolean() || v.is_number());
        let value = as_json.unwrap_or(Value::String(raw.clone()));
        match serde_json::from_value(value) {
            Ok(t) => Some(t),
            Err(e) => {
                self.violations.add(
                    format!("/{name}"),
                    format!("query parameter {name}: {}", clean_message(&e.to_string())),
                );
                None
            }
        }
    }

    /// `limit` (1–200, default 50) and `continuationToken`.
    pub fn page(&mut self) -> PageRequest {
        let mut page = PageRequest::default();
        if let Some(raw) = self.params.remove("limit") {
            match raw.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => page.limit = n,
                _ => self.violations.add(
                    "/limit",
                    "query parameter limit must be a whole number from 1 to 200",
                ),
            }
        }
        if let Some(token) = self.params.remove("continuationToken") {
            if token.is_empty() || token.len() > 8192 {
                self.violations.add(
                    "/continuationToken",
                    "is not a continuation token of this list",
                );
            } else {
                page.continuation = Some(token);
            }
        }
        page
    }

    /// Fails with every bad or unknown parameter.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut unknown: Vec<_> = self.params.keys().cloned().collect();
        unknown.sort();
        for name in unknown {
            self.violations.add(
                format!("/{}", escape_token(&name)),
                format!("unknown query parameter {name}"),
            );
        }
        self.violations.into_result().map_err(ApiError::invalid)
    }
}

/// Path parameters, as axum's `Path` reads them, but a segment it cannot
/// read (invalid UTF-8 once percent-decoded) names nothing: 404
/// problem+json, like an id that is not a UUID, never axum's plain-text 400.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// The `If-Match` header, when present (`*` means "any version": no check).
#[derive(Debug, Clone, Default)]
pub struct IfMatch(pub Option<ETag>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let raw = raw
            .to_str()
            .map_err(|_| ApiError::bad_request("If-Match is not valid text"))?
            .trim();
        if raw == "*" {
            return Ok(Self(None));
        }
        let tag = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
        if tag.is_empty() || tag.contains(',') {
            return Err(ApiError::invalid(Violations::one(
                "",
                "If-Match must hold one ETag",
            )));
        }
        Ok(Self(Some(ETag::new(tag))))
    }
}

impl IfMatch {
    /// The ETag, if any.
    pub fn etag(&self) -> Option<&ETag> {
        self.0.as_ref()
    }
}

/// The `Idempotency-Key` header, when present (1–255 visible ASCII characters).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = raw
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
            })?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// Whether reading a body failed because it did not arrive in time (the
/// server's body timeout, `HTTP_BODY_TIMEOUT_SECONDS`).
fn timed_out(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[expect(dead_code, reason = "fields are only deserialized")]
    struct Input {
        name: String,
        count: u32,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields are only deserialized")]
    struct Inner {
        flag: bool,
    }

    fn pointers(value: Value) -> Vec<String> {
        let required = required_fields::<Input>();
        match parse_value::<Input>(value, &required, &["id"]) {
            Ok(_) => vec![],
            Err(v) => v.as_slice().iter().map(|x| x.pointer.clone()).collect(),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let p = pointers(
            serde_json::json!({"count": "x", "extra": 1, "id": "a", "inner": {"flag": 3, "more": 1}}),
        );
        for want in [
            "/id",
            "/name",
            "/count",
            "/extra",
            "/inner/flag",
            "/inner/more",
        ] {
            assert!(p.contains(&want.to_owned()), "{want} missing from {p:?}");
        }
    }

    #[test]
    fn good_input_passes() {
        assert!(pointers(serde_json::json!({"name": "a", "count": 1})).is_empty());
    }
}
