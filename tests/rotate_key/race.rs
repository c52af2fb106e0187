//! The race the rotation must close: a running store checks the keyring,
//! then its write of a secret under the old key lands only after the whole
//! rotation, final verification included, is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use castiel_integrations::platform::secrets::local::rotate::rotate_key;
use castiel_integrations::platform::secrets::local::{KeyFile, KeySource};
use castiel_integrations::platform::secrets::{SecretError, SecretStore};
use castiel_integrations::platform::store::{
    Container, Document, ETag, Page, Query, Store, StoreError, StoreResult,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::{keyring_ids, local, open, options, owner, place};

/// A store whose creates wait at a gate, and whose replaces can be made to fail.
struct Gated {
    inner: Arc<dyn Store>,
    entered: Notify,
    gate: Semaphore,
    fail_replace: AtomicBool,
}

#[async_trait]
impl Store for Gated {
    async fn read(&self, c: Container, pk: &str, id: &str) -> StoreResult<Option<Document>> {
        self.inner.read(c, pk, id).await
    }
    async fn create(&self, c: Container, body: Value) -> StoreResult<Document> {
        self.entered.notify_one();
        let _pass = self.gate.acquire().await.expect("gate");
        self.inner.create(c, body).await
    }
    async fn replace(&self, c: Container, body: Value, m: Option<&ETag>) -> StoreResult<Document> {
        if self.fail_replace.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.replace(c, body, m).await
    }
    async fn upsert(&self, c: Container, body: Value) -> StoreResult<Document> {
        self.inner.upsert(c, body).await
    }
    async fn delete(&self, c: Container, pk: &str, id: &str, m: Option<&ETag>) -> StoreResult<()> {
        self.inner.delete(c, pk, id, m).await
    }
    async fn query(&self, c: Container, q: &Query) -> StoreResult<Page> {
        self.inner.query(c, q).await
    }
    async fn count(&self, c: Container, q: &Query) -> StoreResult<u64> {
        self.inner.count(c, q).await
    }
    async fn provision(&self) -> StoreResult<()> {
        self.inner.provision().await
    }
    async fn health(&self) -> StoreResult<()> {
        self.inner.health().await
    }
}

/// Starts a put through a gated store, holds its write until a complete
/// rotation on the same `DATA_DIR` is over, then lets it land; returns the
/// put's result and the store.
async fn put_across_a_rotation(
    fail_replace: bool,
) -> (
    Result<(String, String), SecretError>,
    Arc<dyn Store>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = open(&place(dir.path())).await;
    let gated = Arc::new(Gated {
        inner: base.clone(),
        entered: Notify::new(),
        gate: Semaphore::new(0),
        fail_replace: AtomicBool::new(fail_replace),
    });
    let service = Arc::new(local(dir.path(), gated.clone()));
    let old = keyring_ids(dir.path());
    let o = owner(Uuid::new_v4(), "webhook", "slow");
    let put = tokio::spawn({
        let (service, o) = (service.clone(), o.clone());
        async move {
            let r = service
                .put(&o, &SecretString::from("late value".to_owned()))
                .await?;
            let read = service.get(&o, &r).await?;
            Ok((r.0, read.expose_secret().to_owned()))
        }
    });
    gated.entered.notified().await;
    let report = rotate_key(
        base.clone(),
        KeySource::File(KeyFile::in_dir(dir.path())),
        None,
        &options(Duration::ZERO),
    )
    .await
    .expect("rotate");
    assert_eq!(report.retired, old);
    assert_eq!(keyring_ids(dir.path()).len(), 1, "the old key is gone");
    gated.gate.add_permits(1);
    (put.await.expect("join"), base, dir)
}

#[tokio::test]
async fn a_write_landing_after_the_rotation_moves_itself_to_the_new_key() {
    let (result, store, dir) = put_across_a_rotation(false).await;
    let (r, read) = result.expect("the late put succeeds");
    assert_eq!(read, "late value");
    let new = keyring_ids(dir.path())[0].clone();
    let id = r.trim_start_matches("local:");
    let docs = crate::all_secret_docs(store.as_ref()).await;
    let doc = docs.iter().find(|d| d.id == id).expect("written");
    assert_eq!(doc.body["keyId"], new.as_str(), "re-wrapped by its writer");
}

#[tokio::test]
async fn a_late_write_that_cannot_follow_fails_and_leaves_nothing() {
    let (result, store, _dir) = put_across_a_rotation(true).await;
    assert!(matches!(result, Err(SecretError::Unavailable(_))));
    assert!(
        crate::all_secret_docs(store.as_ref()).await.is_empty(),
        "no secret is left under the retired key"
    );
}
