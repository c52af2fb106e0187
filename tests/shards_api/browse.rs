//! Listing and reading shards.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::shards::{ShardMetadata, ShardWrite};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

/// The uuid type id of the `c_opportunity` shards of these tests.
pub const OPPORTUNITY: &str = "0d5f0d8e-6a3b-4e43-9c55-2f4b0c1d9e01";

/// Writes shards as the sync does: `(type id, type name, integration)`.
pub async fn seed(app: &TestApp, tenant: Uuid, shards: &[(&str, Option<&str>, Uuid)]) -> Vec<Uuid> {
    let writes: Vec<ShardWrite> = shards
        .iter()
        .enumerate()
        .map(|(i, (type_id, name, integration))| ShardWrite {
            id: Uuid::new_v4(),
            tenant_id: TenantId(tenant),
            shard_type_id: (*type_id).to_owned(),
            shard_type_name: name.map(str::to_owned),
            structured_data: json!({"Name": format!("record {i}"), "id": format!("006{i}")})
                .as_object()
                .expect("object")
                .clone(),
            metadata: ShardMetadata {
                integration_id: *integration,
                external_id: format!("006{i}"),
                external_source: "salesforce".into(),
                synced_at: chrono::Utc::now(),
            },
        })
        .collect();
    let ids = writes.iter().map(|w| w.id).collect();
    let out = app
        .state
        .shards
        .upsert_many(TenantId(tenant), writes)
        .await
        .expect("page");
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    ids
}

fn ids(items: &[Value]) -> HashSet<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn strings(ids: &[Uuid]) -> HashSet<String> {
    ids.iter().map(Uuid::to_string).collect()
}

#[tokio::test]
async fn lists_filter_by_type_name_or_id_and_integration_and_page() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let t = app.token(tenant);
    let (i1, i2) = (Uuid::new_v4(), Uuid::new_v4());
    let opps = seed(
        &app,
        tenant,
        &[
            (OPPORTUNITY, Some("c_opportunity"), i1),
            (OPPORTUNITY, Some("c_opportunity"), i1),
            (OPPORTUNITY, Some("c_opportunity"), i1),
            (OPPORTUNITY, Some("c_opportunity"), i2),
            (OPPORTUNITY, Some("c_opportunity"), i2),
        ],
    )
    .await;
    let accounts = seed(
        &app,
        tenant,
        &[("c_account", None, i1), ("c_account", None, i2)],
    )
    .await;
    let other = seed(&app, Uuid::new_v4(), &[("c_account", None, i1)]).await;

    let (all, pages) = app.list_all("/api/v1/shards?limit=3", &t).await;
    assert_eq!(pages, 3);
    let mut every = opps.clone();
    every.extend(&accounts);
    assert_eq!(
        ids(&all),
        strings(&every),
        "every shard once, no other tenant's"
    );
    assert!(!ids(&all).contains(&other[0].to_string()));

    let (by_name, _) = app
        .list_all("/api/v1/shards?shardTypeName=c_opportunity", &t)
        .await;
    assert_eq!(ids(&by_name), strings(&opps));
    let (by_id, _) = app
        .list_all(&format!("/api/v1/shards?shardTypeName={OPPORTUNITY}"), &t)
        .await;
    assert_eq!(ids(&by_id), strings(&opps), "the type id matches too");
    let (acc, _) = app
        .list_all("/api/v1/shards?shardTypeName=c_account", &t)
        .await;
    assert_eq!(ids(&acc), strings(&accounts));
    let (from_i1, _) = app
        .list_all(&format!("/api/v1/shards?integrationId={i1}"), &t)
        .await;
    assert_eq!(
        ids(&from_i1),
        strings(&[opps[0], opps[1], opps[2], accounts[0]])
    );
    let (both, _) = app
        .list_all(
            &format!("/api/v1/shards?integrationId={i2}&shardTypeName=c_account"),
            &t,
        )
        .await;
    assert_eq!(ids(&both), strings(&[accounts[1]]));

    let first = &all[0];
    assert_eq!(first["source"], json!("integration"));
    assert_eq!(first["metadata"]["externalSource"], json!("salesforce"));
    assert!(first["etag"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(
        first.get("shardTypeKeys").is_none(),
        "storage detail hidden"
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400_with_pointers() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    for (query, pointer) in [
        ("integrationId=not-a-uuid", "/integrationId"),
        ("limit=0", "/limit"),
        ("limit=201", "/limit"),
        ("shardType=x", "/shardType"),
        ("continuationToken=bogus", "/continuationToken"),
    ] {
        let a = app.get(&format!("/api/v1/shards?{query}"), &t).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.text);
        assert_eq!(a.pointers(), [pointer], "{query}");
    }
}

#[tokio::test]
async fn get_answers_the_shard_with_its_etag() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let t = app.token(tenant);
    let id = seed(
        &app,
        tenant,
        &[(OPPORTUNITY, Some("c_opportunity"), Uuid::new_v4())],
    )
    .await[0];
    let a = app.get(&format!("/api/v1/shards/{id}"), &t).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["id"], json!(id));
    assert_eq!(a.body["tenantId"], json!(tenant));
    assert_eq!(a.body["revision"], json!(1));
    assert_eq!(a.body["structuredData"]["Name"], json!("record 0"));
    assert_eq!(a.etag(), a.body["etag"].as_str().expect("etag"));
    let missing = app
        .get(&format!("/api/v1/shards/{}", Uuid::new_v4()), &t)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.headers["content-type"], "application/problem+json");
    let odd = app.get("/api/v1/shards/not-a-uuid", &t).await;
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_tenant_gets_404_on_every_route() {
    let app = TestApp::new().await;
    let owner = Uuid::new_v4();
    let id = seed(
        &app,
        owner,
        &[(OPPORTUNITY, Some("c_opportunity"), Uuid::new_v4())],
    )
    .await[0];
    let t = app.token(Uuid::new_v4());
    let path = format!("/api/v1/shards/{id}");
    assert_eq!(app.get(&path, &t).await.status, StatusCode::NOT_FOUND);
    let put = app
        .put(&path, &t, json!({"structuredData": {"Name": "stolen"}}))
        .await;
    assert_eq!(put.status, StatusCode::NOT_FOUND, "{}", put.text);
    let (items, _) = app.list_all("/api/v1/shards", &t).await;
    assert!(items.is_empty());
    let mine = app.get(&path, &app.token(owner)).await;
    assert_eq!(
        mine.body["structuredData"]["Name"],
        json!("record 0"),
        "untouched"
    );
    assert_eq!(mine.body["revision"], json!(1));
    let anonymous = app
        .send(Method::GET, "/api/v1/shards", None, None, &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
