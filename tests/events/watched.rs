//! A store wrapper that records which outbox entries were ever written, so
//! a test can tell "no entry was needed" from "an entry was written and
//! deleted again" (both leave an empty outbox).

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
}

impl Watched {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            outbox_created: Mutex::default(),
        })
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
        for w in &writes {
            if let Write::Create { container, body } = w {
                let address = body.address(*container).ok();
                self.note(*container, address.as_ref().map(|(id, _)| id.as_str()));
            }
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
