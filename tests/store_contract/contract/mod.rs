//! The behaviour every Store implementation must show. Each test uses its own
//! fresh partition keys, so backends may share one database between tests.
//!
//! Single documents here; queries and counts in `queries.rs`; expiry on a
//! manual clock in `expiry.rs`; units of work (`write_all`, deferred
//! writes) in `units.rs`.

mod expiry;
mod queries;
mod units;

use std::sync::Arc;

use castiel_integrations::platform::store::{
    Body, Container, ETag, Encoded, Store, StoreError, Write,
};
use serde_json::{Value, json};
use uuid::Uuid;

pub use expiry::*;
pub use queries::*;
pub use units::*;

pub(crate) fn key() -> String {
    Uuid::new_v4().to_string()
}

pub(crate) fn doc(tenant: &str, id: &str, extra: Value) -> Value {
    let mut v = json!({ "id": id, "tenantId": tenant });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

pub(crate) const C: Container = Container::Integrations;

pub async fn create_then_read(s: Arc<dyn Store>) {
    let t = key();
    let created = s
        .create(C, doc(&t, "a", json!({"n": 1})))
        .await
        .expect("create");
    assert_eq!(created.id, "a");
    assert_eq!(created.partition_key, t);
    let read = s.read(C, &t, "a").await.expect("read").expect("present");
    assert_eq!(read.etag, created.etag);
    assert_eq!(read.body["n"], 1);
    assert!(s.read(C, &t, "missing").await.expect("read").is_none());
    assert!(
        s.read(C, &key(), "a")
            .await
            .expect("read other partition")
            .is_none()
    );
}

pub async fn duplicate_create_conflicts(s: Arc<dyn Store>) {
    let t = key();
    s.create(C, doc(&t, "a", json!({}))).await.expect("create");
    assert!(matches!(
        s.create(C, doc(&t, "a", json!({}))).await,
        Err(StoreError::Conflict)
    ));
    s.create(C, doc(&key(), "a", json!({})))
        .await
        .expect("same id, other partition");
    let missing_pk = json!({"id": "x"});
    assert!(matches!(
        s.create(C, missing_pk).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn replace_honours_etag(s: Arc<dyn Store>) {
    let t = key();
    let v1 = s
        .create(C, doc(&t, "a", json!({"n": 1})))
        .await
        .expect("create");
    let v2 = s
        .replace(C, doc(&t, "a", json!({"n": 2})), Some(&v1.etag))
        .await
        .expect("replace");
    assert_ne!(v1.etag, v2.etag);
    let stale = s
        .replace(C, doc(&t, "a", json!({"n": 3})), Some(&v1.etag))
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed)),
        "{stale:?}"
    );
    assert_eq!(
        s.read(C, &t, "a")
            .await
            .expect("read")
            .expect("present")
            .body["n"],
        2
    );
    let v3 = s
        .replace(C, doc(&t, "a", json!({"n": 4})), None)
        .await
        .expect("unconditional");
    assert_ne!(v3.etag, v2.etag);
    let missing = s.replace(C, doc(&t, "nope", json!({})), None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

pub async fn upsert_inserts_and_replaces(s: Arc<dyn Store>) {
    let t = key();
    let a = s
        .upsert(C, doc(&t, "a", json!({"n": 1})))
        .await
        .expect("insert");
    let b = s
        .upsert(C, doc(&t, "a", json!({"n": 2})))
        .await
        .expect("replace");
    assert_ne!(a.etag, b.etag);
    let read = s.read(C, &t, "a").await.expect("read").expect("present");
    assert_eq!(read.body["n"], 2);
    assert_eq!(read.etag, b.etag);
}

pub async fn delete_honours_etag(s: Arc<dyn Store>) {
    let t = key();
    let v1 = s.create(C, doc(&t, "a", json!({}))).await.expect("create");
    let v2 = s
        .replace(C, doc(&t, "a", json!({"n": 1})), None)
        .await
        .expect("replace");
    assert!(matches!(
        s.delete(C, &t, "a", Some(&v1.etag)).await,
        Err(StoreError::PreconditionFailed)
    ));
    s.delete(C, &t, "a", Some(&v2.etag)).await.expect("delete");
    assert!(s.read(C, &t, "a").await.expect("read").is_none());
    assert!(matches!(
        s.delete(C, &t, "a", None).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn concurrent_replace_one_wins(s: Arc<dyn Store>) {
    let t = key();
    let v1 = s
        .create(C, doc(&t, "a", json!({"n": 0})))
        .await
        .expect("create");
    let (a, b) = tokio::join!(
        s.replace(C, doc(&t, "a", json!({"n": 1})), Some(&v1.etag)),
        s.replace(C, doc(&t, "a", json!({"n": 2})), Some(&v1.etag)),
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    let lost = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(StoreError::PreconditionFailed)))
        .count();
    assert_eq!((wins, lost), (1, 1), "{a:?} {b:?}");
    let winner = if a.is_ok() { 1 } else { 2 };
    assert_eq!(
        s.read(C, &t, "a")
            .await
            .expect("read")
            .expect("present")
            .body["n"],
        winner
    );
    let etag: ETag = s
        .read(C, &t, "a")
        .await
        .expect("read")
        .expect("present")
        .etag;
    assert_ne!(etag, v1.etag);
}

pub async fn bodies_round_trip(s: Arc<dyn Store>) {
    let t = key();
    let body = doc(
        &t,
        "rt",
        json!({"unicode": "Zoë ✓ 日本", "nested": {"list": [1, 2.5, null, {"k": "v"}]}, "big": 9_007_199_254_740_991_i64,
               "quote": "a\"b'c", "empty": {}, "unknownField": true}),
    );
    s.create(C, body.clone()).await.expect("create");
    let read = s.read(C, &t, "rt").await.expect("read").expect("present");
    for k in ["unicode", "nested", "big", "quote", "empty", "unknownField"] {
        assert_eq!(read.body[k], body[k], "{k}");
    }
    assert!(
        read.body.get("_etag").is_none() && read.body.get("_rid").is_none(),
        "no system properties"
    );
}

pub async fn provision_and_health(s: Arc<dyn Store>) {
    s.provision().await.expect("provision");
    s.provision().await.expect("provision again");
    s.health().await.expect("health");
}

/// Bodies handed over as JSON text are stored as that JSON: read back as
/// the same document, replaced under If-Match like any other.
pub async fn text_bodies_are_documents(s: Arc<dyn Store>) {
    let t = key();
    let encoded = |n: u32| {
        Body::Text(Encoded {
            id: "text".into(),
            pk: t.clone(),
            text: doc(&t, "text", json!({"n": n, "s": "é\"x"})).to_string(),
        })
    };
    let docs = s
        .write_all(vec![Write::Create {
            container: C,
            body: encoded(1),
        }])
        .await
        .expect("create text");
    let etag = docs[0].as_ref().expect("created").etag.clone();
    let read = s.read(C, &t, "text").await.expect("read").expect("found");
    assert_eq!(read.body["n"], 1);
    assert_eq!(read.body["s"], "é\"x");
    assert_eq!(read.etag, etag);
    let stale = s
        .write_all(vec![Write::Replace {
            container: C,
            body: encoded(3),
            if_match: Some(ETag::new("stale")),
        }])
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed)),
        "{stale:?}"
    );
    s.write_all(vec![Write::Replace {
        container: C,
        body: encoded(2),
        if_match: Some(etag),
    }])
    .await
    .expect("replace text");
    let read = s.read(C, &t, "text").await.expect("read").expect("found");
    assert_eq!(read.body["n"], 2);
}
