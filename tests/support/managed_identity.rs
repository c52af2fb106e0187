//! The App Service managed-identity endpoint, as the platform gives it to an
//! app with a system-assigned identity: `IDENTITY_ENDPOINT` (plain http on
//! the machine) and `IDENTITY_HEADER` (the secret a caller must echo).
//!
//! The protocol is the one `azure_identity`'s App Service credential speaks
//! (`app_service_managed_identity_credential.rs`, `imds_managed_identity_credential.rs`):
//! `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>` with
//! `X-IDENTITY-HEADER: {IDENTITY_HEADER}`, answered with
//! `{"access_token", "expires_on": "<unix seconds, as a string>", "resource", "token_type": "Bearer"}`.
//! A wrong or missing header gets 400, as the platform answers.
//!
//! It records every resource asked for and every breach of the protocol
//! ([`State::problems`], which tests expect empty).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use url::Url;

/// The path App Service serves the endpoint on.
const PATH: &str = "/msi/token";

/// The token the endpoint issues for `resource` (tests check it arrives).
pub fn token_for(resource: &str) -> String {
    format!("managed-identity-token-for:{resource}")
}

/// What the endpoint saw.
#[derive(Debug, Default)]
pub struct State {
    header: String,
    /// Resources tokens were issued for, in order.
    pub resources: Vec<String>,
    /// Requests that broke the protocol.
    pub problems: Vec<String>,
}

/// A running endpoint.
pub struct IdentityEndpoint {
    /// `IDENTITY_ENDPOINT`.
    pub url: Url,
    /// `IDENTITY_HEADER`.
    pub header: String,
    state: Arc<Mutex<State>>,
}

impl IdentityEndpoint {
    /// Starts the endpoint on a loopback port.
    pub async fn start() -> Self {
        let header = uuid::Uuid::new_v4().simple().to_string();
        let state = Arc::new(Mutex::new(State {
            header: header.clone(),
            ..State::default()
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: Url::parse(&format!("http://127.0.0.1:{port}{PATH}")).expect("url"),
            header,
            state,
        }
    }

    /// Resources tokens were issued for.
    pub fn resources(&self) -> Vec<String> {
        self.state.lock().expect("state").resources.clone()
    }

    /// Breaches of the protocol seen.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().expect("state").problems.clone()
    }
}

async fn handle(
    Extract(state): Extract<Arc<Mutex<State>>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut state = state.lock().expect("state");
    match check(&state.header, &uri, &headers, &query) {
        Ok(resource) => {
            state.resources.push(resource.clone());
            let expires_on = chrono::Utc::now().timestamp() + 3600;
            axum::Json(json!({
                "access_token": token_for(&resource),
                "expires_on": expires_on.to_string(),
                "resource": resource,
                "token_type": "Bearer",
            }))
            .into_response()
        }
        Err((status, why)) => {
            state.problems.push(format!("{uri}: {why}"));
            (status, json!({"error": why}).to_string()).into_response()
        }
    }
}

/// The resource asked for, or why the request is refused.
fn check(
    secret: &str,
    uri: &Uri,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<String, (StatusCode, String)> {
    if uri.path() != PATH {
        return Err((StatusCode::NOT_FOUND, "not the identity endpoint".into()));
    }
    let given = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if given != Some(secret) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("X-IDENTITY-HEADER is {given:?}"),
        ));
    }
    let param = |name: &str| {
        query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    if param("api-version") != ["2019-08-01"] {
        let v = param("api-version");
        return Err((StatusCode::BAD_REQUEST, format!("api-version {v:?}")));
    }
    // A system-assigned identity (main.bicep): no user-assigned selector.
    for selector in ["client_id", "object_id", "msi_res_id", "principal_id"] {
        if !param(selector).is_empty() {
            return Err((StatusCode::BAD_REQUEST, format!("{selector} given")));
        }
    }
    match param("resource")[..] {
        [resource] if !resource.is_empty() && !resource.ends_with("/.default") => {
            Ok(resource.to_owned())
        }
        ref other => Err((StatusCode::BAD_REQUEST, format!("resource {other:?}"))),
    }
}
