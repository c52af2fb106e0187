//! An in-process Castiel secret-management service (reference Appendix A.2):
//!
//! - `POST /api/secrets` `{name, type, value, scope, organizationId, tags[],
//!   metadata}` → 201 with the metadata and a generated `id` (never the value);
//! - `GET /api/secrets/{id}` → metadata; `GET /api/secrets/{id}/value` →
//!   `{value}`; `DELETE /api/secrets/{id}` → 204 (soft: the secret is gone for
//!   readers); a secret of another organization than `X-Tenant-ID` → 403, a
//!   missing one → 404;
//! - `GET /health` → 200, without authentication.
//!
//! Every `/api` call must carry `Authorization: Bearer` with an HS256 service
//! token signed with the shared JWT secret (`type: "access"`, `sub` =
//! `integration-manager`, `tenantId` = `X-Tenant-ID`, at most 5 minutes
//! long), `x-consumer-module: integration-manager` and
//! `x-consumer-resource-id` (on create: the owner id, form-encoded); anything
//! else is answered 401/400 and recorded in [`State::problems`], which tests
//! expect empty.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use castiel_integrations::platform::auth::TokenKeys;
use castiel_integrations::platform::secrets::castiel::{CONSUMER_MODULE, CastielSecretStore};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use url::Url;

/// The JWT secret the double shares with the adapter.
pub const JWT_SECRET: &str = "castiel-secret-management-double-shared-jwt-secret";

const TYPES: &[&str] = &[
    "API_KEY",
    "OAUTH2_TOKEN",
    "USERNAME_PASSWORD",
    "CERTIFICATE",
    "SSH_KEY",
    "CONNECTION_STRING",
    "JSON_CREDENTIAL",
    "ENV_VARIABLE_SET",
    "GENERIC",
];
const SCOPES: &[&str] = &["GLOBAL", "ORGANIZATION", "TEAM", "PROJECT", "USER"];

/// A stored secret: its metadata (as answered) and its value.
#[derive(Clone, Debug)]
pub struct Stored {
    pub meta: Map<String, Value>,
    pub value: String,
    pub deleted: bool,
}

/// What the service holds and what it saw.
#[derive(Debug, Default)]
pub struct State {
    pub secrets: BTreeMap<String, Stored>,
    /// `METHOD path` of every request.
    pub requests: Vec<String>,
    pub problems: Vec<String>,
    /// When set, every `/api` request gets this status.
    pub answer_with: Option<StatusCode>,
}

/// A running double.
pub struct CastielDouble {
    pub url: Url,
    state: Arc<Mutex<State>>,
}

type Shared = Arc<Mutex<State>>;

impl CastielDouble {
    /// Starts the service on a loopback port.
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        let router = Router::new()
            .route("/api/secrets", post(create))
            .route("/api/secrets/{id}", get(metadata).delete(delete))
            .route("/api/secrets/{id}/value", get(value))
            .route(
                "/health",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .fallback(unknown)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let url = Url::parse(&format!("http://{addr}/")).expect("url");
        Self { url, state }
    }

