//! The webhook resources: validation, tenancy, filters, cascade.

use axum::http::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Hooks, Receiver};

#[tokio::test]
async fn bad_input_names_every_field_and_changes_nothing() {
    let h = Hooks::new().await;
    let a = h
        .post(
            "/api/v1/webhooks",
            json!({"url": "ftp://x", "events": ["Bad Event", "webhook.delivered"], "secret": "plain",
                   "integrationId": Uuid::new_v4(), "rateLimitPerSecond": 0, "extra": 1, "id": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let mut p = a.pointers();
    p.sort();
    assert_eq!(
        p,
        ["/extra", "/id"],
        "unknown and read-only fields are refused before the rest: {}",
        a.text
    );
    let a = h
        .post(
            "/api/v1/webhooks",
            json!({"url": "ftp://x", "events": ["Bad Event", "webhook.delivered"], "secret": "plain",
                   "integrationId": Uuid::new_v4(), "rateLimitPerSecond": 0}),
        )
        .await;
    let mut p = a.pointers();
    p.sort();
    assert_eq!(
        p,
        [
            "/events/0",
            "/events/1",
            "/integrationId",
            "/rateLimitPerSecond",
            "/secret",
            "/url"
        ],
        "{}",
        a.text
    );
    for url in ["http://example.com/hook", "not a url"] {
        let a = h
            .post("/api/v1/webhooks", json!({"url": url, "events": ["*"]}))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(a.pointers(), ["/url"]);
    }
    let a = h
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://x.example", "events": []}),
        )
        .await;
    assert_eq!(a.pointers(), ["/events"]);
    assert_eq!(h.get("/api/v1/webhooks").await.body["items"], json!([]));
}

#[tokio::test]
async fn other_tenants_see_404_and_lists_filter() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    let i = h.integration("A").await;
    let w = h
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("/a"), "events": ["*"], "integrationId": i["id"], "enabled": false}),
        )
        .await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.text);
    let w2 = h.webhook(&rx.url("/b"), &["integration.*"]).await;
    let wid = w.body["id"].as_str().expect("id");
    let other = h.token_for(Uuid::new_v4());
    for (m, path) in [
        (Method::GET, format!("/api/v1/webhooks/{wid}")),
        (Method::DELETE, format!("/api/v1/webhooks/{wid}")),
        (Method::GET, format!("/api/v1/webhooks/{wid}/deliveries")),
        (Method::POST, format!("/api/v1/webhooks/{wid}/test")),
        (
            Method::POST,
            format!("/api/v1/webhooks/{wid}/rotate-secret"),
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/{wid}/deliveries/{}", Uuid::new_v4()),
        ),
        (Method::GET, "/api/v1/webhooks/not-a-uuid".to_owned()),
    ] {
        let a = h.send_as(&other, m.clone(), &path, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{m} {path}: {}", a.text);
    }
    let only = h
        .get(&format!(
            "/api/v1/webhooks?integrationId={}",
            i["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(only.body["items"].as_array().map(Vec::len), Some(1));
    let enabled = h.get("/api/v1/webhooks?enabled=true").await;
    assert_eq!(enabled.body["items"][0]["id"], w2["id"]);
    let bad = h.get("/api/v1/webhooks?enabled=maybe&x=1").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // If-Match is honoured.
    let put = h
        .send(
            Method::PUT,
            &format!("/api/v1/webhooks/{wid}"),
            Some(json!({"url": rx.url("/a"), "events": ["*"], "integrationId": i["id"]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert!(put.body.get("secret").is_none());
    // Deleting the integration deletes the webhooks scoped to it.
    let d = h
        .send(
            Method::DELETE,
            &format!("/api/v1/integrations/{}", i["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&format!("/api/v1/webhooks/{wid}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get(&format!(
            "/api/v1/webhooks/{}",
            w2["id"].as_str().expect("id")
        ))
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn integration_filter_and_test_send() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    let a = h.integration("A").await;
    let w = h
        .post("/api/v1/webhooks", json!({"url": rx.url("/a"), "events": ["integration.updated"], "integrationId": a["id"]}))
        .await
        .body;
    h.integration("B").await;
    let aid = a["id"].as_str().expect("id");
    let up = h
        .put(
            &format!("/api/v1/integrations/{aid}"),
            json!({"name": "A2"}),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text);
    h.run_jobs().await;
    let got = rx.got();
    assert_eq!(got.len(), 1, "only A's update");
    assert_eq!(got[0].json()["type"], "integration.updated");
    let t = h
        .post_empty(&format!(
            "/api/v1/webhooks/{}/test",
            w["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(t.status, StatusCode::ACCEPTED, "{}", t.text);
    h.run_jobs().await;
    let got = rx.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["type"], "webhook.test");
    assert_eq!(
        got[1].header("webhook-id"),
        t.body["deliveryId"].as_str().expect("id")
    );
}

#[tokio::test]
async fn create_is_idempotent_with_a_key() {
    let h = Hooks::new().await;
    let body = json!({"url": "https://hooks.example.com/x", "events": ["*"]});
    let send = || async {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/webhooks")
            .header("authorization", format!("Bearer {}", h.token))
            .header("content-type", "application/json")
            .header("idempotency-key", "k-1")
            .body(axum::body::Body::from(body.to_string()))
            .expect("req");
        use tower::ServiceExt as _;
        let res = h.router.clone().oneshot(req).await.expect("res");
        let status = res.status();
        let b = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("b");
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&b).expect("json"),
        )
    };
    let (s1, b1) = send().await;
    let (s2, b2) = send().await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(b1["id"], b2["id"]);
    assert_eq!(
        h.get("/api/v1/webhooks").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
