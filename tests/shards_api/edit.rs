//! Editing shards: If-Match, bad bodies, `shard.updated`, and the routes
//! when the local store is not the sink.

use axum::http::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::browse::{OPPORTUNITY, seed};
use crate::helpers::TestApp;

#[tokio::test]
async fn put_replaces_structured_data_honours_if_match_and_raises_shard_updated() {
    let app = TestApp::new().await;
    let events = app.record_events();
    let tenant = Uuid::new_v4();
    let t = app.token(tenant);
    let id = seed(
        &app,
        tenant,
        &[(OPPORTUNITY, Some("c_opportunity"), Uuid::new_v4())],
    )
    .await[0];
    let path = format!("/api/v1/shards/{id}");
    let before = app.get(&path, &t).await;

    let stale = app
        .send(
            Method::PUT,
            &path,
            Some(&t),
            Some(json!({"structuredData": {"Amount": 1}})),
            &[("if-match", "\"not-the-version\"")],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text
    );
    assert!(
        events.events().is_empty(),
        "nothing raised for a refused edit"
    );

    let etag = format!("\"{}\"", before.etag());
    let ok = app
        .send(
            Method::PUT,
            &path,
            Some(&t),
            Some(json!({"structuredData": {"Amount": 5000, "opportunityId": "opp-9"}})),
            &[("if-match", &etag), ("x-correlation-id", "corr-shard-1")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["revision"], json!(2));
    assert_eq!(
        ok.body["structuredData"],
        json!({"Amount": 5000, "opportunityId": "opp-9"})
    );
    assert_eq!(ok.body["source"], json!("user"));
    assert_eq!(ok.body["createdAt"], before.body["createdAt"]);
    assert_eq!(
        ok.body["metadata"], before.body["metadata"],
        "the sync's link kept"
    );
    assert_ne!(ok.etag(), before.etag());
    assert_eq!(app.get(&path, &t).await.body["revision"], json!(2));

    let raised = events.events();
    assert_eq!(raised.len(), 1, "{raised:?}");
    let e = &raised[0];
    assert_eq!(e.event_type, "shard.updated");
    assert_eq!(e.tenant_id.0, tenant);
    assert_eq!(e.version, "1.0");
    assert_eq!(
        e.data,
        json!({
            "shardId": id,
            "shardTypeId": OPPORTUNITY,
            "shardTypeName": "c_opportunity",
            "opportunityId": "opp-9",
        })
    );
    assert_eq!(e.metadata.correlation_id, "corr-shard-1");
    assert_eq!(e.metadata.user_id.as_deref(), Some("user-1"));

    // Without If-Match the edit applies; `opportunityId` falls back to
    // `structuredData.id`, as shard-manager's `a || b` does.
    let again = app
        .put(
            &path,
            &t,
            json!({"structuredData": {"id": "006X", "opportunityId": ""}}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["revision"], json!(3));
    let last = events.events().pop().expect("second event");
    assert_eq!(last.data["opportunityId"], json!("006X"));
    assert_eq!(last.data["shardId"], json!(id));
}

#[tokio::test]
async fn bad_bodies_are_400_with_pointers_and_change_nothing() {
    let app = TestApp::new().await;
    let events = app.record_events();
    let tenant = Uuid::new_v4();
    let t = app.token(tenant);
    let id = seed(
        &app,
        tenant,
        &[(OPPORTUNITY, Some("c_opportunity"), Uuid::new_v4())],
    )
    .await[0];
    let path = format!("/api/v1/shards/{id}");
    for (body, pointer) in [
        (json!({}), "/structuredData"),
        (json!({"structuredData": "text"}), "/structuredData"),
        (json!({"structuredData": [1]}), "/structuredData"),
        (json!({"structuredData": {}, "colour": "red"}), "/colour"),
        (json!({"structuredData": {}, "revision": 9}), "/revision"),
        (json!([]), ""),
    ] {
        let a = app.put(&path, &t, body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert!(
            a.pointers().contains(&pointer.to_owned()),
            "{body}: {:?}",
            a.pointers()
        );
    }
    let text = app
        .send_bytes(
            Method::PUT,
            &path,
            Some(&t),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.get(&path, &t).await.body["revision"], json!(1));
    assert!(events.events().is_empty());
}

#[tokio::test]
async fn with_castiel_as_the_sink_the_routes_are_404() {
    let app = TestApp::with(&[
        ("SHARDS", "castiel"),
        ("SHARD_MANAGER_URL", "http://127.0.0.1:9/"),
    ])
    .await;
    assert_eq!(
        app.state.shards.name(),
        "castiel",
        "the Castiel client is the sink"
    );
    assert!(app.state.local_shards.is_none());
    let t = app.token(Uuid::new_v4());
    let id = Uuid::new_v4();
    for a in [
        app.get("/api/v1/shards", &t).await,
        app.get(&format!("/api/v1/shards/{id}"), &t).await,
        app.put(
            &format!("/api/v1/shards/{id}"),
            &t,
            json!({"structuredData": {}}),
        )
        .await,
        app.put(&format!("/api/v1/shards/{id}"), &t, json!({"bad": 1}))
            .await,
    ] {
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
        assert_eq!(a.headers["content-type"], "application/problem+json");
    }
    // shard-manager does not answer at that address: /ready says so.
    let ready = app.send(Method::GET, "/ready", None, None, &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["checks"]["shards"]["status"], json!("down"));
    assert_eq!(ready.body["checks"]["shards"]["backend"], json!("castiel"));
}

#[tokio::test]
async fn ready_checks_the_local_shard_store() {
    let app = TestApp::new().await;
    let ready = app.send(Method::GET, "/ready", None, None, &[]).await;
    assert_eq!(
        ready.body["checks"]["shards"]["status"],
        json!("ok"),
        "{}",
        ready.text
    );
    assert_eq!(ready.body["checks"]["shards"]["backend"], json!("embedded"));
}

#[tokio::test]
async fn a_bad_shards_setting_fails_at_start_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().to_string_lossy().into_owned();
    for (pairs, setting) in [
        (vec![("SHARDS", "mongo")], "SHARDS"),
        (vec![("SHARDS", "castiel")], "SHARD_MANAGER_URL"),
        (
            vec![("SHARDS", "castiel"), ("SHARD_MANAGER_URL", "ftp://x/")],
            "SHARD_MANAGER_URL",
        ),
    ] {
        let mut all = vec![("DATA_DIR", data_dir.as_str())];
        all.extend(pairs);
        let e = match castiel_integrations::config::Config::from_pairs(&all) {
            Err(e) => e.to_string(),
            Ok(config) => {
                let clock: std::sync::Arc<dyn castiel_integrations::clock::Clock> =
                    std::sync::Arc::new(castiel_integrations::clock::SystemClock);
                let store = crate::stores::test_store(dir.path(), clock.clone()).await;
                format!(
                    "{:#}",
                    castiel_integrations::app::wiring::build_with(config, store, clock)
                        .await
                        .expect_err("refused at start")
                )
            }
        };
        assert!(e.contains(setting), "{all:?}: {e}");
    }
}
