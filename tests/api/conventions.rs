//! SPEC §5 conventions: body limit, media type, unknown routes and methods,
//! headers, problem bodies, and 5xx answers that show nothing internal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use axum::http::{Method, StatusCode, header};
use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::{
    Container, Document, ETag, Page, Query, Store, StoreError, StoreResult,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp};

const LIMIT: usize = 1024 * 1024;

fn assert_problem(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    for k in ["type", "title", "detail"] {
        assert!(a.body[k].is_string(), "{k} in {:?}", a.body);
    }
    assert_eq!(a.body["status"], status.as_u16());
}

/// A valid create body padded with spaces to exactly `size` bytes.
fn padded(size: usize) -> Vec<u8> {
    let mut b = json!({"providerId": "salesforce", "name": "big"})
        .to_string()
        .into_bytes();
    b.resize(size, b' ');
    b
}

#[tokio::test]
async fn body_limit_is_one_mebibyte() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let post = |body: Vec<u8>| {
        let (app, t) = (&app, &t);
        async move {
            app.send_bytes(
                Method::POST,
                "/api/v1/integrations",
                Some(t),
                Some("application/json"),
                body,
            )
            .await
        }
    };
    assert_eq!(post(padded(LIMIT)).await.status, StatusCode::CREATED);
    assert_problem(
        &post(padded(LIMIT + 1)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_problem(
        &post(padded(3 * LIMIT)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    let id = app.integration_ids(&t).await;
    assert_eq!(id.len(), 1);
    let put = app
        .send_bytes(
            Method::PUT,
            &format!("/api/v1/integrations/{}", id[0]),
            Some(&t),
            Some("application/json"),
            padded(LIMIT + 10),
        )
        .await;
    assert_problem(&put, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn json_media_type_is_required() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let body = json!({"providerId": "salesforce", "name": "x"})
        .to_string()
        .into_bytes();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some(""),
    ] {
        let a = app
            .send_bytes(
                Method::POST,
                "/api/v1/integrations",
                Some(&t),
                ct,
                body.clone(),
            )
            .await;
        assert_problem(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    for ct in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ] {
        let a = app
            .send_bytes(
                Method::POST,
                "/api/v1/integrations",
                Some(&t),
                Some(ct),
                body.clone(),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{ct}");
    }
    assert_eq!(app.integration_ids(&t).await.len(), 3);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v1/integrations/a/b/c",
        "/api/v2/integrations",
        "/api/v1/integrations/",
    ] {
        let a = app.get(path, &t).await;
        assert_problem(&a, StatusCode::NOT_FOUND);
        let a = app.send(Method::GET, path, None, None, &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path} without token");
    }
    for (method, path) in [
        (Method::PATCH, "/api/v1/integrations"),
        (Method::DELETE, "/api/v1/integrations"),
        (Method::POST, "/health"),
        (Method::PATCH, "/api/v1/integrations/catalog/salesforce"),
        (Method::POST, "/api/v1/openapi.json"),
    ] {
        let a = app.send(method.clone(), path, Some(&t), None, &[]).await;
        assert_problem(&a, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            a.headers.contains_key(header::ALLOW),
            "{method} {path}: Allow header"
        );
    }
}

#[tokio::test]
async fn single_resources_carry_etag_and_creates_location() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let c = app
        .post(
            "/api/v1/integrations",
            &t,
            json!({"providerId": "salesforce", "name": "x"}),
        )
        .await;
    let raw = c.headers[header::ETAG].to_str().expect("etag");
    assert!(
        raw.starts_with('"') && raw.ends_with('"'),
        "strong quoted ETag: {raw}"
    );
    assert_eq!(c.etag(), c.body["etag"].as_str().expect("etag"));
    let loc = c.headers[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    let r = app.get(&loc, &t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.etag(), c.etag());
    let entry = app.get("/api/v1/integrations/catalog/salesforce", &t).await;
    assert!(
        entry.etag_header().is_some_and(|e| !e.is_empty()),
        "a catalog entry carries an ETag"
    );
    assert!(
        app.get("/api/v1/integrations", &t)
            .await
            .headers
            .get(header::ETAG)
            .is_none()
    );
    // Every answer carries a request id; a sent one is kept.
    let a = app
        .send(
            Method::GET,
            "/health",
            None,
            None,
            &[("x-request-id", "abc-1")],
        )
        .await;
    assert_eq!(a.headers["x-request-id"], "abc-1");
    let a = app.send(Method::GET, "/health", None, None, &[]).await;
    assert!(a.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = TestApp::new().await;
    let a = app
        .send(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
    assert!(
        a.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    for p in [
        "/api/v1/integrations",
        "/api/v1/integrations/{id}",
        "/api/v1/integrations/{id}/field-mappings/{entityType}",
        "/api/v1/integrations/catalog",
        "/api/v1/admin/integrations/catalog/{providerId}",
    ] {
        assert!(a.body["paths"].get(p).is_some(), "{p}");
    }
}

/// What the faulty store does.
const PASS: u8 = 0;
const BUG: u8 = 1;
const DOWN: u8 = 2;
const PANIC: u8 = 3;
const INTERNAL: &str = "/var/lib/castiel/secret-db-path password=hunter2";

/// A store that fails on demand, with an internal-looking message.
struct Faulty {
    inner: Arc<dyn Store>,
    mode: Arc<AtomicU8>,
}

impl Faulty {
    fn check(&self) -> StoreResult<()> {
        match self.mode.load(Ordering::SeqCst) {
            BUG => Err(StoreError::Invalid(INTERNAL.into())),
            DOWN => Err(StoreError::Unavailable(INTERNAL.into())),
            PANIC => panic!("{INTERNAL}"),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Store for Faulty {
    async fn read(&self, c: Container, pk: &str, id: &str) -> StoreResult<Option<Document>> {
        self.check()?;
        self.inner.read(c, pk, id).await
    }
    async fn create(&self, c: Container, body: Value) -> StoreResult<Document> {
        self.check()?;
        self.inner.create(c, body).await
    }
    async fn replace(&self, c: Container, body: Value, m: Option<&ETag>) -> StoreResult<Document> {
        self.check()?;
        self.inner.replace(c, body, m).await
    }
    async fn upsert(&self, c: Container, body: Value) -> StoreResult<Document> {
        self.check()?;
        self.inner.upsert(c, body).await
    }
    async fn delete(&self, c: Container, pk: &str, id: &str, m: Option<&ETag>) -> StoreResult<()> {
        self.check()?;
        self.inner.delete(c, pk, id, m).await
    }
    async fn query(&self, c: Container, q: &Query) -> StoreResult<Page> {
        self.check()?;
        self.inner.query(c, q).await
    }
    async fn count(&self, c: Container, q: &Query) -> StoreResult<u64> {
        self.check()?;
        self.inner.count(c, q).await
    }
    async fn provision(&self) -> StoreResult<()> {
        self.inner.provision().await
    }
    async fn health(&self) -> StoreResult<()> {
        self.check()
    }
}

#[tokio::test]
async fn server_errors_show_nothing_internal() {
    let mode = Arc::new(AtomicU8::new(PASS));
    let m = mode.clone();
    let app = TestApp::custom(&[], Arc::new(SystemClock), move |inner| {
        Arc::new(Faulty { inner, mode: m })
    })
    .await;
    let t = app.token(Uuid::new_v4());
    let id = app.create_integration(&t, "x").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/v1/integrations/{id}");
    for (m, status) in [
        (BUG, StatusCode::INTERNAL_SERVER_ERROR),
        (DOWN, StatusCode::SERVICE_UNAVAILABLE),
        (PANIC, StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        mode.store(m, Ordering::SeqCst);
        let answers = [
            app.get(&path, &t).await,
            app.get("/api/v1/integrations", &t).await,
            app.post(
                "/api/v1/integrations",
                &t,
                json!({"providerId": "salesforce", "name": "y"}),
            )
            .await,
            app.put(&path, &t, json!({"name": "z"})).await,
            app.delete(&path, &t).await,
            // (The catalog listing is served from its in-memory cache while
            // the store fails, so it is no longer a probe of store errors.)
            app.get("/api/v1/webhooks", &t).await,
        ];
        for a in answers {
            assert_problem(&a, status);
            let text = a.body.to_string();
            for leak in [
                "secret-db-path",
                "hunter2",
                "/var/lib",
                "panicked",
                "store refused",
            ] {
                assert!(!text.contains(leak), "{leak} in {text}");
            }
        }
        let ready = app.send(Method::GET, "/ready", None, None, &[]).await;
        if m != PANIC {
            assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(ready.body["checks"]["store"]["status"], "down");
            assert!(
                !ready.body.to_string().contains("hunter2"),
                "{:?}",
                ready.body
            );
        }
    }
    mode.store(PASS, Ordering::SeqCst);
    let r = app.get(&path, &t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "x", "nothing changed while failing");
}
