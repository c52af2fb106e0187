//! The behaviour every Store implementation must show. Each test uses its own
//! fresh partition keys, so backends may share one database between tests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use castiel_integrations::platform::store::{
    Body, Container, ETag, Encoded, Filter, Op, Query, Store, StoreError, Write,
};
use serde_json::{Value, json};
use uuid::Uuid;

fn key() -> String {
    Uuid::new_v4().to_string()
}

fn doc(tenant: &str, id: &str, extra: Value) -> Value {
    let mut v = json!({ "id": id, "tenantId": tenant });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

const C: Container = Container::Integrations;

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

pub async fn queries_stay_in_their_partition(s: Arc<dyn Store>) {
    let (t1, t2) = (key(), key());
    for i in 0..3 {
        s.create(C, doc(&t1, &format!("a{i}"), json!({"kind": "x"})))
            .await
            .expect("create");
        s.create(C, doc(&t2, &format!("b{i}"), json!({"kind": "x"})))
            .await
            .expect("create");
    }
    let page = s
        .query(C, &Query::partition(&t1).eq("kind", "x"))
        .await
        .expect("query");
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().all(|d| d.partition_key == t1));
    assert!(page.continuation.is_none());
}

pub async fn filters_select_documents(s: Arc<dyn Store>) {
    let t = key();
    let rows = [
        json!({"status": "active", "n": 1, "name": "Alpha Corp", "tags": ["a", "b"], "nested": {"x": "y"}, "flag": true}),
        json!({"status": "active", "n": 5, "name": "beta", "tags": ["b"], "flag": false}),
        json!({"status": "disabled", "n": 9, "name": "Gamma", "tags": [], "nested": null}),
    ];
    for (i, r) in rows.iter().enumerate() {
        s.create(C, doc(&t, &format!("d{i}"), r.clone()))
            .await
            .expect("create");
    }
    let ids = |q: Query| {
        let s = s.clone();
        async move {
            let mut v: Vec<String> = s
                .query(C, &q)
                .await
                .expect("query")
                .items
                .into_iter()
                .map(|d| d.id)
                .collect();
            v.sort();
            v
        }
    };
    let p = || Query::partition(&t);
    assert_eq!(ids(p().eq("status", "active")).await, ["d0", "d1"]);
    assert_eq!(
        ids(p().filter(Filter::new("status", Op::Ne, "active"))).await,
        ["d2"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("n", Op::Gt, 1))).await,
        ["d1", "d2"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("n", Op::Lte, 5))).await,
        ["d0", "d1"]
    );
    assert_eq!(
        ids(p()
            .filter(Filter::new("n", Op::Gte, 5))
            .filter(Filter::new("n", Op::Lt, 9)))
        .await,
        ["d1"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("status", Op::In, json!(["disabled", "other"])))).await,
        ["d2"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("name", Op::ContainsText, "ALPHA"))).await,
        ["d0"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("tags", Op::ArrayContains, "b"))).await,
        ["d0", "d1"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("nested.x", Op::Eq, "y"))).await,
        ["d0"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("nested", Op::IsDefined, Value::Null))).await,
        ["d0"]
    );
    assert_eq!(
        ids(p().filter(Filter::new("nested", Op::IsUndefined, Value::Null))).await,
        ["d1", "d2"]
    );
    assert_eq!(ids(p().eq("flag", true)).await, ["d0"]);
    assert_eq!(ids(p().eq("flag", false)).await, ["d1"]);
}

async fn collect(s: &Arc<dyn Store>, mut q: Query) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = s.query(C, &q).await.expect("page");
        assert!(page.items.len() <= q.max_items as usize);
        out.extend(page.items.into_iter().map(|d| d.id));
        match page.continuation {
            Some(t) => q.continuation = Some(t),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

pub async fn pages_cover_everything_once(s: Arc<dyn Store>) {
    let t = key();
    for i in 0..25 {
        // Duplicated sort values test the tie-break.
        s.create(C, doc(&t, &format!("d{i:02}"), json!({"rank": i / 3})))
            .await
            .expect("create");
    }
    let got = collect(&s, Query::partition(&t).order_by("rank", false).limit(7)).await;
    assert_eq!(got.len(), 25);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 25, "no repeats");
    let ranks: Vec<usize> = got
        .iter()
        .map(|id| id[1..].parse::<usize>().expect("n") / 3)
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "ascending: {ranks:?}"
    );
    let by_id = collect(&s, Query::partition(&t).limit(10)).await;
    assert_eq!(by_id.len(), 25);
}

