//! A store wrapper that records which outbox entries were ever written, so
//! a test can tell "no entry was needed" from "an entry was written and
//! deleted again" (both leave an empty outbox); and that can hold the
//! writes of integrations forever, just before or just after they reach
//! the store, so that a crash test chooses where a change stands when its
//! process dies.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use castiel_integrations::platform::store::{
    Container, Document, ETag, Page, Query, Store, StoreResult, StoredDocument, Write,
};
use serde_json::Value;

/// Forwards everything to `inner`; remembers the ids of outbox documents
/// created through it.
pub struct Watched {
    inner: Arc<dyn Store>,
    outbox_created: Mutex<Vec<String>>,
    /// Writes of integrations are held from now on.
    holding: AtomicBool,
    /// How many more are held after reaching the store (the rest before).
    after_budget: AtomicUsize,
    held_before: AtomicUsize,
    held_after: AtomicUsize,
}

impl Watched {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            outbox_created: Mutex::default(),
            holding: AtomicBool::new(false),
            after_budget: AtomicUsize::new(0),
            held_before: AtomicUsize::new(0),
            held_after: AtomicUsize::new(0),
        })
    }

    /// From now on, holds every write of an integration forever: the next
    /// `after` once they are in the store (the change happened, its caller
    /// never hears of it), every later one before it reaches the store (the
    /// change never happens).
    pub fn hold(&self, after: usize) {
        self.after_budget.store(after, Ordering::SeqCst);
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Writes held so far: (before the store, after it).
    pub fn held(&self) -> (usize, usize) {
        (
            self.held_before.load(Ordering::SeqCst),
            self.held_after.load(Ordering::SeqCst),
        )
    }

    /// Ids of the outbox documents created so far, in order.
    pub fn outbox_created(&self) -> Vec<String> {
        self.outbox_created.lock().expect("lock").clone()
    }

    fn note(&self, container: Container, id: Option<&str>) {
        if container == Container::Outbox {
            let id = id.unwrap_or("?").to_owned();
            self.outbox_created.lock().expect("lock").push(id);
        }
    }
}

fn id_of(body: &Value) -> Option<&str> {
    body.get("id").and_then(Value::as_str)
}

#[async_trait]
impl Store for Watched {
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
        self.note(c, id_of(&body));
        self.inner.create(c, body).await
    }
    async fn replace(&self, c: Container, body: Value, m: Option<&ETag>) -> StoreResult<Document> {
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
        let mut integration = false;
        for w in &writes {
            if let Write::Create { container, body } = w {
                let address = body.address(*container).ok();
                self.note(*container, address.as_ref().map(|(id, _)| id.as_str()));
                integration |= *container == Container::Integrations;
            }
        }
        if !(integration && self.holding.load(Ordering::SeqCst)) {
            return self.inner.write_all(writes).await;
        }
        let after = self
            .after_budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !after {
            self.held_before.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        let out = self.inner.write_all(writes).await;
        if out.is_ok() {
            self.held_after.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        out
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
