//! An in-process Azure Key Vault (secrets only), speaking the documented REST
//! API over https so the official SDK talks to it unchanged:
//!
//! - `PUT /secrets/{name}`, `GET /secrets/{name}/{version?}`,
//!   `DELETE /secrets/{name}` (soft delete: the name stays taken), each with
//!   `?api-version=`;
//! - bundles `{value, id, attributes{enabled, created, updated,
//!   recoverableDays, recoveryLevel}, tags, contentType}`, deleted bundles
//!   `{recoveryId, deletedDate, scheduledPurgeDate, …}` without the value,
//!   errors `{error:{code, message}}`;
//! - the service's limits: names `^[0-9a-zA-Z-]{1,127}$` (else 400
//!   `BadParameter`), values of at most 25k bytes, at most 15 tags of at most
//!   256 characters; a deleted name answers 409 `ObjectIsDeletedButRecoverable`;
//! - the bearer challenge: a request without `Authorization: Bearer <TOKEN>`
//!   gets 401 with `WWW-Authenticate: Bearer authorization="…",
//!   resource="https://vault.azure.net"`.
//!
//! It records every request and every breach of the protocol by the client
//! (a body sent before authenticating, a wrong token, an unknown route or
//! field) in [`State::problems`], which tests expect empty.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::HttpClient;
use castiel_integrations::platform::secrets::keyvault::{self, KeyVaultSecretStore};
use serde_json::{Map, Value, json};
use url::Url;

use super::tls;

/// The vault's host name: a `*.vault.azure.net` name, so the SDK's check that
/// a challenge's resource matches the vault's domain runs as in production.
pub const VAULT_HOST: &str = "castiel-test.vault.azure.net";

/// The only access token the double accepts.
pub const TOKEN: &str = "test-access-token-for-the-key-vault-double";

/// The scope the SDK must ask the credential for (from the challenge).
pub const SCOPE: &str = "https://vault.azure.net/.default";

/// Key Vault's limit on a value: 25k bytes.
pub const VALUE_LIMIT: usize = 25_000;

const CHALLENGE: &str = "Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001\", resource=\"https://vault.azure.net\"";

/// A stored secret (its latest version).
#[derive(Clone, Debug)]
pub struct Stored {
    pub value: String,
    pub tags: Option<Map<String, Value>>,
    pub content_type: Option<String>,
    pub version: String,
    pub created: i64,
}

/// One request as the double saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub authorized: bool,
}

/// What the vault holds and what it saw.
#[derive(Debug, Default)]
pub struct State {
    base: String,
    pub secrets: BTreeMap<String, Stored>,
    pub deleted: BTreeSet<String>,
    pub requests: Vec<Seen>,
    pub problems: Vec<String>,
    /// When set, every authorized request gets this status.
    pub answer_with: Option<StatusCode>,
    /// Scopes the test credential was asked for.
    pub scopes: Vec<String>,
}

/// A running double.
pub struct KeyVaultDouble {
    pub url: Url,
    state: Arc<Mutex<State>>,
    root: reqwest::Certificate,
    addr: SocketAddr,
}

impl KeyVaultDouble {
    /// Starts a vault on a loopback port.
    pub async fn start() -> Self {
        let (root, acceptor) = tls::identity(VAULT_HOST);
        let state = Arc::new(Mutex::new(State::default()));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let addr = tls::serve_https(router, acceptor).await;
        let url = Url::parse(&format!("https://{VAULT_HOST}:{}/", addr.port())).expect("url");
        state.lock().expect("state").base = url.to_string();
        Self {
            url,
            state,
            root,
            addr,
        }
    }

    /// Production's HTTP client settings, trusting the double's CA and
    /// resolving the vault's name to it.
    pub fn http_client(&self) -> Arc<dyn HttpClient> {
        Arc::new(
            keyvault::http_client()
                .tls_certs_only([self.root.clone()])
                .resolve(VAULT_HOST, self.addr)
                .build()
                .expect("client"),
        )
    }

    /// The adapter over this vault, with the test credential.
    pub fn store(&self) -> KeyVaultSecretStore {
        let credential = Arc::new(FixedToken {
            state: self.state.clone(),
        });
        KeyVaultSecretStore::new(&self.url, credential, self.http_client()).expect("store")
    }

    /// The vault's state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }
}

/// The test credential, not tied to a running double.
pub fn credential() -> Arc<dyn TokenCredential> {
    Arc::new(FixedToken {
        state: Arc::default(),
    })
}

/// A credential with one fixed token, recording the scopes asked for.
#[derive(Debug)]
pub struct FixedToken {
    state: Arc<Mutex<State>>,
}

