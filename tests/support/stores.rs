//! The document store a suite runs on: `TEST_STORE=embedded|cosmos`
//! (default `embedded`). `embedded` is the SQLite store in a file of the
//! test's directory; `cosmos` the production Cosmos store on a fresh
//! account of the SDK's in-memory emulator (`cosmos_emulator.rs`), in the
//! SDK's default (binary) encoding. `scripts/test` runs each suite that
//! touches the store once per value (its `BACKEND_RUNS`).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use castiel_integrations::clock::Clock;
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};

use crate::cosmos_emulator::Account;

/// A store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (transactions across containers).
    Embedded,
    /// Azure Cosmos DB through the SDK, on its in-memory emulator.
    Cosmos,
}

/// The backend `TEST_STORE` names (an unknown name fails the test).
pub fn backend() -> Backend {
    match std::env::var("TEST_STORE").as_deref() {
        Err(_) | Ok("embedded") => Backend::Embedded,
        Ok("cosmos") => Backend::Cosmos,
        Ok(other) => panic!("TEST_STORE={other} is not a known backend (embedded, cosmos)"),
    }
}

/// Where a store's documents live, apart from any app built on them: a
/// test can open the store again on the same documents (a restart).
#[derive(Debug, Clone)]
pub enum Place {
    /// The SQLite file.
    Embedded(PathBuf),
    /// The emulator account (kept alive here across restarts).
    Cosmos(Account),
}

impl Place {
    /// A new place of the selected backend (a SQLite file in `dir`, or a
    /// fresh emulator account).
    pub fn new(dir: &Path) -> Self {
        match backend() {
            Backend::Embedded => Self::Embedded(dir.join("test.db")),
            Backend::Cosmos => Self::Cosmos(Account::new(false)),
        }
    }

    /// Opens a store on it: a new SQLite connection, or a new SDK client
    /// on the same account (provisioned; provisioning again is harmless).
    pub async fn open(&self, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
        match self {
            Self::Embedded(path) => {
                let db = SqliteDb::open(path).expect("open sqlite");
                Arc::new(EmbeddedStore::new(db, clock))
            }
            Self::Cosmos(account) => account.store(clock).await,
        }
    }
}

/// Every document a query selects, following its pages.
pub async fn all_documents(
    store: &dyn Store,
    container: castiel_integrations::platform::store::Container,
    query: castiel_integrations::platform::store::Query,
) -> Vec<castiel_integrations::platform::store::Document> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query(container, &query.clone().after(after))
            .await
            .expect("query");
        out.extend(page.items);
        match page.continuation {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// Opens a fresh store of the selected backend.
pub async fn test_store(dir: &Path, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    Place::new(dir).open(clock).await
}
