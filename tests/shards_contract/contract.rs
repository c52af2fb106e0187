//! The cases every sink passes.

use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::shards::{ShardError, ShardMetadata, ShardWrite};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::subjects::Subject;

/// The shard type of the tests: shard-manager takes only uuid type ids.
pub const SHARD_TYPE: &str = "6b1f3f0e-2c1a-4f5e-9a55-1d2b3c4d5e6f";

/// A synced record as the sync writes it.
pub fn write(tenant: Uuid, id: Uuid, external: &str, data: Value) -> ShardWrite {
    let Value::Object(structured_data) = data else {
        panic!("structured data must be an object")
    };
    ShardWrite {
        id,
        tenant_id: TenantId(tenant),
        shard_type_id: SHARD_TYPE.into(),
        shard_type_name: Some("c_opportunity".into()),
        structured_data,
        metadata: ShardMetadata {
            integration_id: Uuid::from_u128(7),
            external_id: external.into(),
            external_source: "salesforce".into(),
            synced_at: chrono::Utc::now(),
        },
    }
}

pub async fn create_then_update_by_id_keeps_one_shard(s: Subject) {
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    let first = s
        .sink
        .upsert_many(
            TenantId(tenant),
            vec![write(
                tenant,
                id,
                "006A",
                json!({"Name": "Big deal", "Amount": 10}),
            )],
        )
        .await
        .expect("first page");
    let r1 = first.into_iter().next().expect("one").expect("written");
    assert_eq!(r1.id, id);
    assert_eq!(r1.revision, 1);
    let created = s
        .sink
        .get(TenantId(tenant), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(created.revision, 1);
    assert_eq!(created.structured_data["Amount"], json!(10));

    let second = s
        .sink
        .upsert_many(
            TenantId(tenant),
            vec![write(
                tenant,
                id,
                "006A",
                json!({"Name": "Big deal", "Amount": 20}),
            )],
        )
        .await
        .expect("second page");
    let r2 = second.into_iter().next().expect("one").expect("written");
    assert_eq!(r2.id, id);
    assert_eq!(r2.sink_id, r1.sink_id, "the same shard");
    assert_eq!(r2.revision, 2);
    for by in [id, r2.sink_id] {
        let now = s
            .sink
            .get(TenantId(tenant), by)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(now.id, r2.sink_id);
        assert_eq!(now.revision, 2);
        assert_eq!(now.created_at, created.created_at, "createdAt kept");
        assert_eq!(now.structured_data["Amount"], json!(20));
        assert_eq!(now.source, "integration");
        let meta = now.metadata.expect("metadata");
        assert_eq!(meta.external_id, "006A");
        assert_eq!(meta.external_source, "salesforce");
        assert_eq!(meta.integration_id, Uuid::from_u128(7));
        assert_eq!(now.shard_type_name.as_deref(), Some("c_opportunity"));
    }
    assert_eq!(s.count(tenant).await, 1, "no duplicate");
    assert!(s.problems().is_empty(), "{:?}", s.problems());
}

pub async fn a_page_creates_and_updates_together(s: Subject) {
    let tenant = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..25).map(|_| Uuid::new_v4()).collect();
    let page = |n: i64| -> Vec<ShardWrite> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| write(tenant, *id, &format!("ext-{i}"), json!({"n": n, "i": i})))
            .collect()
    };
    let first = s
        .sink
        .upsert_many(TenantId(tenant), page(1)[..10].to_vec())
        .await
        .expect("first");
    assert!(
        first
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.revision == 1))
    );
    let second = s
        .sink
        .upsert_many(TenantId(tenant), page(2))
        .await
        .expect("second");
    assert_eq!(second.len(), 25);
    for (i, r) in second.iter().enumerate() {
        let r = r.as_ref().expect("written");
        assert_eq!(r.id, ids[i], "results in order");
        assert_eq!(r.revision, if i < 10 { 2 } else { 1 }, "shard {i}");
    }
    assert_eq!(s.count(tenant).await, 25);
    let last = s
        .sink
        .get(TenantId(tenant), ids[24])
        .await
        .expect("get")
        .expect("found");
    assert_eq!(last.structured_data["n"], json!(2));
    assert!(s.problems().is_empty(), "{:?}", s.problems());
}

pub async fn another_tenant_cannot_read_it(s: Subject) {
    let tenant = Uuid::new_v4();
    let other = Uuid::new_v4();
    let id = Uuid::new_v4();
    let r = s
        .sink
        .upsert_many(
            TenantId(tenant),
            vec![write(tenant, id, "x", json!({"a": 1}))],
        )
        .await
        .expect("page")
        .remove(0)
        .expect("written");
    for by in [id, r.sink_id] {
        assert!(
            s.sink
                .get(TenantId(other), by)
                .await
                .expect("get")
                .is_none(),
            "another tenant reads nothing"
        );
    }
    assert!(
        s.sink
            .get(TenantId(tenant), Uuid::new_v4())
            .await
            .expect("get")
            .is_none()
    );
    // A page of another tenant's shards is refused whole.
    let e = s
        .sink
        .upsert_many(
            TenantId(other),
            vec![write(tenant, id, "x", json!({"a": 2}))],
        )
        .await
        .expect_err("refused");
    assert!(matches!(e, ShardError::Rejected(_)), "{e}");
    assert_eq!(s.count(other).await, 0);
    let mine = s
        .sink
        .get(TenantId(tenant), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(mine.revision, 1, "untouched");
    assert!(s.problems().is_empty(), "{:?}", s.problems());
}

pub async fn one_refused_shard_fails_alone(s: Subject) {
    let tenant = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let huge = "x".repeat(2_100_000);
    let mut big = Map::new();
    big.insert("blob".into(), json!(huge));
    let page = vec![
        write(tenant, ids[0], "a", json!({"ok": 1})),
        write(tenant, ids[1], "b", Value::Object(big)),
        write(tenant, ids[2], "c", json!({"ok": 3})),
    ];
    let out = s
        .sink
        .upsert_many(TenantId(tenant), page)
        .await
        .expect("page");
    assert!(out[0].is_ok(), "{:?}", out[0]);
    assert!(
        matches!(out[1], Err(ShardError::Rejected(_))),
        "{:?}",
        out[1]
    );
    assert!(out[2].is_ok(), "{:?}", out[2]);
    assert_eq!(s.count(tenant).await, 2);
    assert!(
        s.sink
            .get(TenantId(tenant), ids[1])
            .await
            .expect("get")
            .is_none()
    );
    let third = s
        .sink
        .get(TenantId(tenant), ids[2])
        .await
        .expect("get")
        .expect("found");
    assert_eq!(third.structured_data["ok"], json!(3));
    // The refusal names no data.
    let Err(e) = &out[1] else { unreachable!() };
    assert!(!e.to_string().contains("xxxx"), "{e}");
}

pub async fn health_answers(s: Subject) {
    s.sink.health().await.expect("healthy");
    assert!(!s.sink.name().is_empty());
}
