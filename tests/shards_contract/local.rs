//! The local shard store only: big pages, repeated ids, what is stored.

use std::sync::Arc;

use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::events::Events;
use castiel_integrations::platform::events::in_process::InProcessBus;
use castiel_integrations::platform::shards::ShardSink;
use castiel_integrations::platform::shards::local::LocalShards;
use castiel_integrations::platform::store::{Container, Store};
use serde_json::json;
use uuid::Uuid;

use crate::contract::write;

async fn sink() -> (LocalShards, Arc<dyn Store>, tempfile::TempDir) {
    let (store, dir) = crate::subjects::store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let events = Arc::new(Events::new(Arc::new(InProcessBus), clock.clone()));
    (LocalShards::new(store.clone(), clock, events), store, dir)
}

#[tokio::test]
async fn a_page_past_one_query_page_finds_every_existing_shard() {
    let (shards, _store, _dir) = sink().await;
    let tenant = Uuid::new_v4();
    // One more than a query page (1,000 ids), so the read takes two.
    let ids: Vec<Uuid> = (0..1001).map(|_| Uuid::new_v4()).collect();
    let page = |n: u32| {
        ids.iter()
            .map(|id| write(tenant, *id, &id.to_string(), json!({"n": n})))
            .collect::<Vec<_>>()
    };
    let first = shards
        .upsert_many(TenantId(tenant), page(1))
        .await
        .expect("first");
    assert!(
        first
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.revision == 1))
    );
    let second = shards
        .upsert_many(TenantId(tenant), page(2))
        .await
        .expect("second");
    assert!(
        second
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.revision == 2)),
        "every existing shard was found, past the first 1,000"
    );
}

#[tokio::test]
async fn an_id_twice_in_a_page_is_one_shard() {
    let (shards, _store, _dir) = sink().await;
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    let out = shards
        .upsert_many(
            TenantId(tenant),
            vec![
                write(tenant, id, "a", json!({"v": 1})),
                write(tenant, id, "a", json!({"v": 2})),
            ],
        )
        .await
        .expect("page");
    assert_eq!(out[0].as_ref().expect("first").revision, 1);
    assert_eq!(out[1].as_ref().expect("second").revision, 2);
    let s = shards
        .get(TenantId(tenant), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(s.structured_data["v"], json!(2));
    assert_eq!(s.revision, 2);
}

#[tokio::test]
async fn the_stored_document_has_no_etag_and_its_type_keys() {
    let (shards, store, _dir) = sink().await;
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    shards
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "a", json!({"v": 1}))],
        )
        .await
        .expect("page");
    let doc = store
        .read(Container::Shards, &tenant.to_string(), &id.to_string())
        .await
        .expect("read")
        .expect("found");
    assert!(doc.body.get("etag").is_none(), "{}", doc.body);
    assert_eq!(
        doc.body["shardTypeKeys"],
        json!([crate::contract::SHARD_TYPE, "c_opportunity"])
    );
    assert_eq!(doc.body["source"], json!("integration"));
    assert_eq!(doc.body["metadata"]["externalSource"], json!("salesforce"));
    let s = shards
        .get(TenantId(tenant), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(s.etag, doc.etag.to_string(), "the store's version");
}
