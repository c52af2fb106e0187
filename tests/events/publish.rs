//! Each CRUD operation publishes exactly its event with a valid envelope.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::broker::{Tap, unique, url, wait_bus};
use crate::helpers::TestApp;

fn check_envelope(m: &crate::broker::Received, tenant: Uuid, event_type: &str, correlation: &str) {
    let b = &m.body;
    let id: Uuid = b["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("uuid id");
    assert_eq!(m.routing_key, event_type);
    assert_eq!(b["type"], event_type);
    assert_eq!(m.kind.as_deref(), Some(event_type), "AMQP type");
    assert_eq!(
        m.message_id.as_deref(),
        Some(id.to_string().as_str()),
        "messageId"
    );
    assert_eq!(m.app_id.as_deref(), Some("integration-manager"));
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(m.delivery_mode, Some(2), "persistent");
    assert_eq!(b["version"], "1.0");
    assert_eq!(m.header("version").as_deref(), Some("1.0"));
    let ts = b["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp");
    let t: Uuid = b["tenantId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("uuid tenant");
    assert_eq!(t, tenant);
    assert_eq!(m.header("tenantId"), Some(tenant.to_string()));
    assert_eq!(b["source"]["service"], "integration-manager");
    assert!(
        b["source"]["instance"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(b["metadata"]["correlationId"], correlation);
    assert_eq!(b["metadata"]["userId"], "user-1");
    let keys: Vec<&String> = b.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "data",
            "id",
            "metadata",
            "source",
            "tenantId",
            "timestamp",
            "type",
            "version"
        ]
    );
    let data = b["data"].as_object().expect("data");
    for k in ["integrationId", "providerId", "name", "status"] {
        assert!(data.contains_key(k), "data.{k}");
    }
}

#[tokio::test]
async fn each_crud_operation_publishes_its_event() {
    let exchange = unique("test_events");
    let mut tap = Tap::on(&exchange).await;
    let app = TestApp::with(&[("RABBITMQ_URL", &url()), ("RABBITMQ_EXCHANGE", &exchange)]).await;
    wait_bus(&app.state).await;
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    let corr = Uuid::new_v4().to_string();
    let h = [("x-correlation-id", corr.as_str())];

    let created = app
        .send(
            Method::POST,
            "/api/v1/integrations",
            Some(&token),
            Some(json!({"providerId": "salesforce", "name": "Sales"})),
            &h,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let m = tap
        .next(Duration::from_secs(10))
        .await
        .expect("created event");
    check_envelope(&m, tenant, "integration.created", &corr);
    assert_eq!(m.body["data"]["integrationId"], id.as_str());
    assert_eq!(m.body["data"]["status"], "pending");

    let path = format!("/api/v1/integrations/{id}");
    let updated = app
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"name": "Sales EU"})),
            &h,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let m = tap
        .next(Duration::from_secs(10))
        .await
        .expect("updated event");
    check_envelope(&m, tenant, "integration.updated", &corr);
    assert_eq!(m.body["data"]["name"], "Sales EU");

    let mapping = app
        .send(
            Method::PUT,
            &format!("{path}/field-mappings/Account"),
            Some(&token),
            Some(json!({"shardTypeId": "c_account", "fieldMappings": []})),
            &h,
        )
        .await;
    assert_eq!(mapping.status, StatusCode::OK, "{:?}", mapping.body);
    let m = tap
        .next(Duration::from_secs(10))
        .await
        .expect("mapping event");
    check_envelope(&m, tenant, "integration.updated", &corr);

    // A refused change publishes nothing.
    let bad = app
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"name": ""})),
            &h,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let deleted = app
        .send(Method::DELETE, &path, Some(&token), None, &h)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let m = tap
        .next(Duration::from_secs(10))
        .await
        .expect("deleted event");
    check_envelope(&m, tenant, "integration.deleted", &corr);
    assert_eq!(m.body["data"]["integrationId"], id.as_str());

    assert!(
        tap.next(Duration::from_millis(500)).await.is_none(),
        "exactly one event per change"
    );
    // Confirmed entries are cleaned up.
    let left = app
        .state
        .store
        .query(
            castiel_integrations::platform::store::Container::Outbox,
            &castiel_integrations::platform::store::Query::partition(tenant.to_string())
                .eq("kind", "event"),
        )
        .await
        .expect("query");
    assert!(
        left.items.is_empty(),
        "outbox not cleaned: {:?}",
        left.items
    );
    let ready = app.get("/ready", &token).await;
    assert_eq!(ready.body["checks"]["events"]["backend"], "rabbitmq");
    assert_eq!(ready.body["checks"]["events"]["status"], "ok");
    tap.cleanup().await;
}

#[tokio::test]
async fn ready_reports_an_unreachable_broker_and_the_api_keeps_working() {
    let app = TestApp::with(&[("RABBITMQ_URL", &crate::broker::dead_url())]).await;
    let token = app.token(Uuid::new_v4());
    let ready = app.get("/ready", &token).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["checks"]["events"]["status"], "down");
    assert_eq!(ready.body["checks"]["events"]["backend"], "rabbitmq");
    let e = ready.body["checks"]["events"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(!e.contains("guest"), "no credentials in /ready: {e}");
    app.create_integration(&token, "works").await;
}
