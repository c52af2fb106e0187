//! The shard-manager client only: the routes, token and tenant header the
//! double checks, ids it generates, creates without an answer, retries,
//! and health when it is down.

use axum::http::StatusCode;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::shards::castiel::CastielShards;
use castiel_integrations::platform::shards::{ShardError, ShardSink};
use castiel_integrations::platform::store::Container;
use serde_json::json;
use uuid::Uuid;

use crate::contract::write;
use crate::shard_manager_double::{self, JWT_SECRET, ShardManagerDouble};

#[tokio::test]
async fn calls_use_the_documented_routes_body_and_service_token() {
    let double = ShardManagerDouble::start().await;
    let (store, _dir) = crate::subjects::store().await;
    let client = double.client(store);
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    let r = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "006A", json!({"Amount": 1}))],
        )
        .await
        .expect("page")
        .remove(0)
        .expect("created");
    assert_ne!(r.sink_id, id, "shard-manager generates its ids");
    client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "006A", json!({"Amount": 2}))],
        )
        .await
        .expect("page")
        .remove(0)
        .expect("updated");
    client.health().await.expect("health");
    let state = double.state();
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    assert_eq!(
        state.requests,
        ["POST /api/v1/shards", "PUT /api/v1/shards/{id}"]
    );
    let shard = &state.of(tenant)[0];
    assert_eq!(shard["id"], json!(r.sink_id));
    assert_eq!(shard["source"], json!("integration"));
    assert_eq!(shard["shardTypeId"], json!(crate::contract::SHARD_TYPE));
    assert_eq!(shard["shardTypeName"], json!("c_opportunity"));
    assert_eq!(shard["structuredData"], json!({"Amount": 2}));
    assert_eq!(shard["metadata"]["externalId"], json!("006A"));
    assert_eq!(shard["metadata"]["externalSource"], json!("salesforce"));
    assert_eq!(shard["sourceDetails"]["originalId"], json!(id));
    assert_eq!(shard["revisionNumber"], json!(2));
}

#[tokio::test]
async fn a_create_without_an_answer_is_found_and_never_made_twice() {
    let double = ShardManagerDouble::start().await;
    let (store, _dir) = crate::subjects::store().await;
    let client = double.client(store);
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    double.state().lose_create_answers = 1;
    let r = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 1}))],
        )
        .await
        .expect("page")
        .remove(0)
        .expect("found after the lost answer");
    assert_eq!(double.state().of(tenant).len(), 1, "not created twice");
    assert_eq!(r.sink_id.to_string(), double.state().of(tenant)[0]["id"]);
    let again = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 2}))],
        )
        .await
        .expect("page")
        .remove(0)
        .expect("updated");
    assert_eq!(again.sink_id, r.sink_id);
    assert_eq!(double.state().of(tenant).len(), 1);
    let creates = double
        .state()
        .requests
        .iter()
        .filter(|r| r.as_str() == "POST /api/v1/shards")
        .count();
    assert_eq!(creates, 1, "the create was never sent again");
}

#[tokio::test]
async fn a_pending_id_map_entry_is_checked_before_creating() {
    let double = ShardManagerDouble::start().await;
    let (store, _dir) = crate::subjects::store().await;
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    // A process stopped after its create reached shard-manager and before
    // it recorded the generated id: the id-map entry is left pending.
    let landed = Uuid::new_v4();
    double.state().shards.push(
        json!({
            "id": landed, "tenantId": tenant, "shardTypeId": crate::contract::SHARD_TYPE,
            "structuredData": {"v": 1}, "revisionNumber": 1, "revisionId": Uuid::new_v4(),
            "source": "integration", "sourceDetails": {"originalId": id},
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        })
        .as_object()
        .expect("object")
        .clone(),
    );
    store
        .upsert(
            Container::Shards,
            json!({"id": format!("castiel:{id}"), "tenantId": tenant, "kind": "castielShard"}),
        )
        .await
        .expect("pending entry");
    let r = double
        .client(store)
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 3}))],
        )
        .await
        .expect("page")
        .remove(0)
        .expect("written");
    assert_eq!(r.sink_id, landed);
    assert_eq!(r.revision, 2);
    let state = double.state();
    assert_eq!(state.of(tenant).len(), 1, "not created twice");
    assert_eq!(state.of(tenant)[0]["structuredData"], json!({"v": 3}));
    assert_eq!(
        state.requests,
        ["GET /api/v1/shards", "PUT /api/v1/shards/{id}"]
    );
}

#[tokio::test]
async fn server_errors_are_retried_for_updates_but_a_4xx_is_not() {
    let double = ShardManagerDouble::start().await;
    let (store, _dir) = crate::subjects::store().await;
    let client = double.client(store);
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 1}))],
        )
        .await
        .expect("page");
    double.state().requests.clear();
    double.state().answer_with = Some(StatusCode::SERVICE_UNAVAILABLE);
    let e = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 2}))],
        )
        .await
        .expect_err("unavailable");
    assert!(
        matches!(&e, ShardError::Unavailable(m) if m.contains("503")),
        "{e}"
    );
    assert_eq!(double.state().requests.len(), 3, "one try and two retries");
    double.state().requests.clear();
    double.state().answer_with = Some(StatusCode::BAD_REQUEST);
    let out = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 2}))],
        )
        .await
        .expect("page");
    assert!(
        matches!(out[0], Err(ShardError::Rejected(_))),
        "{:?}",
        out[0]
    );
    assert_eq!(double.state().requests.len(), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn a_wrong_jwt_secret_is_unavailable_and_names_no_token() {
    let double = ShardManagerDouble::start().await;
    let (store, _dir) = crate::subjects::store().await;
    let keys = shard_manager_double::keys("not-the-secret-castiel-services-share!!");
    let client = CastielShards::new(double.url.clone(), keys, store).expect("client");
    let tenant = Uuid::new_v4();
    let e = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, Uuid::new_v4(), "a", json!({}))],
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, ShardError::Unavailable(m) if m.contains("401")),
        "{e}"
    );
    assert!(!e.to_string().contains("Bearer") && !e.to_string().contains(JWT_SECRET));
    assert_eq!(double.state().problems.len(), 1);
}

#[tokio::test]
async fn health_fails_when_shard_manager_is_down() {
    let double = ShardManagerDouble::start().await;
    let url = double.url.clone();
    double.stop().await;
    drop(double);
    let (store, _dir) = crate::subjects::store().await;
    let client =
        CastielShards::new(url, shard_manager_double::keys(JWT_SECRET), store).expect("client");
    let e = client.health().await.expect_err("down");
    assert!(matches!(e, ShardError::Unavailable(_)), "{e}");
    let tenant = Uuid::new_v4();
    let e = client
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, Uuid::new_v4(), "a", json!({}))],
        )
        .await
        .expect_err("down");
    assert!(matches!(e, ShardError::Unavailable(_)), "{e}");
}
