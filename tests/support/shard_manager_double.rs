//! An in-process Castiel shard-manager (reference Appendix A.1 and §3.10):
//!
//! - `POST /api/v1/shards` body `shardTypeId` (uuid) and `structuredData`
//!   (object) required; optional `shardTypeName`, `metadata`, `source`,
//!   `sourceDetails`, … → 201 with the shard, whose `id` it generates (it
//!   takes none), `revisionNumber` 1, a `revisionId`, `status: "active"`;
//! - `GET /api/v1/shards/{id}` → the tenant's shard, else 404;
//! - `PUT /api/v1/shards/{id}` → `structuredData` replaced, `metadata`
//!   shallow-merged, new `revisionId`, `revisionNumber + 1`;
//! - `GET /api/v1/shards?shardTypeId=&shardTypeName=&limit=&continuationToken=`
//!   → `{items, continuationToken}`, newest first;
//! - `GET /health` → 200 without authentication;
//! - bodies over 1 MiB → 413 (Fastify's default `bodyLimit`).
//!
//! Every `/api` call must carry `Authorization: Bearer` with an HS256 token
//! signed with the shared JWT secret, with `type: "access"` (the shared
//! middleware's check), a `tenantId` equal to `X-Tenant-ID` (a uuid) and a
//! short lifetime; anything else is answered 401 and recorded in
//! [`State::problems`], which tests expect empty.

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use castiel_integrations::platform::auth::TokenKeys;
use castiel_integrations::platform::shards::castiel::CastielShards;
use castiel_integrations::platform::store::Store;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use url::Url;
use uuid::Uuid;

/// The JWT secret the double shares with the client.
pub const JWT_SECRET: &str = "castiel-shard-manager-double-shared-jwt-secret!";

/// What the service holds and what it saw.
#[derive(Debug, Default)]
pub struct State {
    /// Every shard, in creation order.
    pub shards: Vec<Map<String, Value>>,
    /// `METHOD path` of every `/api` request.
    pub requests: Vec<String>,
    pub problems: Vec<String>,
    /// When set, every `/api` request gets this status.
    pub answer_with: Option<StatusCode>,
    /// How many creates to store and then answer 500 (an outcome unknown
    /// to the client).
    pub lose_create_answers: usize,
}

impl State {
    /// The shards of a tenant.
    pub fn of(&self, tenant: Uuid) -> Vec<&Map<String, Value>> {
        let t = tenant.to_string();
        self.shards
            .iter()
            .filter(|s| s["tenantId"] == json!(t))
            .collect()
    }
}

type Shared = Arc<Mutex<State>>;

/// A running double.
pub struct ShardManagerDouble {
    pub url: Url,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ShardManagerDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ShardManagerDouble {
    /// Starts the service on a loopback port.
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        let router = Router::new()
            .route("/api/v1/shards", get(list).post(create))
            .route("/api/v1/shards/{id}", get(read).put(update))
            .route(
                "/health",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .layer(DefaultBodyLimit::max(1024 * 1024))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let url = Url::parse(&format!("http://{addr}/")).expect("url");
        Self { url, state, server }
    }

    /// Stops answering (the port is closed).
    pub async fn stop(&self) {
        self.server.abort();
        tokio::task::yield_now().await;
    }

    /// The client over this service, signing with the shared secret and
    /// keeping its id map in `ids`.
    pub fn client(&self, ids: Arc<dyn Store>) -> CastielShards {
        CastielShards::new(self.url.clone(), keys(JWT_SECRET), ids).expect("client")
    }

    /// The service's state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }
}

/// Token keys over a secret, as the service's configuration builds them.
pub fn keys(secret: &str) -> TokenKeys {
    TokenKeys::new(&SecretString::from(secret.to_owned()), None, None)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": message, "statusCode": status.as_u16()})),
    )
        .into_response()
}

