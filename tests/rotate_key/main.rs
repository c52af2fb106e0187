//! `rotate-key` and the local secret store's envelope format: rotation
//! under concurrent use (embedded store and the Cosmos SDK's emulator), the
//! migration of legacy documents, tampering, `SECRETS_KEY` lists, and the
//! real binary on a `DATA_DIR` while another process writes secrets.

mod binary;
mod formats;
mod race;
mod under_load;

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../support/stores.rs"]
mod stores;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::secrets::SecretOwner;
use castiel_integrations::platform::secrets::local::rotate::RotateOptions;
use castiel_integrations::platform::secrets::local::{KeyFile, KeyId, KeySource, LocalSecretStore};
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};
use castiel_integrations::platform::store::{Container, Document, Query, Store};
use uuid::Uuid;

/// The store of `TEST_STORE` for a test: its documents live on across
/// `open`s, each a handle of its own as a process would have (a new SQLite
/// connection, or a new client on the same emulator account).
pub fn place(dir: &Path) -> stores::Place {
    stores::Place::new(dir)
}

/// Opens a store on `place`.
pub async fn open(place: &stores::Place) -> Arc<dyn Store> {
    place.open(Arc::new(SystemClock)).await
}

/// The embedded store of a `DATA_DIR`, opened as a process of its own would
/// (its own database handle; SQLite arbitrates between them): for the real
/// binary, which cannot reach the emulator in the test process.
pub fn sqlite(dir: &Path) -> Arc<dyn Store> {
    let db = SqliteDb::open(&dir.join("castiel.db")).expect("open sqlite");
    Arc::new(EmbeddedStore::new(db, Arc::new(SystemClock)))
}

/// A local secret store on the keyring file of `dir`, as `serve` opens it.
pub fn local(dir: &Path, store: Arc<dyn Store>) -> LocalSecretStore {
    LocalSecretStore::open(
        KeySource::File(KeyFile::in_dir(dir)),
        store,
        Arc::new(SystemClock),
    )
    .expect("open the keyring")
}

/// The keyring file's key ids, primary first.
pub fn keyring_ids(dir: &Path) -> Vec<KeyId> {
    KeyFile::in_dir(dir)
        .load()
        .expect("read keyring")
        .expect("a keyring")
        .0
        .ids()
}

/// Rotation options with a short settle.
pub fn options(settle: Duration) -> RotateOptions {
    RotateOptions {
        settle,
        ..RotateOptions::default()
    }
}

pub fn owner(tenant: Uuid, kind: &'static str, id: &str) -> SecretOwner {
    SecretOwner {
        tenant_id: TenantId(tenant),
        kind,
        id: id.to_owned(),
    }
}

/// Every document of the secrets container, all tenants.
pub async fn all_secret_docs(store: &dyn Store) -> Vec<Document> {
    let mut q = Query::cross_partition().limit(500);
    let mut out = Vec::new();
    loop {
        let page = store.query(Container::Secrets, &q).await.expect("scan");
        out.extend(page.items);
        match page.continuation {
            Some(t) => q.continuation = Some(t),
            None => return out,
        }
    }
}
