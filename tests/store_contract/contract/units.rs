//! Units of work: `write_all` in order, what a reader sees when one fails
//! midway (per store, observed rather than taken from `transactional()`),
//! and deferred writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use castiel_integrations::platform::store::{Body, Container, Store, StoreError, Write};
use serde_json::json;

use super::{C, doc, key};

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

/// What a reader sees after a unit of work failed midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MidwayFailure {
    /// Nothing of it, ever: not after, nor while it ran (a transaction).
    NothingVisible,
    /// The writes before the failing one, none after it (one by one).
    EarlierWritesVisible,
}

/// A unit of work whose third write fails: the reader's view is what
/// `promised` says, both after the failure and (for a transaction) while it
/// runs; and the store's own `transactional()` agrees with what was seen.
pub async fn a_failed_unit_of_work_shows(s: Arc<dyn Store>, promised: MidwayFailure) {
    let t = key();
    let kept = s
        .create(C, doc(&t, "kept", json!({"n": 1})))
        .await
        .expect("create");
    s.create(C, doc(&t, "taken", json!({})))
        .await
        .expect("create");
    let done = Arc::new(AtomicBool::new(false));
    // A reader that watches while the unit runs; what it saw mid-way.
    let watcher = tokio::spawn({
        let (s, t, done) = (s.clone(), t.clone(), done.clone());
        async move {
            let (mut reads, mut saw_partial) = (0_u32, false);
            loop {
                let finished = done.load(Ordering::SeqCst);
                let entry = s.read(Container::Outbox, &t, "e1").await.expect("read");
                let kept = s.read(C, &t, "kept").await.expect("read").expect("kept");
                saw_partial |= entry.is_some() || kept.body["n"] != 1;
                reads += 1;
                if finished {
                    return (reads, saw_partial);
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let failed = s
        .write_all(vec![
            Write::Create {
                container: Container::Outbox,
                body: Body::Tree(json!({"id": "e1", "tenantId": t, "kind": "event"})),
            },
            Write::Replace {
                container: C,
                body: Body::Tree(doc(&t, "kept", json!({"n": 2}))),
                if_match: Some(kept.etag.clone()),
            },
            Write::Create {
                container: C,
                body: Body::Tree(doc(&t, "taken", json!({}))),
            },
            Write::Create {
                container: C,
                body: Body::Tree(doc(&t, "after", json!({}))),
            },
        ])
        .await;
    done.store(true, Ordering::SeqCst);
    assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");
    let (reads, saw_partial) = watcher.await.expect("watcher");
    assert!(reads >= 1, "the watcher read at least once");
    let entry = s.read(Container::Outbox, &t, "e1").await.expect("read");
    let now = s.read(C, &t, "kept").await.expect("read").expect("kept");
    let after = s.read(C, &t, "after").await.expect("read");
    assert!(after.is_none(), "no write after the failing one lands");
    match promised {
        MidwayFailure::NothingVisible => {
            assert!(entry.is_none(), "the first write was rolled back");
            assert_eq!(now.body["n"], 1, "the second write was rolled back");
            assert_eq!(now.etag, kept.etag, "the document is the one read before");
            assert!(!saw_partial, "a reader never saw part of the unit");
        }
        MidwayFailure::EarlierWritesVisible => {
            assert!(entry.is_some(), "the first write stays");
            assert_eq!(now.body["n"], 2, "the second write stays");
        }
    }
    assert_eq!(
        s.transactional(),
        promised == MidwayFailure::NothingVisible,
        "the store's claim matches what a reader sees"
    );
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
