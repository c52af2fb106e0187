//! The test application: the production router on a chosen store, driven
//! in-process with `oneshot`.

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use castiel_integrations::bootstrap;
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::state::AppState;
use castiel_integrations::store::Store;
use castiel_integrations::store::embedded::{EmbeddedStore, SqliteDb};
use serde_json::Value;
use tower::ServiceExt as _;
use uuid::Uuid;

/// The secret every test token is signed with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Which store backend the suite runs on.
pub fn backend() -> String {
    std::env::var("TEST_STORE").unwrap_or_else(|_| "embedded".into())
}

/// Opens a fresh store of the selected backend.
pub async fn test_store(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    match backend().as_str() {
        "embedded" => {
            let db = SqliteDb::open(&dir.join("test.db")).expect("open sqlite");
            Arc::new(EmbeddedStore::new(db, clock))
        }
        "cosmos" => crate::cosmos_emulator::store(clock).await,
        other => panic!("TEST_STORE={other} is not a known backend"),
    }
}

/// A running application and its router.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

/// An answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The ETag header without quotes.
    pub fn etag(&self) -> String {
        self.headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned()
    }

    /// The pointers of a problem's `errors`.
    pub fn pointers(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// A fresh app with default configuration plus `extra` settings.
    pub async fn with(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_string_lossy().into_owned();
        let mut pairs: Vec<(&str, &str)> =
            vec![("DATA_DIR", &data_dir), ("JWT_SECRET", JWT_SECRET)];
        pairs.extend_from_slice(extra);
        let config = Config::from_pairs(&pairs).expect("config");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = test_store(dir.path(), clock.clone()).await;
        let state = bootstrap::build_with(config, store, clock)
            .await
            .expect("build app");
        let router = castiel_integrations::http::router(state.clone());
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
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
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