    /// The adapter over this service, signing with the shared secret.
    pub fn store(&self) -> CastielSecretStore {
        CastielSecretStore::new(self.url.clone(), keys(JWT_SECRET)).expect("store")
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
        axum::Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// Why a request is refused: its status and message.
type Refusal = (StatusCode, &'static str);

fn refuse((status, message): Refusal) -> Response {
    error(status, message)
}

/// Checks the headers and token of an `/api` call; `Ok(tenant)` when they
/// are right.
fn authorize(state: &mut State, what: &str, headers: &HeaderMap) -> Result<String, Refusal> {
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
        state
            .problems
            .push(format!("{what}: no valid service token"));
        return Err((StatusCode::UNAUTHORIZED, "invalid token"));
    };
    let tenant = header("x-tenant-id").unwrap_or_default().to_owned();
    let claim = |k: &str| claims.get(k).and_then(Value::as_str);
    let lifetime = claims
        .get("exp")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MAX)
        - claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    let mut wrong = Vec::new();
    if claim("tenantId") != Some(tenant.as_str()) || uuid::Uuid::parse_str(&tenant).is_err() {
        wrong.push("tenantId claim and X-Tenant-ID differ");
    }
    if claim("type") != Some("access") || claim("sub") != Some(CONSUMER_MODULE) {
        wrong.push("not an integration-manager access token");
    }
    if !(1..=300).contains(&lifetime) {
        wrong.push("token lifetime not short");
    }
    if header("x-consumer-module") != Some(CONSUMER_MODULE) {
        wrong.push("x-consumer-module");
    }
    if header("x-consumer-resource-id").is_none_or(str::is_empty) {
        wrong.push("x-consumer-resource-id");
    }
    if !wrong.is_empty() {
        state.problems.push(format!("{what}: {}", wrong.join(", ")));
        return Err((StatusCode::UNAUTHORIZED, "refused"));
    }
    if let Some(status) = state.answer_with {
        return Err((status, "answer_with"));
    }
    Ok(tenant)
}

async fn create(Extract(state): Extract<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "POST /api/secrets", &headers) {
        Ok(t) => t,
        Err(r) => return refuse(r),
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid body");
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let owner_id = body["metadata"]["ownerId"].as_str().unwrap_or_default();
    let resource: String = url::form_urlencoded::byte_serialize(owner_id.as_bytes()).collect();
    let valid = text("name").is_some_and(|n| !n.is_empty())
        && text("type").is_some_and(|t| TYPES.contains(&t))
        && text("scope").is_some_and(|s| SCOPES.contains(&s))
        && text("value").is_some()
        && body["tags"]
            .as_array()
            .is_some_and(|t| t.iter().all(Value::is_string));
    if !valid {
        state
            .problems
            .push("POST /api/secrets: invalid body".into());
        return error(StatusCode::BAD_REQUEST, "invalid body");
    }
    if text("scope") != Some("ORGANIZATION") || text("organizationId") != Some(tenant.as_str()) {
        state
            .problems
            .push("POST /api/secrets: not the caller's organization".into());
        return error(StatusCode::FORBIDDEN, "not your organization");
    }
    if headers
        .get("x-consumer-resource-id")
        .and_then(|v| v.to_str().ok())
        != Some(&resource)
    {
        state
            .problems
            .push("POST /api/secrets: x-consumer-resource-id is not the owner".into());
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut meta = body.clone();
    meta.remove("value");
    meta.insert("id".into(), json!(id));
    meta.insert("createdAt".into(), json!(chrono::Utc::now()));
    let value = text("value").unwrap_or_default().to_owned();
    state.secrets.insert(
        id,
        Stored {
            meta: meta.clone(),
            value,
            deleted: false,
        },
    );
    (StatusCode::CREATED, axum::Json(Value::Object(meta))).into_response()
}

/// The live secret `id` of the caller's organization, or the answer.
fn find<'s>(state: &'s State, id: &str, tenant: &str) -> Result<&'s Stored, Refusal> {
    match state.secrets.get(id) {
        Some(s) if !s.deleted && s.meta["organizationId"] == tenant => Ok(s),
        Some(s) if !s.deleted => Err((StatusCode::FORBIDDEN, "no access")),
        _ => Err((StatusCode::NOT_FOUND, "secret not found")),
    }
}

async fn metadata(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "GET /api/secrets/{id}", &headers) {
        Ok(t) => t,
        Err(r) => return refuse(r),
    };
    match find(&state, &id, &tenant) {
        Ok(s) => axum::Json(Value::Object(s.meta.clone())).into_response(),
        Err(r) => refuse(r),
    }
}

async fn value(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "GET /api/secrets/{id}/value", &headers) {
        Ok(t) => t,
        Err(r) => return refuse(r),
    };
    match find(&state, &id, &tenant) {
        Ok(s) => axum::Json(json!({"value": s.value})).into_response(),
        Err(r) => refuse(r),
    }
}

async fn delete(
    Extract(state): Extract<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().expect("state");
    let tenant = match authorize(&mut state, "DELETE /api/secrets/{id}", &headers) {
        Ok(t) => t,
        Err(r) => return refuse(r),
    };
    if let Err(r) = find(&state, &id, &tenant) {
        return refuse(r);
    }
    if let Some(s) = state.secrets.get_mut(&id) {
        s.deleted = true;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn unknown(
    Extract(state): Extract<Shared>,
    method: Method,
    uri: axum::http::Uri,
) -> Response {
    let what = format!("{method} {}", uri.path());
    let mut state = state.lock().expect("state");
    state.requests.push(what.clone());
    state.problems.push(format!("{what}: no such route"));
    error(StatusCode::NOT_FOUND, "no such route")
}
