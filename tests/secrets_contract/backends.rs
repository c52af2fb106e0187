//! The three secret stores the contract runs on, each working and down.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use castiel_integrations::clock::SystemClock;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::secrets::castiel::CastielSecretStore;
use castiel_integrations::platform::secrets::keyvault::KeyVaultSecretStore;
use castiel_integrations::platform::secrets::local::LocalSecretStore;
use castiel_integrations::platform::secrets::{SecretOwner, SecretRef, SecretStore};
use castiel_integrations::platform::store::{
    Container, Document, ETag, Page, Query, Store, StoreError, StoreResult,
};
use serde_json::Value;
use url::Url;
use uuid::Uuid;

use crate::castiel_secrets_double::{self, CastielDouble};
use crate::keyvault_double::KeyVaultDouble;
use crate::tls;

/// A working store, with whatever keeps its backend alive.
pub struct Backend {
    pub secrets: Arc<dyn SecretStore>,
    /// Checks after a test that the backend saw no breach of its protocol.
    pub problems: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    _keep: Box<dyn Any + Send + Sync>,
}

/// A store whose backend is down, and a reference of the shape it writes.
pub struct Down {
    pub secrets: Arc<dyn SecretStore>,
    pub sample_ref: fn(&SecretOwner) -> SecretRef,
}

/// The local secret store on a fresh document store of `TEST_STORE`.
pub async fn local_with_key(
    key: [u8; 32],
) -> (Arc<LocalSecretStore>, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::stores::test_store(dir.path(), Arc::new(SystemClock)).await;
    let secrets = Arc::new(LocalSecretStore::new(
        &key,
        store.clone(),
        Arc::new(SystemClock),
    ));
    (secrets, store, dir)
}

pub async fn local() -> Backend {
    let (secrets, _store, dir) = local_with_key(rand::random()).await;
    Backend {
        secrets,
        problems: Box::new(Vec::new),
        _keep: Box::new(dir),
    }
}

pub async fn keyvault() -> Backend {
    let double = Arc::new(KeyVaultDouble::start().await);
    let watched = double.clone();
    Backend {
        secrets: Arc::new(double.store()),
        problems: Box::new(move || watched.state().problems.clone()),
        _keep: Box::new(double),
    }
}

pub async fn castiel() -> Backend {
    let double = Arc::new(CastielDouble::start().await);
    let watched = double.clone();
    Backend {
        secrets: Arc::new(double.store()),
        problems: Box::new(move || watched.state().problems.clone()),
        _keep: Box::new(double),
    }
}

pub async fn local_down() -> Down {
    let store: Arc<dyn Store> = Arc::new(DownStore);
    Down {
        secrets: Arc::new(LocalSecretStore::new(
            &[9; 32],
            store,
            Arc::new(SystemClock),
        )),
        sample_ref: |_| SecretRef(format!("local:{}", Uuid::new_v4())),
    }
}

pub async fn keyvault_down() -> Down {
    // The vault's name resolves to a port nothing listens on.
    let dead = tls::dead_address().await;
    let url = Url::parse(&format!(
        "https://{}:{}/",
        crate::keyvault_double::VAULT_HOST,
        dead.port()
    ))
    .expect("url");
    let http = Arc::new(
        castiel_integrations::platform::secrets::keyvault::http_client()
            .resolve(crate::keyvault_double::VAULT_HOST, dead)
            .build()
            .expect("client"),
    );
    let credential = crate::keyvault_double::credential();
    Down {
        secrets: Arc::new(KeyVaultSecretStore::new(&url, credential, http).expect("store")),
        sample_ref: |o| {
            SecretRef(format!(
                "keyvault:c-{}-webhook-{}",
                o.tenant_id.0.simple(),
                Uuid::new_v4().simple()
            ))
        },
    }
}

pub async fn castiel_down() -> Down {
    let dead = tls::dead_address().await;
    let url = Url::parse(&format!("http://{dead}/")).expect("url");
    Down {
        secrets: Arc::new(
            CastielSecretStore::new(url, castiel_secrets_double::keys("any")).expect("store"),
        ),
        sample_ref: |_| SecretRef(format!("castiel:{}", Uuid::new_v4())),
    }
}

pub fn owner(tenant: Uuid, kind: &'static str, id: &str) -> SecretOwner {
    SecretOwner {
        tenant_id: TenantId(tenant),
        kind,
        id: id.to_owned(),
    }
}

/// A document store that is down: every call fails as unavailable.
struct DownStore;

fn down<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable("the test store is down".into()))
}

#[async_trait]
impl Store for DownStore {
    async fn read(&self, _: Container, _: &str, _: &str) -> StoreResult<Option<Document>> {
        down()
    }
    async fn create(&self, _: Container, _: Value) -> StoreResult<Document> {
        down()
    }
    async fn replace(&self, _: Container, _: Value, _: Option<&ETag>) -> StoreResult<Document> {
        down()
    }
    async fn upsert(&self, _: Container, _: Value) -> StoreResult<Document> {
        down()
    }
    async fn delete(&self, _: Container, _: &str, _: &str, _: Option<&ETag>) -> StoreResult<()> {
        down()
    }
    async fn query(&self, _: Container, _: &Query) -> StoreResult<Page> {
        down()
    }
    async fn count(&self, _: Container, _: &Query) -> StoreResult<u64> {
        down()
    }
    async fn provision(&self) -> StoreResult<()> {
        down()
    }
    async fn health(&self) -> StoreResult<()> {
        down()
    }
}
