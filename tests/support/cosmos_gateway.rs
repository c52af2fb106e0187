//! A Cosmos DB gateway another process can reach: the SDK's in-memory
//! emulator (`InMemoryEmulatorHttpClient`, see `cosmos_emulator.rs`) behind
//! a real https socket. Each request is turned into an `azure_core` request
//! and answered by `execute_request`, the emulator's own dispatch; the
//! account metadata it serves names this same address as the account's
//! only region (East US), so the SDK's routing comes back here.
//!
//! Its address is `https://localhost:<port>/` with a certificate made in the
//! test: the service treats loopback endpoints as an emulator (relaxed
//! certificate check, HTTP/1.1, plain JSON), so nothing needs trusting.
//!
//! As the account infra/ deploys (`disableLocalAuth: true`), it accepts only
//! Microsoft Entra ID: every request must carry
//! `type=aad&ver=1.0&sig=<token>` with the token given to [`CosmosGateway::start`],
//! and, as Cosmos does for Entra ID callers, it refuses control-plane
//! writes (creating, replacing or deleting a database or container: Bicep
//! does that) with 403. Breaches are recorded in [`CosmosGateway::problems`].
//! The test sets the account up in process through [`CosmosGateway::admin_client`].

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use azure_core::http::headers::{HeaderName as CoreName, HeaderValue as CoreValue};
use azure_data_cosmos::CosmosClient;
use azure_data_cosmos_driver::in_memory_emulator::{
    InMemoryEmulatorHttpClient, VirtualAccountConfig, VirtualRegion,
};
use castiel_integrations::platform::store::cosmos;
use serde_json::json;
use url::Url;

use super::{cosmos_emulator, tls};

/// The resource (scope without `/.default`) the SDK asks Entra ID for.
pub const AAD_RESOURCE: &str = "https://cosmos.azure.com";

struct Gateway {
    emulator: OnceLock<Arc<InMemoryEmulatorHttpClient>>,
    base: OnceLock<Url>,
    token: String,
    requests: Mutex<Vec<String>>,
    problems: Mutex<Vec<String>>,
}

/// A running gateway.
pub struct CosmosGateway {
    /// The account endpoint (`COSMOS_ENDPOINT`).
    pub endpoint: Url,
    gateway: Arc<Gateway>,
}

impl CosmosGateway {
    /// Starts a gateway on a fresh in-memory account that accepts `token`.
    pub async fn start(token: &str) -> Self {
        let (_root, acceptor) = tls::identity("localhost");
        let gateway = Arc::new(Gateway {
            emulator: OnceLock::new(),
            base: OnceLock::new(),
            token: token.to_owned(),
            requests: Mutex::default(),
            problems: Mutex::default(),
        });
        let router = Router::new().fallback(handle).with_state(gateway.clone());
        let addr = tls::serve_https(router, acceptor).await;
        let endpoint = Url::parse(&format!("https://localhost:{}/", addr.port())).expect("url");
        let config =
            VirtualAccountConfig::new(vec![VirtualRegion::new("East US", endpoint.clone())])
                .expect("emulator config");
        let emulator = Arc::new(InMemoryEmulatorHttpClient::new(config));
        assert!(
            gateway.emulator.set(emulator).is_ok() && gateway.base.set(endpoint.clone()).is_ok()
        );
        Self { endpoint, gateway }
    }

    /// A key-authorized client on the same account, called in process (not
    /// through the socket): the test's stand-in for the deployment.
    pub async fn admin_client(&self) -> CosmosClient {
        let emulator = self.gateway.emulator.get().expect("started");
        cosmos_emulator::key_client(
            emulator,
            self.endpoint.as_str(),
            cosmos::throttling_retries(),
        )
        .await
    }

    /// `METHOD /path` of every request that came through the socket.
    pub fn requests(&self) -> Vec<String> {
        self.gateway.requests.lock().expect("lock").clone()
    }

    /// Requests refused for breaking the account's rules.
    pub fn problems(&self) -> Vec<String> {
        self.gateway.problems.lock().expect("lock").clone()
    }
}

fn cosmos_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"code": status.canonical_reason(), "message": message});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Why a request is refused, if it is.
fn refusal(g: &Gateway, req: &Request) -> Option<(StatusCode, String)> {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The SDK form-encodes the whole value.
    let auth = url::form_urlencoded::parse(format!("v={auth}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if auth != format!("type=aad&ver=1.0&sig={}", g.token) {
        let kind = auth.split('&').next().unwrap_or_default().to_owned();
        return Some((
            StatusCode::UNAUTHORIZED,
            format!(
                "local authorization is disabled; only the Entra ID token is accepted (got {kind:?})"
            ),
        ));
    }
    // dbs, dbs/{db}, dbs/{db}/colls, dbs/{db}/colls/{coll}, offers: metadata.
    let path = req.uri().path().trim_matches('/');
    let segments = path.split('/').filter(|s| !s.is_empty()).count();
    let metadata = path.starts_with("offers") || (path.starts_with("dbs") && segments <= 4);
    if metadata && req.method() != axum::http::Method::GET {
        return Some((
            StatusCode::FORBIDDEN,
            "control-plane operations cannot be authorized by an Entra ID token in the data plane"
                .into(),
        ));
    }
    None
}

async fn handle(State(g): State<Arc<Gateway>>, req: Request) -> Response {
    let line = format!("{} {}", req.method(), req.uri().path());
    g.requests.lock().expect("lock").push(line.clone());
    if let Some((status, why)) = refusal(&g, &req) {
        g.problems
            .lock()
            .expect("lock")
            .push(format!("{line}: {why}"));
        return cosmos_error(status, &why);
    }
    let (Some(emulator), Some(base)) = (g.emulator.get(), g.base.get()) else {
        return cosmos_error(StatusCode::SERVICE_UNAVAILABLE, "starting");
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = base.join(path).expect("request URL");
    let method = req.method().as_str().parse().expect("method");
    let mut core = azure_core::http::Request::new(url, method);
    for (name, value) in req.headers() {
        let Ok(value) = value.to_str() else { continue };
        core.headers_mut().insert(
            CoreName::from(name.as_str().to_owned()),
            CoreValue::from(value.to_owned()),
        );
    }
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .expect("request body");
    if !body.is_empty() {
        core.set_body(body.to_vec());
    }
    let raw = match emulator.execute_request(&core).await {
        Ok(r) => r.try_into_raw_response().await.expect("emulator response"),
        Err(e) => {
            let why = format!("emulator: {e}");
            g.problems
                .lock()
                .expect("lock")
                .push(format!("{line}: {why}"));
            return cosmos_error(StatusCode::SERVICE_UNAVAILABLE, &why);
        }
    };
    let mut res = Response::new(Body::from(raw.body().as_ref().to_vec()));
    *res.status_mut() = StatusCode::from_u16(u16::from(raw.status())).expect("status");
    for (name, value) in raw.headers().iter() {
        if matches!(name.as_str(), "content-length" | "transfer-encoding") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_str(value.as_str()),
        ) {
            res.headers_mut().append(n, v);
        }
    }
    res
}
