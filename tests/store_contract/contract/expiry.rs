//! Expiry, seen happen: the store runs on a manual clock that the test moves
//! past a document's time to live (its own `ttl`, or the container's
//! default). An expired document is gone from reads, queries, scans and
//! counts, its id is free again, and purging keeps what still lives. No
//! real waiting: both stores decide expiry by their clock.

use std::sync::Arc;

use castiel_integrations::clock::ManualClock;
use castiel_integrations::platform::store::{Container, Query, Store, StoreError};
use chrono::Duration;
use serde_json::json;

use super::{C, doc, key};

async fn ids(s: &Arc<dyn Store>, c: Container, q: &Query) -> Vec<String> {
    let mut ids: Vec<String> = s
        .query(c, q)
        .await
        .expect("query")
        .items
        .into_iter()
        .map(|d| d.id)
        .collect();
    ids.sort();
    ids
}

/// What a partition shows of itself: point reads of `probe`, a query, a
/// filtered query, a marker scan across partitions, and counts.
async fn visible(s: &Arc<dyn Store>, c: Container, t: &str, probe: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    for id in probe {
        let read = s.read(c, t, id).await.expect("read");
        let stored = s.read_stored(c, t, id).await.expect("read stored");
        assert_eq!(
            read.is_some(),
            stored.is_some(),
            "{id}: read and read_stored agree"
        );
        if read.is_some() {
            seen.push((*id).to_owned());
        }
    }
    let all = ids(s, c, &Query::partition(t)).await;
    assert_eq!(all, seen, "a query shows what point reads show");
    let marked = ids(s, c, &Query::partition(t).eq("marker", t)).await;
    assert_eq!(marked, seen, "a filtered query too");
    let scan = ids(s, c, &Query::cross_partition().eq("marker", t)).await;
    assert_eq!(scan, seen, "a scan across partitions too");
    let count = s.count(c, &Query::partition(t)).await.expect("count");
    assert_eq!(count, seen.len() as u64, "the count agrees");
    let marked_count = s
        .count(c, &Query::partition(t).eq("marker", t))
        .await
        .expect("count");
    assert_eq!(marked_count, seen.len() as u64, "a filtered count agrees");
    seen
}

pub async fn per_document_ttl_expires(s: Arc<dyn Store>, clock: Arc<ManualClock>) {
    let t = key();
    let mark = json!({"marker": t});
    let with = |ttl: serde_json::Value| {
        let mut m = mark.clone();
        m["ttl"] = ttl;
        m
    };
    s.create(C, doc(&t, "short", with(json!(60))))
        .await
        .expect("create");
    s.create(C, doc(&t, "long", mark.clone()))
        .await
        .expect("create");
    s.create(C, doc(&t, "forever", with(json!(-1))))
        .await
        .expect("create");
    let probe = ["forever", "long", "short"];
    assert_eq!(visible(&s, C, &t, &probe).await, probe);
    clock.advance(Duration::seconds(59));
    assert_eq!(
        visible(&s, C, &t, &probe).await,
        probe,
        "alive a second before its time"
    );
    clock.advance(Duration::seconds(2));
    assert_eq!(
        visible(&s, C, &t, &probe).await,
        ["forever", "long"],
        "expired: gone from every read"
    );
    let replaced = s.replace(C, doc(&t, "short", mark.clone()), None).await;
    assert!(
        matches!(replaced, Err(StoreError::NotFound)),
        "an expired document cannot be replaced: {replaced:?}"
    );
    let deleted = s.delete(C, &t, "short", None).await;
    assert!(
        matches!(deleted, Err(StoreError::NotFound)),
        "nor deleted: {deleted:?}"
    );
    s.create(C, doc(&t, "short", mark.clone()))
        .await
        .expect("an expired id can be created again");
    assert_eq!(visible(&s, C, &t, &probe).await, probe);
    clock.advance(Duration::days(3650));
    assert_eq!(
        visible(&s, C, &t, &probe).await,
        probe,
        "documents without a ttl outlive any time"
    );
}

pub async fn container_ttl_expires(s: Arc<dyn Store>, clock: Arc<ManualClock>) {
    const OS: Container = Container::OauthStates;
    let default = i64::from(OS.default_ttl_seconds().expect("oauth states expire"));
    let t = key();
    s.create(OS, json!({"id": "st", "tenantId": t, "marker": t}))
        .await
        .expect("create with the container's TTL");
    s.create(
        OS,
        json!({"id": "f", "tenantId": t, "marker": t, "ttl": -1}),
    )
    .await
    .expect("create with ttl -1");
    s.create(
        OS,
        json!({"id": "own", "tenantId": t, "marker": t, "ttl": default * 2}),
    )
    .await
    .expect("create with a longer ttl of its own");
    let probe = ["f", "own", "st"];
    assert_eq!(visible(&s, OS, &t, &probe).await, probe);
    clock.advance(Duration::seconds(default - 1));
    assert_eq!(visible(&s, OS, &t, &probe).await, probe);
    clock.advance(Duration::seconds(2));
    assert_eq!(
        visible(&s, OS, &t, &probe).await,
        ["f", "own"],
        "the container's default expired it"
    );
    clock.advance(Duration::seconds(default));
    assert_eq!(
        visible(&s, OS, &t, &probe).await,
        ["f"],
        "its own ttl expired it"
    );
}

pub async fn purge_keeps_live_documents(s: Arc<dyn Store>, clock: Arc<ManualClock>) {
    let t = key();
    let mark = json!({"marker": t});
    s.create(C, doc(&t, "short", json!({"marker": t, "ttl": 1})))
        .await
        .expect("create");
    s.create(C, doc(&t, "long", mark.clone()))
        .await
        .expect("create");
    // Written to expire soon, then rewritten to live on: the later write
    // decides.
    s.create(C, doc(&t, "renewed", json!({"marker": t, "ttl": 1})))
        .await
        .expect("create");
    s.upsert(C, doc(&t, "renewed", json!({"marker": t, "ttl": 3600})))
        .await
        .expect("upsert");
    clock.advance(Duration::seconds(2));
    s.purge_expired().await.expect("purge");
    let probe = ["long", "renewed", "short"];
    assert_eq!(visible(&s, C, &t, &probe).await, ["long", "renewed"]);
    s.create(C, doc(&t, "short", mark))
        .await
        .expect("a purged id can be created again");
    assert_eq!(visible(&s, C, &t, &probe).await, probe);
}