#[async_trait]
impl TokenCredential for FixedToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.state
            .lock()
            .expect("state")
            .scopes
            .extend(scopes.iter().map(|s| (*s).to_owned()));
        Ok(AccessToken::new(
            Secret::new(TOKEN),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

fn ok(body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn not_found(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        &format!("A secret with (name/id) {name} was not found in this key vault."),
    )
}

fn bad_name(name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "BadParameter",
        &format!("The request URI contains an invalid name: {name}"),
    )
}

async fn handle(
    Extract(state): Extract<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().expect("state");
    let path = uri.path().to_owned();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authorized = auth == Some(format!("Bearer {TOKEN}").as_str());
    state.requests.push(Seen {
        method: method.clone(),
        path: path.clone(),
        authorized,
    });
    if !authorized {
        if !body.is_empty() {
            let problem = format!("{method} {path}: a body was sent before authenticating");
            state.problems.push(problem);
        }
        if auth.is_some() {
            state.problems.push(format!("{method} {path}: wrong token"));
        }
        let mut rsp = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
        rsp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, CHALLENGE.parse().expect("header"));
        return rsp;
    }
    let api_version = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "api-version" && !v.is_empty());
    if !api_version {
        state
            .problems
            .push(format!("{method} {path}: no api-version"));
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "api-version is required",
        );
    }
    if let Some(status) = state.answer_with {
        let code = status
            .canonical_reason()
            .unwrap_or("Error")
            .replace(' ', "");
        return error(status, &code, "answer_with");
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["secrets", name] | ["secrets", name, ""]) => get(&state, name, None),
        (&Method::GET, ["secrets", name, version]) => get(&state, name, Some(version)),
        (&Method::PUT, ["secrets", name]) => {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                state.problems.push(format!("PUT {path}: not JSON"));
            }
            set(&mut state, name, &body)
        }
        (&Method::DELETE, ["secrets", name]) => delete(&mut state, name),
        _ => {
            state
                .problems
                .push(format!("{method} {path}: no such route"));
            error(StatusCode::BAD_REQUEST, "BadParameter", "no such route")
        }
    }
}

fn bundle(base: &str, name: &str, s: &Stored) -> Value {
    let mut b = json!({
        "id": format!("{base}secrets/{name}/{}", s.version),
        "attributes": {
            "enabled": true,
            "created": s.created,
            "updated": s.created,
            "recoverableDays": 30,
            "recoveryLevel": "Recoverable",
        },
    });
    if let Some(tags) = &s.tags {
        b["tags"] = Value::Object(tags.clone());
    }
    if let Some(ct) = &s.content_type {
        b["contentType"] = json!(ct);
    }
    b
}

fn get(state: &State, name: &str, version: Option<&str>) -> Response {
    if !valid_name(name) {
        return bad_name(name);
    }
    match state.secrets.get(name) {
        Some(s) if version.is_none_or(|v| v == s.version) => {
            let mut b = bundle(&state.base, name, s);
            b["value"] = json!(s.value);
            ok(&b)
        }
        _ => not_found(name),
    }
}

fn set(state: &mut State, name: &str, body: &[u8]) -> Response {
    if !valid_name(name) {
        return bad_name(name);
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "BadParameter", "invalid body");
    };
    if let Some(k) = body
        .keys()
        .find(|k| !["value", "tags", "contentType", "attributes"].contains(&k.as_str()))
    {
        state
            .problems
            .push(format!("PUT {name}: unknown field {k}"));
    }
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "BadParameter", "value is required");
    };
    if value.len() > VALUE_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The secret value exceeds the maximum allowed size.",
        );
    }
    let tags = match body.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t))
            if t.len() <= 15
                && t.iter().all(|(k, v)| {
                    k.chars().count() <= 512 && v.as_str().is_some_and(|v| v.chars().count() <= 256)
                }) =>
        {
            Some(t.clone())
        }
        Some(_) => return error(StatusCode::BAD_REQUEST, "BadParameter", "invalid tags"),
    };
    if state.deleted.contains(name) {
        return error(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
            ),
        );
    }
    let stored = Stored {
        value: value.to_owned(),
        tags,
        content_type: body
            .get("contentType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        version: uuid::Uuid::new_v4().simple().to_string(),
        created: chrono::Utc::now().timestamp(),
    };
    let mut b = bundle(&state.base, name, &stored);
    b["value"] = json!(stored.value);
    state.secrets.insert(name.to_owned(), stored);
    ok(&b)
}

fn delete(state: &mut State, name: &str) -> Response {
    if !valid_name(name) {
        return bad_name(name);
    }
    let Some(stored) = state.secrets.remove(name) else {
        return not_found(name);
    };
    state.deleted.insert(name.to_owned());
    let now = chrono::Utc::now().timestamp();
    let mut b = bundle(&state.base, name, &stored);
    b["recoveryId"] = json!(format!("{}deletedsecrets/{name}", state.base));
    b["deletedDate"] = json!(now);
    b["scheduledPurgeDate"] = json!(now + 30 * 86_400);
    ok(&b)
}
