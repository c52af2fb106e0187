//! Issue 3 / issue 23 item 5: two concurrent PUTs of one integration with
//! the same `If-Match`: one wins, the other gets 412, and nothing is lost
//! (runs on every `TEST_STORE` backend).
//!
//! The race is forced, not hoped for: the app's store is wrapped so that
//! each writer's write to the integrations container waits at a barrier
//! until the other writer has reached its write too. Both have then read
//! the document and passed the service's own ETag check with the same
//! ETag, so only the store's conditional write can tell them apart: a store
//! that ignored If-Match would let both win.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::{
    Container, Document, ETag, Page, Query, Store, StoreResult, StoredDocument, Write,
};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::helpers::TestApp;

/// Generous: the other writer needs only its read and the service's checks.
const MEET_DEADLINE: Duration = Duration::from_secs(60);

/// The store with a gate before writes that replace an integration.
struct Gated {
    inner: Arc<dyn Store>,
    /// How many writes still have to meet at the barrier (0: the gate is open).
    to_meet: AtomicUsize,
    barrier: Barrier,
    /// The If-Match of every write that met at the barrier.
    met_with: Mutex<Vec<Option<String>>>,
}

impl Gated {
    fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            to_meet: AtomicUsize::new(0),
            barrier: Barrier::new(2),
            met_with: Mutex::new(Vec::new()),
        }
    }

    /// Makes the next two integration writes wait for each other.
    fn arm(&self) {
        self.to_meet.store(2, Ordering::SeqCst);
    }

    /// The If-Match each gated write carried.
    fn met_with(&self) -> Vec<Option<String>> {
        self.met_with.lock().expect("lock").clone()
    }

    async fn gate(&self, if_match: Option<&ETag>) {
        let mine = self
            .to_meet
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !mine {
            return;
        }
        self.met_with
            .lock()
            .expect("lock")
            .push(if_match.map(|e| e.as_str().to_owned()));
        tokio::time::timeout(MEET_DEADLINE, self.barrier.wait())
            .await
            .expect("the other writer never reached its write: the race was not forced");
    }
}

fn replaces_an_integration(w: &Write) -> Option<Option<&ETag>> {
    match w {
        Write::Replace {
            container: Container::Integrations,
            if_match,
            ..
        } => Some(if_match.as_ref()),
        _ => None,
    }
}

#[async_trait]
impl Store for Gated {
    async fn read(&self, c: Container, pk: &str, id: &str) -> StoreResult<Option<Document>> {
        self.inner.read(c, pk, id).await
    }
    async fn read_stored(
        &self,
        c: Container,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<StoredDocument>> {
        self.inner.read_stored(c, pk, id).await
    }
    async fn create(&self, c: Container, body: Value) -> StoreResult<Document> {
        self.inner.create(c, body).await
    }
    async fn replace(&self, c: Container, body: Value, m: Option<&ETag>) -> StoreResult<Document> {
        if c == Container::Integrations {
            self.gate(m).await;
        }
        self.inner.replace(c, body, m).await
    }
    async fn upsert(&self, c: Container, body: Value) -> StoreResult<Document> {
        self.inner.upsert(c, body).await
    }
    async fn delete(&self, c: Container, pk: &str, id: &str, m: Option<&ETag>) -> StoreResult<()> {
        self.inner.delete(c, pk, id, m).await
    }
    async fn discard(&self, c: Container, addresses: Vec<(String, String)>) {
        self.inner.discard(c, addresses).await;
    }
    async fn write_later(&self, write: Write) {
        self.inner.write_later(write).await;
    }
    fn transactional(&self) -> bool {
        self.inner.transactional()
    }
    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<Vec<Option<Document>>> {
        if let Some(m) = writes.iter().find_map(replaces_an_integration) {
            self.gate(m).await;
        }
        self.inner.write_all(writes).await
    }
    async fn query(&self, c: Container, q: &Query) -> StoreResult<Page> {
        self.inner.query(c, q).await
    }
    async fn count(&self, c: Container, q: &Query) -> StoreResult<u64> {
        self.inner.count(c, q).await
    }
    async fn purge_expired(&self) -> StoreResult<usize> {
        self.inner.purge_expired().await
    }
    async fn provision(&self) -> StoreResult<()> {
        self.inner.provision().await
    }
    async fn health(&self) -> StoreResult<()> {
        self.inner.health().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_with_one_etag_one_wins_one_gets_412() {
    let gated = Arc::new(Mutex::new(None::<Arc<Gated>>));
    let keep = gated.clone();
    let app = TestApp::custom(&[], Arc::new(SystemClock), move |inner| {
        let g = Arc::new(Gated::new(inner));
        *keep.lock().expect("lock") = Some(g.clone());
        g
    })
    .await;
    let app = Arc::new(app);
    let gate = gated.lock().expect("lock").clone().expect("wrapped");
    let token = app.token(Uuid::new_v4());
    let created = app.create_integration(&token, "Original").await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/integrations/{id}");
    let etag = app.get(&path, &token).await.etag();
    let if_match = format!("\"{etag}\"");
    let put = |name: &'static str| {
        let (app, path, token, if_match) =
            (app.clone(), path.clone(), token.clone(), if_match.clone());
        tokio::spawn(async move {
            app.send(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({ "name": name })),
                &[("if-match", if_match.as_str())],
            )
            .await
        })
    };
    gate.arm();
    // Each writer on its own task: one waits at the barrier while the other
    // reads, checks and reaches its write.
    let (a, b) = tokio::join!(put("Writer A"), put("Writer B"));
    let (a, b) = (a.expect("writer A"), b.expect("writer B"));
    assert_eq!(
        gate.met_with(),
        [Some(etag.clone()), Some(etag.clone())],
        "both writers wrote to the store, each with the ETag both read"
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "{:?} / {:?}",
        a.body,
        b.body
    );
    let (winner, loser) = if a.status == StatusCode::OK {
        (a, "Writer B")
    } else {
        (b, "Writer A")
    };
    let now = app.get(&path, &token).await;
    assert_eq!(
        now.body["name"], winner.body["name"],
        "the winner's write is stored"
    );
    assert_eq!(now.etag(), winner.etag());
    assert_ne!(now.etag(), etag);
    // The loser re-reads and retries with the fresh ETag: nothing is lost.
    let retry = app
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "name": loser })),
            &[("if-match", format!("\"{}\"", now.etag()).as_str())],
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(app.get(&path, &token).await.body["name"], loser);
    // A stale ETag is refused and changes nothing.
    let stale = app
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "name": "Stale" })),
            &[("if-match", if_match.as_str())],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get(&path, &token).await.body["name"], loser);
}
