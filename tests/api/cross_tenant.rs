//! Another tenant's data is invisible, on every route the API has: the
//! routes are read from the OpenAPI document (a new route is covered without
//! editing this test), and each is called by tenant B once with tenant A's
//! ids and once with random ones. The two answers must not differ (status,
//! problem type, detail), and A's data must be unchanged afterwards.

use axum::http::Method;
use rand::seq::SliceRandom as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp};

/// A's ids, by path parameter name and the collection they belong to.
struct Owned {
    integration: String,
    webhook: String,
    delivery: String,
}

impl Owned {
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/api/v1/webhooks") {
            &self.webhook
        } else {
            &self.integration
        };
        path.replace("{id}", id)
            .replace("{deliveryId}", &self.delivery)
            .replace("{entityType}", "Account")
    }

    fn random(path: &str) -> String {
        path.replace("{id}", &Uuid::new_v4().to_string())
            .replace("{deliveryId}", &Uuid::new_v4().to_string())
            .replace("{entityType}", "Account")
    }
}

/// What may differ between two answers that reveal nothing: ids echoed back.
fn shape(a: &Answer) -> (u16, Value, Value) {
    (
        a.status.as_u16(),
        a.body.get("type").cloned().unwrap_or(Value::Null),
        a.body.get("detail").cloned().unwrap_or(Value::Null),
    )
}

/// A body each write route accepts in form, so that what is compared is the
/// lookup and not a validation error.
fn body_for(method: &Method, path: &str) -> Option<Value> {
    match (method.as_str(), path) {
        ("PUT", p) if p.ends_with("/field-mappings/{entityType}") => {
            Some(json!({"shardTypeId": "c_account", "fieldMappings": []}))
        }
        ("PUT", "/api/v1/integrations/{id}") => Some(json!({"name": "taken over"})),
        ("PUT", "/api/v1/webhooks/{id}") => {
            Some(json!({"url": "http://127.0.0.1:9/hijack", "events": ["*"]}))
        }
        ("POST", p) if p.ends_with("/recover") => Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ("POST", p) if p.ends_with("/test") && p.contains("field-mappings") => {
            Some(json!({"testData": {}}))
        }
        ("POST", p) if p.ends_with("/rotate-secret") => Some(json!({})),
        _ => None,
    }
}

#[tokio::test]
async fn no_route_tells_another_tenants_resource_from_a_missing_one() {
    let app = TestApp::with(&[("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8")]).await;
    let (a, b) = (app.token(Uuid::new_v4()), app.token(Uuid::new_v4()));
    let integration = app.create_integration(&a, "A's").await;
    let webhook = app
        .post(
            "/api/v1/webhooks",
            &a,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await;
    let webhook_id = webhook.body["id"].as_str().expect("webhook").to_owned();
    let test = app
        .post(
            &format!("/api/v1/webhooks/{webhook_id}/test"),
            &a,
            json!({}),
        )
        .await;
    let owned = Owned {
        integration: integration["id"].as_str().expect("id").to_owned(),
        webhook: webhook_id,
        delivery: test.body["deliveryId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    let before = app
        .get(&format!("/api/v1/integrations/{}", owned.integration), &a)
        .await;

    let doc = castiel_integrations::drivers::http::openapi();
    let mut routes: Vec<(Method, String)> = Vec::new();
    for (path, item) in &doc.paths.paths {
        // Tenant data only: the catalog and admin routes hold none.
        if !path.contains('{') || path.contains("/admin/") || path.contains("/catalog") {
            continue;
        }
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
        ] {
            if op.is_some() {
                routes.push((method, path.clone()));
            }
        }
    }
    assert!(
        routes.len() >= 12,
        "the document lists the routes: {routes:?}"
    );
    // In random order, so that no route depends on another having run.
    routes.shuffle(&mut rand::rng());
    let mut differences = Vec::new();
    for (method, path) in &routes {
        let body = body_for(method, path);
        let theirs = app
            .send(
                method.clone(),
                &owned.fill(path),
                Some(&b),
                body.clone(),
                &[],
            )
            .await;
        let random = app
            .send(method.clone(), &Owned::random(path), Some(&b), body, &[])
            .await;
        if shape(&theirs) != shape(&random) || theirs.status.is_success() {
            differences.push(format!(
                "{method} {path}: A's id → {} {}, random → {} {}",
                theirs.status, theirs.text, random.status, random.text
            ));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    let after = app
        .get(&format!("/api/v1/integrations/{}", owned.integration), &a)
        .await;
    assert_eq!(after.body, before.body, "A's integration is unchanged");
    let hook = app
        .get(&format!("/api/v1/webhooks/{}", owned.webhook), &a)
        .await;
    assert_eq!(hook.status, 200, "A's webhook is still there");
}