/// Checks the token and tenant header of an `/api` call: `Ok(tenant)`.
fn authorize(state: &mut State, what: &str, headers: &HeaderMap) -> Result<String, Box<Response>> {
    state.requests.push(what.to_owned());
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    let claims = header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| {
            jsonwebtoken::decode::<Map<String, Value>>(
                t,
                &DecodingKey::from_secret(JWT_SECRET.as_bytes()),
                &validation,
            )
            .ok()
        })
        .map(|d| d.claims);
    let Some(claims) = claims else {
        state.problems.push(format!("{what}: no valid token"));
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Token verification failed",
        )));
    };
    let Some(tenant) = header("x-tenant-id").map(str::to_owned) else {
        state.problems.push(format!("{what}: no X-Tenant-ID"));
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Tenant ID is required",
        )));
    };
    let claim = |k: &str| claims.get(k).and_then(Value::as_str);
    let lifetime = claims
        .get("exp")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MAX)
        - claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    let mut wrong = Vec::new();
    if claim("type") != Some("access") {
        wrong.push("token type is not access");
    }
    if claim("tenantId") != Some(tenant.as_str()) || Uuid::parse_str(&tenant).is_err() {
        wrong.push("tenantId claim and X-Tenant-ID differ");
    }
    if !(1..=900).contains(&lifetime) {
        wrong.push("token lifetime not short");
    }
    if !wrong.is_empty() {
        state.problems.push(format!("{what}: {}", wrong.join(", ")));
        return Err(Box::new(error(StatusCode::UNAUTHORIZED, "refused")));
    }
    if let Some(status) = state.answer_with {
        return Err(Box::new(error(status, "answer_with")));
    }
    Ok(tenant)
}

fn now() -> Value {
    json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

async fn create(Extract(state): Extract<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "POST /api/v1/shards", &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body must be an object");
    };
    let type_ok = body
        .get("shardTypeId")
        .and_then(Value::as_str)
        .is_some_and(|s| Uuid::parse_str(s).is_ok());
    if !type_ok || !body.get("structuredData").is_some_and(Value::is_object) {
        return error(
            StatusCode::BAD_REQUEST,
            "body/shardTypeId, body/structuredData",
        );
    }
    let mut shard = body;
    shard.insert("id".into(), json!(Uuid::new_v4()));
    shard.insert("tenantId".into(), json!(tenant));
    shard.insert("revisionId".into(), json!(Uuid::new_v4()));
    shard.insert("revisionNumber".into(), json!(1));
    shard.insert("schemaVersion".into(), json!(1));
    shard.entry("status").or_insert(json!("active"));
    shard.entry("source").or_insert(json!("api"));
    shard.insert("createdAt".into(), now());
    shard.insert("updatedAt".into(), now());
    state.shards.push(shard.clone());
    if state.lose_create_answers > 0 {
        state.lose_create_answers -= 1;
        return error(StatusCode::INTERNAL_SERVER_ERROR, "lost");
    }
    (StatusCode::CREATED, axum::Json(shard)).into_response()
}

fn position(state: &State, tenant: &str, id: &str) -> Option<usize> {
    state
        .shards
        .iter()
        .position(|s| s["id"] == json!(id) && s["tenantId"] == json!(tenant))
}

async fn read(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "GET /api/v1/shards/{id}", &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match position(&state, &tenant, &id) {
        Some(i) => axum::Json(state.shards[i].clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Shard not found"),
    }
}

async fn update(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "PUT /api/v1/shards/{id}", &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body must be an object");
    };
    let Some(i) = position(&state, &tenant, &id) else {
        return error(StatusCode::NOT_FOUND, "Shard not found");
    };
    let shard = &mut state.shards[i];
    if shard.get("status") == Some(&json!("archived")) {
        return error(StatusCode::FORBIDDEN, "Cannot update archived shard");
    }
    for (k, v) in body {
        if k == "metadata" {
            let merged = shard
                .entry("metadata")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| {
                    if let Value::Object(new) = v.clone() {
                        m.extend(new);
                    }
                })
                .is_some();
            if !merged {
                shard.insert(k, v);
            }
        } else {
            shard.insert(k, v);
        }
    }
    let revision = shard["revisionNumber"].as_u64().unwrap_or(0) + 1;
    shard.insert("revisionNumber".into(), json!(revision));
    shard.insert("revisionId".into(), json!(Uuid::new_v4()));
    shard.insert("updatedAt".into(), now());
    axum::Json(shard.clone()).into_response()
}

async fn list(
    Extract(state): Extract<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "GET /api/v1/shards", &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let skip: usize = q
        .get("continuationToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let matching: Vec<Value> = state
        .shards
        .iter()
        .rev()
        .filter(|s| s["tenantId"] == json!(tenant))
        .filter(|s| {
            q.get("shardTypeId")
                .is_none_or(|t| s.get("shardTypeId") == Some(&json!(t)))
        })
        .filter(|s| {
            q.get("shardTypeName")
                .is_none_or(|t| s.get("shardTypeName") == Some(&json!(t)))
        })
        .map(|s| Value::Object(s.clone()))
        .collect();
    let items: Vec<Value> = matching.iter().skip(skip).take(limit).cloned().collect();
    let mut page = json!({ "items": items });
    if skip + limit < matching.len() {
        page["continuationToken"] = json!((skip + limit).to_string());
    }
    axum::Json(page).into_response()
}
