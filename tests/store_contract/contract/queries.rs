//! Queries, paging and counts: what a partition (or a scan) returns.

use std::collections::HashSet;
use std::sync::Arc;

use castiel_integrations::platform::store::{Filter, Op, Query, Store, StoreError};
use serde_json::{Value, json};

use super::{C, doc, key};

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