pub async fn descending_pages(s: Arc<dyn Store>) {
    let t = key();
    for i in 0..12 {
        s.create(
            C,
            doc(
                &t,
                &format!("d{i:02}"),
                json!({"createdAt": format!("2026-01-{:02}T00:00:00Z", i + 1)}),
            ),
        )
        .await
        .expect("create");
    }
    let got = collect(
        &s,
        Query::partition(&t).order_by("createdAt", true).limit(5),
    )
    .await;
    let want: Vec<String> = (0..12).rev().map(|i| format!("d{i:02}")).collect();
    assert_eq!(got, want);
}

pub async fn bad_continuation_is_refused(s: Arc<dyn Store>) {
    let t = key();
    for i in 0..3 {
        s.create(C, doc(&t, &format!("d{i}"), json!({})))
            .await
            .expect("create");
    }
    let q = Query::partition(&t)
        .limit(1)
        .after(Some("not-a-token".into()));
    assert!(matches!(
        s.query(C, &q).await,
        Err(StoreError::InvalidContinuation)
    ));
}

pub async fn count_is_partition_scoped(s: Arc<dyn Store>) {
    let t = key();
    for i in 0..4 {
        s.create(
            C,
            doc(
                &t,
                &format!("d{i}"),
                json!({"status": if i < 3 { "running" } else { "done" }}),
            ),
        )
        .await
        .expect("create");
    }
    s.create(C, doc(&key(), "other", json!({"status": "running"})))
        .await
        .expect("create");
    assert_eq!(
        s.count(C, &Query::partition(&t).eq("status", "running"))
            .await
            .expect("count"),
        3
    );
    assert!(matches!(
        s.count(C, &Query::cross_partition()).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn per_document_ttl_expires(s: Arc<dyn Store>) {
    let t = key();
    s.create(C, doc(&t, "short", json!({"ttl": 1})))
        .await
        .expect("create");
    s.create(C, doc(&t, "long", json!({})))
        .await
        .expect("create");
    assert!(s.read(C, &t, "short").await.expect("read").is_some());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(
        s.read(C, &t, "short").await.expect("read").is_none(),
        "expired documents are invisible"
    );
    let ids: Vec<String> = s
        .query(C, &Query::partition(&t))
        .await
        .expect("query")
        .items
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["long"]);
    s.create(C, doc(&t, "short", json!({})))
        .await
        .expect("an expired id can be created again");
}

pub async fn container_ttl_and_no_ttl(s: Arc<dyn Store>) {
    let t = key();
    let st = json!({"id": "st", "tenantId": t});
    s.create(Container::OauthStates, st)
        .await
        .expect("create with container TTL");
    let forever = json!({"id": "f", "tenantId": t, "ttl": -1});
    s.create(Container::OauthStates, forever)
        .await
        .expect("create with ttl -1");
    assert!(
        s.read(Container::OauthStates, &t, "st")
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        s.read(Container::OauthStates, &t, "f")
            .await
            .expect("read")
            .is_some()
    );
}

pub async fn cross_partition_scan(s: Arc<dyn Store>) {
    let marker = key();
    for _ in 0..5 {
        s.create(C, doc(&key(), "x", json!({"marker": marker})))
            .await
            .expect("create");
    }
    let mut q = Query::cross_partition()
        .eq("marker", marker.as_str())
        .limit(2);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let page = s.query(C, &q).await.expect("scan");
        for d in page.items {
            assert!(seen.insert(d.partition_key), "no repeats");
        }
        match page.continuation {
            Some(t) => q.continuation = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
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

pub async fn write_all_applies_in_order(s: Arc<dyn Store>) {
    let t = key();
    let first = s
        .create(C, doc(&t, "old", json!({"n": 1})))
        .await
        .expect("create");
    let docs = s
        .write_all(vec![
            Write::Create {
                container: Container::Outbox,
                body: Body::Tree(json!({"id": "e1", "tenantId": t, "kind": "event"})),
            },
            Write::Replace {
                container: C,
                body: Body::Tree(doc(&t, "old", json!({"n": 2}))),
                if_match: Some(first.etag.clone()),
            },
            Write::Delete {
                container: C,
                pk: t.clone(),
                id: "old".into(),
                if_match: None,
            },
        ])
        .await
        .expect("write_all");
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[1].as_ref().expect("replaced").body["n"], 2);
    assert!(docs[2].is_none(), "a delete yields no document");
    assert!(s.read(C, &t, "old").await.expect("read").is_none());
    assert!(
        s.read(Container::Outbox, &t, "e1")
            .await
            .expect("read")
            .is_some()
    );
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

pub async fn write_all_is_atomic_where_transactional(s: Arc<dyn Store>) {
    let t = key();
    s.create(C, doc(&t, "taken", json!({})))
        .await
        .expect("create");
    let failed = s
        .write_all(vec![
            Write::Create {
                container: Container::Outbox,
                body: Body::Tree(json!({"id": "e1", "tenantId": t, "kind": "event"})),
            },
            Write::Create {
                container: C,
                body: Body::Tree(doc(&t, "taken", json!({}))),
            },
        ])
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");
    let outbox = s.read(Container::Outbox, &t, "e1").await.expect("read");
    // All or none on a transactional store; in order, stopping at the
    // failure, on the others.
    assert_eq!(outbox.is_none(), s.transactional());
}

pub async fn purge_keeps_live_documents(s: Arc<dyn Store>) {
    let t = key();
    s.create(C, doc(&t, "short", json!({"ttl": 1})))
        .await
        .expect("create");
    s.create(C, doc(&t, "long", json!({})))
        .await
        .expect("create");
    // Written to expire soon, then rewritten to live on: the later write
    // decides.
    s.create(C, doc(&t, "renewed", json!({"ttl": 1})))
        .await
        .expect("create");
    s.upsert(C, doc(&t, "renewed", json!({"ttl": 3600})))
        .await
        .expect("upsert");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.purge_expired().await.expect("purge");
    assert!(s.read(C, &t, "short").await.expect("read").is_none());
    assert!(s.read(C, &t, "long").await.expect("read").is_some());
    assert!(s.read(C, &t, "renewed").await.expect("read").is_some());
    s.create(C, doc(&t, "short", json!({})))
        .await
        .expect("a purged id can be created again");
}

/// A deferred write lands no later than the caller's next write; one that
/// lost its race (a stale If-Match) changes nothing and fails no one.
pub async fn deferred_writes_land_before_later_ones(s: Arc<dyn Store>) {
    let t = key();
    let first = s
        .create(C, doc(&t, "kept", json!({"n": 1})))
        .await
        .expect("create");
    s.write_later(Write::Create {
        container: C,
        body: Body::Tree(doc(&t, "later", json!({"n": 1}))),
    })
    .await;
    s.write_later(Write::Replace {
        container: C,
        body: Body::Tree(doc(&t, "kept", json!({"n": 2}))),
        if_match: Some(first.etag.clone()),
    })
    .await;
    s.write_later(Write::Replace {
        container: C,
        body: Body::Tree(doc(&t, "kept", json!({"n": 3}))),
        if_match: Some(first.etag.clone()),
    })
    .await;
    s.create(C, doc(&t, "next", json!({})))
        .await
        .expect("a write after them");
    let later = s.read(C, &t, "later").await.expect("read").expect("landed");
    assert_eq!(later.body["n"], 1);
    let kept = s.read(C, &t, "kept").await.expect("read").expect("present");
    assert_eq!(kept.body["n"], 2, "the stale replace changed nothing");
}
