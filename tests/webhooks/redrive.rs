//! The re-drive reads pending deliveries while the jobs it enqueues take
//! them out of what it reads. Every delivery overdue when it starts must be
//! re-driven in that one run, on every store (a continuation that counted
//! positions in the first result skipped as many others on Cosmos).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use castiel_integrations::clock::Clock as _;
use castiel_integrations::features::webhooks::delivery::redrive;
use castiel_integrations::platform::store::{
    Container, Document, ETag, Page, Query, Store, StoreResult, StoredDocument, Write,
};
use serde_json::{Value, json};

use crate::harness::{Hooks, Receiver};

/// After every page of pending deliveries it returns, completes them (as
/// jobs running between two pages of the re-drive would).
struct Completing {
    inner: Arc<dyn Store>,
    completed: AtomicUsize,
}

#[async_trait]
impl Store for Completing {
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
        self.inner.write_all(writes).await
    }
    async fn query(&self, c: Container, q: &Query) -> StoreResult<Page> {
        let page = self.inner.query(c, q).await?;
        if c == Container::WebhookDeliveries {
            for d in &page.items {
                if d.body["status"] == "pending" {
                    let mut done = d.body.clone();
                    done["status"] = json!("succeeded");
                    self.inner.replace(c, done, None).await?;
                    self.completed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        Ok(page)
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

/// More than one page of the re-drive (500).
const OVERDUE: usize = 1200;

#[tokio::test]
async fn one_redrive_reaches_every_overdue_delivery_while_its_jobs_complete_them() {
    let completing = std::sync::OnceLock::new();
    let h = Hooks::wrapped(&[], |inner| {
        let c = Arc::new(Completing {
            inner,
            completed: AtomicUsize::new(0),
        });
        let _ = completing.set(c.clone());
        c
    })
    .await;
    let completing = completing.get().expect("wrapped");
    let rx = Receiver::start().await;
    h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    // One real delivery, copied into many pending ones (written directly,
    // past the wrapper: the jobs of none of them exist).
    let store = completing.inner.as_ref();
    let q = Query::partition(h.tenant.to_string()).limit(10);
    let template = store
        .query(Container::WebhookDeliveries, &q)
        .await
        .expect("query")
        .items
        .pop()
        .expect("the delivery")
        .body;
    for _ in 0..OVERDUE {
        let mut d = template.clone();
        d["id"] = json!(uuid::Uuid::now_v7().to_string());
        d["status"] = json!("pending");
        store
            .create(Container::WebhookDeliveries, d)
            .await
            .expect("create");
    }
    h.clock.advance(chrono::Duration::minutes(10));
    let before = h.clock.now() - chrono::Duration::minutes(5);
    let n = redrive(&h.state.webhooks, before).await.expect("re-drive");
    let completed = completing.completed.load(Ordering::SeqCst);
    assert_eq!(
        completed,
        OVERDUE + 1,
        "every pending delivery was read once (and completed)"
    );
    assert_eq!(n, OVERDUE + 1, "and re-driven, in one run");
}
