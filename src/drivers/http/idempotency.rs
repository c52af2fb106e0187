//! `Idempotency-Key` on creates (SPEC §5): the first answer is kept for 24 h
//! and replayed to retries of the same request; the same key with another
//! body is refused. Records live in the outbox container, in the tenant's
//! partition, with a TTL.
//!
//! A record never holds a secret: a field named `secret` (a webhook's, shown
//! once by its create) is left out of what is kept, so a replayed create
//! answers without it. The secret store is the only place secrets live; a
//! caller who lost the secret rotates it.

use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::error::ApiError;
use super::extract::IdempotencyKey;
use crate::app::App;
use crate::domain::tenancy::Ctx;
use crate::error::Error;
use crate::platform::store::{Container, StoreError};

/// How long an answer is replayed.
const KEEP_SECONDS: i64 = 24 * 3600;
/// How long an unfinished request holds its key (a crash frees it).
const PENDING_SECONDS: i64 = 60;
/// The field of an answer that is never kept for a replay.
const WITHHELD: &str = "secret";
/// Replayed response headers.
const KEPT_HEADERS: [HeaderName; 2] = [header::LOCATION, header::ETAG];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `op` at most once per (tenant, route, key), replaying its answer.
pub async fn idempotent<F, Fut>(
    app: &App,
    ctx: &Ctx,
    key: &IdempotencyKey,
    route: &str,
    digest: &[u8; 32],
    op: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let Some(key) = &key.0 else { return op().await };
    let tenant = ctx.tenant().key();
    let id = format!(
        "idem-{}",
        hex(&Sha256::digest(format!("{tenant}|{route}|{key}")))
    );
    let fingerprint = hex(digest);
    let pending = json!({
        "id": id, "tenantId": tenant, "kind": "idempotency", "state": "pending",
        "fingerprint": fingerprint, "ttl": PENDING_SECONDS,
    });
    match app.store.create(Container::Outbox, pending).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => return replay(app, &tenant, &id, &fingerprint).await,
        Err(e) => return Err(Error::from(e).into()),
    }
    let result = op().await;
    let response = match result {
        Ok(res) if res.status().is_success() => res,
        other => {
            // Nothing was created: free the key so a corrected request can use it.
            if let Err(e) = app
                .store
                .delete(Container::Outbox, &tenant, &id, None)
                .await
            {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
            return other;
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let mut body_json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some(fields) = body_json.as_object_mut() {
        fields.remove(WITHHELD);
    }
    let headers: serde_json::Map<String, Value> = KEPT_HEADERS
        .iter()
        .filter_map(|h| {
            Some((
                h.as_str().to_owned(),
                json!(parts.headers.get(h)?.to_str().ok()?),
            ))
        })
        .collect();
    let done = json!({
        "id": id, "tenantId": tenant, "kind": "idempotency", "state": "done",
        "fingerprint": fingerprint, "status": parts.status.as_u16(), "headers": headers,
        "body": body_json, "ttl": KEEP_SECONDS,
    });
    if let Err(e) = app.store.upsert(Container::Outbox, done).await {
        tracing::warn!(error = %e, "could not record an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

async fn replay(
    app: &App,
    tenant: &str,
    id: &str,
    fingerprint: &str,
) -> Result<Response, ApiError> {
    let doc = app
        .store
        .read(Container::Outbox, tenant, id)
        .await
        .map_err(Error::from)?;
    let Some(doc) = doc else {
        return Err(Error::Conflict(
            "a request with this Idempotency-Key just finished; retry it".into(),
        )
        .into());
    };
    let rec = doc.body;
    if rec["fingerprint"].as_str() != Some(fingerprint) {
        return Err(Error::Conflict(
            "this Idempotency-Key was used with a different request".into(),
        )
        .into());
    }
    if rec["state"] != "done" {
        return Err(Error::Conflict(
            "a request with this Idempotency-Key is still in progress".into(),
        )
        .into());
    }
    let status = rec["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    let mut res = (
        status.unwrap_or(StatusCode::OK),
        axum::Json(rec["body"].clone()),
    )
        .into_response();
    if let Some(h) = rec["headers"].as_object() {
        for (name, value) in h {
            if let (Ok(n), Some(Ok(v))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                res.headers_mut().insert(n, v);
            }
        }
    }
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(res)
}
