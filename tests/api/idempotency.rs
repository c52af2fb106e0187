//! SPEC §5: `Idempotency-Key` on creates replays the first answer, refuses
//! the same key with another body, is scoped per tenant, and a refused
//! request does not use the key up.

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp};

async fn create(app: &TestApp, token: &str, key: &str, body: Value) -> Answer {
    app.send(
        Method::POST,
        "/api/v1/integrations",
        Some(token),
        Some(body),
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn replay_returns_the_first_answer_and_creates_nothing_new() {
    let app = TestApp::new().await;
    let events = app.record_events();
    let t = app.token(Uuid::new_v4());
    let body = json!({"providerId": "salesforce", "name": "once"});
    let first = create(&app, &t, "key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    for _ in 0..3 {
        let again = create(&app, &t, "key-1", body.clone()).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body);
        assert_eq!(
            again.headers[header::LOCATION],
            first.headers[header::LOCATION]
        );
        assert_eq!(again.etag(), first.etag());
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    assert_eq!(app.integration_ids(&t).await.len(), 1);
    assert_eq!(events.events().len(), 1, "one integration.created only");
    // Without a key, the same body creates another.
    assert_eq!(
        app.post("/api/v1/integrations", &t, body).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.integration_ids(&t).await.len(), 2);
}

#[tokio::test]
async fn same_key_with_another_body_is_a_conflict() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let first = create(
        &app,
        &t,
        "k",
        json!({"providerId": "salesforce", "name": "a"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = create(
        &app,
        &t,
        "k",
        json!({"providerId": "salesforce", "name": "b"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{:?}", other.body);
    assert_eq!(other.body["status"], 409);
    assert_eq!(app.integration_ids(&t).await.len(), 1);
    // The original is still replayed afterwards.
    let again = create(
        &app,
        &t,
        "k",
        json!({"providerId": "salesforce", "name": "a"}),
    )
    .await;
    assert_eq!(again.body["id"], first.body["id"]);
}

#[tokio::test]
async fn keys_are_scoped_per_tenant() {
    let app = TestApp::new().await;
    let a = app.token(Uuid::new_v4());
    let b = app.token(Uuid::new_v4());
    let body = json!({"providerId": "salesforce", "name": "same"});
    let ra = create(&app, &a, "shared-key", body.clone()).await;
    let rb = create(&app, &b, "shared-key", body.clone()).await;
    assert_eq!(ra.status, StatusCode::CREATED);
    assert_eq!(rb.status, StatusCode::CREATED);
    assert_ne!(ra.body["id"], rb.body["id"]);
    assert_ne!(rb.body["tenantId"], ra.body["tenantId"]);
    assert!(rb.headers.get("idempotent-replayed").is_none());
    // B with another body is not a conflict with A's use of the key.
    let c = app.token(Uuid::new_v4());
    let rc = create(
        &app,
        &c,
        "shared-key",
        json!({"providerId": "hubspot", "name": "z"}),
    )
    .await;
    assert_eq!(rc.status, StatusCode::CREATED);
    assert_eq!(app.integration_ids(&a).await.len(), 1);
    assert_eq!(app.integration_ids(&b).await.len(), 1);
}

#[tokio::test]
async fn a_refused_request_does_not_use_the_key_up() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    // Refused by the body parser.
    let bad = create(&app, &t, "k2", json!({"providerId": "salesforce"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Refused by the service (provider not visible).
    let bad = create(&app, &t, "k2", json!({"providerId": "nope", "name": "x"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let good = create(
        &app,
        &t,
        "k2",
        json!({"providerId": "salesforce", "name": "x"}),
    )
    .await;
    assert_eq!(good.status, StatusCode::CREATED, "{:?}", good.body);
    assert!(good.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.integration_ids(&t).await.len(), 1);
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let long = "k".repeat(256);
    for key in ["", "   ", long.as_str(), "has space"] {
        let a = create(
            &app,
            &t,
            key,
            json!({"providerId": "salesforce", "name": "x"}),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{key:?}");
    }
    assert!(app.integration_ids(&t).await.is_empty());
    let ok = create(
        &app,
        &t,
        &"k".repeat(255),
        json!({"providerId": "salesforce", "name": "x"}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_retries_create_one() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let t = app.token(Uuid::new_v4());
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, t) = (app.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            create(
                &app,
                &t,
                "race",
                json!({"providerId": "salesforce", "name": "r"}),
            )
            .await
            .status
        }));
    }
    for task in tasks {
        let s = task.await.expect("join");
        assert!(
            s == StatusCode::CREATED || s == StatusCode::CONFLICT,
            "a retry either replays or is told the first is in progress: {s}"
        );
    }
    assert_eq!(app.integration_ids(&t).await.len(), 1);
}
