//! The test application: the production router on a chosen store, driven
//! in-process with `oneshot`.

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use castiel_integrations::app;
use castiel_integrations::app::AppState;
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::store::Store;
use serde_json::Value;
use tower::ServiceExt as _;
use uuid::Uuid;

#[path = "../support/answer.rs"]
mod answer;
pub use answer::Answer;

/// The secret every test token is signed with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub use crate::stores::test_store;

/// A running application and its router.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// A fresh app with default configuration plus `extra` settings.
    pub async fn with(extra: &[(&str, &str)]) -> Self {
        Self::custom(extra, Arc::new(SystemClock), |s| s).await
    }

    /// A fresh app on a given clock, its store wrapped by `wrap` (fault injection).
    pub async fn custom(
        extra: &[(&str, &str)],
        clock: Arc<dyn Clock>,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_string_lossy().into_owned();
        let mut pairs: Vec<(&str, &str)> =
            vec![("DATA_DIR", &data_dir), ("JWT_SECRET", JWT_SECRET)];
        pairs.extend_from_slice(extra);
        let config = Config::from_pairs(&pairs).expect("config");
        let store = wrap(test_store(dir.path(), clock.clone()).await);
        let state = app::wiring::build_with(config, store, clock)
            .await
            .expect("build app");
        let router = castiel_integrations::drivers::http::router(state.clone());
        Self { state, router, dir }
    }

    /// A fresh app with default configuration.
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// A token for a tenant.
    pub fn token(&self, tenant: Uuid) -> String {
        self.state
            .tokens
            .mint(TenantId(tenant), Some("user-1"), false, 3600)
    }

    /// A super-admin token for a tenant.
    pub fn admin_token(&self, tenant: Uuid) -> String {
        self.state
            .tokens
            .mint(TenantId(tenant), Some("admin-1"), true, 3600)
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.raw(req).await
    }

    /// Sends a prepared request.
    pub async fn raw(&self, req: Request<Body>) -> Answer {
        Answer::read(self.router.clone().oneshot(req).await.expect("infallible")).await
    }

    /// GET as a tenant.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    /// POST JSON as a tenant.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// PUT JSON as a tenant.
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }

    /// DELETE as a tenant.
    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.send(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// Creates an integration and returns its body.
    pub async fn create_integration(&self, token: &str, name: &str) -> Value {
        let a = self
            .post(
                "/api/v1/integrations",
                token,
                serde_json::json!({"providerId": "salesforce", "name": name}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.body
    }
}

/// Signs arbitrary claims with the test secret (HS256), for auth tests.
pub fn sign(claims: &Value) -> String {
    sign_with(jsonwebtoken::Algorithm::HS256, JWT_SECRET, claims)
}

/// Signs arbitrary claims with any HMAC algorithm and secret.
pub fn sign_with(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Every event raised in the app, in order.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<castiel_integrations::platform::events::Event>>);

#[async_trait::async_trait]
impl castiel_integrations::platform::events::EventHandler for Recorder {
    async fn handle(
        &self,
        event: &castiel_integrations::platform::events::Event,
    ) -> anyhow::Result<()> {
        self.0.lock().expect("lock").push(event.clone());
        Ok(())
    }
}

impl Recorder {
    /// The events recorded so far.
    pub fn events(&self) -> Vec<castiel_integrations::platform::events::Event> {
        self.0.lock().expect("lock").clone()
    }
}

impl TestApp {
    /// Records every event raised from now on.
    pub fn record_events(&self) -> Arc<Recorder> {
        let r = Arc::new(Recorder::default());
        self.state.events.subscribe(r.clone());
        r
    }

    /// Sends raw bytes with a content type.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        self.raw(req.body(Body::from(body)).expect("request")).await
    }

    /// Follows continuation tokens from `path` (which may carry a query) to the
    /// end; returns every item and the number of pages.
    pub async fn list_all(&self, path: &str, token: &str) -> (Vec<Value>, usize) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut pages = 0;
        let mut next: Option<String> = None;
        loop {
            let url = match &next {
                Some(t) => format!("{path}{sep}continuationToken={t}"),
                None => path.to_owned(),
            };
            let a = self.get(&url, token).await;
            assert_eq!(a.status, StatusCode::OK, "{url}: {:?}", a.body);
            pages += 1;
            items.extend(a.body["items"].as_array().expect("items").iter().cloned());
            match a.body["continuationToken"].as_str() {
                Some(t) => next = Some(t.to_owned()),
                None => return (items, pages),
            }
            assert!(pages < 1000, "paging does not end");
        }
    }

    /// The ids of every integration a tenant sees.
    pub async fn integration_ids(&self, token: &str) -> Vec<String> {
        self.list_all("/api/v1/integrations?limit=200", token)
            .await
            .0
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect()
    }
}

/// A valid catalog entry body for admin tests.
pub fn catalog_entry(id: &str) -> Value {
    serde_json::json!({
        "id": id,
        "category": "crm",
        "name": id,
        "displayName": format!("Test {id}"),
        "description": "a test provider",
        "authMethods": ["api_key"],
        "visibility": "public",
        "status": "active"
    })
}
