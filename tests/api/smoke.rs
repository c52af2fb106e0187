//! The curl walk-through of the README, as a test.

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn walk_through() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    let catalog = app.get("/api/v1/integrations/catalog", &token).await;
    assert_eq!(catalog.status, StatusCode::OK);
    let ids: Vec<&str> = catalog.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["custom_rest", "google_workspace", "hubspot", "salesforce"]
    );
    let created = app
        .post(
            "/api/v1/integrations",
            &token,
            json!({"providerId": "salesforce", "name": "Sales"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["status"], "pending");
    let id = created.body["id"].as_str().expect("id");
    let read = app.get(&format!("/api/v1/integrations/{id}"), &token).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["name"], "Sales");
    assert_eq!(read.etag(), created.etag());
}
