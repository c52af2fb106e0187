//! The one place tests touch the Cosmos SDK's in-process emulator
//! (`__internal_in_memory_emulator`, a pinned dev-dependency: it never
//! reaches the release build).
//!
//! The emulator replaces only the SDK's bottom HTTP transport, so routing,
//! retries, the query pipeline, paging and the wire encoding run as in
//! production. Clients speak the SDK's default encoding, Cosmos binary JSON,
//! as production does ([`Encoding::Binary`]); the store contract also runs in
//! plain JSON ([`Encoding::Json`]), the encoding `cosmos::connect` picks for
//! a local emulator endpoint. The emulator keeps Cosmos's real behaviour of
//! *not* enforcing TTL; the store hides expired documents itself.
//!
//! An [`Account`] is one in-memory account (4 physical partitions per
//! container); tests never share one. Every client made on it sees the same
//! documents, so a test can "restart" the service on the same account (a
//! fresh SDK client, as a new process would make).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use azure_core::credentials::Secret;
use azure_data_cosmos::options::ThrottlingRetryOptions;
use azure_data_cosmos::{AccountEndpoint, AccountReference, CosmosClient, CosmosRuntimeBuilder};
use azure_data_cosmos_driver::in_memory_emulator::{
    EmulatorStore, InMemoryEmulatorHttpClient, RequestObserver, VirtualAccountConfig, VirtualRegion,
};
use castiel_integrations::clock::Clock;
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::cosmos::{self, CosmosStore};

const GATEWAY: &str = "https://eastus.emulator.local/";
/// The database every test store uses.
pub const DATABASE: &str = "castiel";

/// How a client encodes documents on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Cosmos binary JSON: the SDK's default, what production sends.
    Binary,
    /// Plain JSON text (`cosmos::connect` for local emulator endpoints).
    Json,
}

/// Counts the requests that asked for a binary answer (the SDK advertises
/// `CosmosBinary` in `x-ms-cosmos-supported-serialization-formats`).
#[derive(Debug, Default)]
pub struct Wire {
    requests: AtomicUsize,
    binary: AtomicUsize,
}

impl Wire {
    /// Requests seen, and how many of them negotiated binary.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::SeqCst),
            self.binary.load(Ordering::SeqCst),
        )
    }
}

impl RequestObserver for Wire {
    fn on_request(&self, request: &azure_core::http::Request) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let binary = request
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                "x-ms-cosmos-supported-serialization-formats",
            ))
            .is_some_and(|v| {
                v.split(',')
                    .any(|f| f.trim().eq_ignore_ascii_case("CosmosBinary"))
            });
        if binary {
            self.binary.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One in-memory Cosmos account.
#[derive(Debug, Clone)]
pub struct Account {
    emulator: Arc<InMemoryEmulatorHttpClient>,
    wire: Arc<Wire>,
}

impl Account {
    /// A fresh account, optionally enforcing RU budgets (429s).
    pub fn new(throttling: bool) -> Self {
        let url = azure_core::http::Url::parse(GATEWAY).expect("gateway url");
        let config = VirtualAccountConfig::new(vec![VirtualRegion::new("East US", url)])
            .expect("emulator config")
            .with_throttling_enabled(throttling);
        let wire = Arc::new(Wire::default());
        let emulator =
            Arc::new(InMemoryEmulatorHttpClient::new(config).with_request_observer(wire.clone()));
        Self { emulator, wire }
    }

    /// The emulator's own store (direct set-up, throttling budgets).
    pub fn emulator_store(&self) -> Arc<EmulatorStore> {
        self.emulator.store()
    }

    /// What went over the wire so far.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// A new SDK client on this account (its own runtime, as a new process
    /// would have) with a given encoding and 429 policy.
    pub async fn client(
        &self,
        encoding: Encoding,
        retries: ThrottlingRetryOptions,
    ) -> CosmosClient {
        client_on(&self.emulator, GATEWAY, encoding, retries).await
    }

    /// A provisioned store on this account through a new client
    /// (provisioning is idempotent: a second store finds everything there).
    pub async fn store_in(&self, encoding: Encoding, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
        let client = self.client(encoding, cosmos::throttling_retries()).await;
        let store = CosmosStore::new(client, DATABASE, clock);
        store.provision().await.expect("provision the emulator");
        Arc::new(store)
    }

    /// A provisioned store in the SDK's default (binary) encoding.
    pub async fn store(&self, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
        self.store_in(Encoding::Binary, clock).await
    }
}

/// A client (key auth) on an emulator, called in process: its requests go
/// straight to the emulator, addressed to `gateway`.
async fn client_on(
    emulator: &Arc<InMemoryEmulatorHttpClient>,
    gateway: &str,
    encoding: Encoding,
    retries: ThrottlingRetryOptions,
) -> CosmosClient {
    let runtime = CosmosRuntimeBuilder::from(emulator.runtime_builder())
        .build()
        .await
        .expect("emulator runtime");
    let account = AccountReference::with_authentication_key(
        gateway.parse::<AccountEndpoint>().expect("endpoint"),
        Secret::new("dGVzdGtleQ=="),
    );
    cosmos::build(
        CosmosClient::builder().with_runtime(runtime),
        account,
        encoding == Encoding::Json,
        retries,
    )
    .await
    .expect("emulator client")
}

/// A client (key auth, plain JSON: what `cosmos::connect` uses for a
/// loopback endpoint) on an emulator, called in process: its requests go
/// straight to the emulator, addressed to `gateway`.
pub async fn key_client(
    emulator: &Arc<InMemoryEmulatorHttpClient>,
    gateway: &str,
    retries: ThrottlingRetryOptions,
) -> CosmosClient {
    client_on(emulator, gateway, Encoding::Json, retries).await
}

/// A client (binary encoding) on a fresh account, with the store's 429 policy.
pub async fn client() -> CosmosClient {
    Account::new(false)
        .client(Encoding::Binary, cosmos::throttling_retries())
        .await
}

/// A client (binary encoding) on a fresh account (optionally enforcing RU
/// budgets) with a given 429 policy, and the emulator's store for direct
/// set-up.
pub async fn account(
    throttling: bool,
    retries: ThrottlingRetryOptions,
) -> (CosmosClient, Arc<EmulatorStore>) {
    let account = Account::new(throttling);
    let client = account.client(Encoding::Binary, retries).await;
    (client, account.emulator_store())
}

/// A provisioned Cosmos store (binary encoding) on a fresh account.
pub async fn store(clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    Account::new(false).store(clock).await
}

/// A provisioned Cosmos store speaking plain JSON, on a fresh account.
pub async fn store_json(clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    Account::new(false).store_in(Encoding::Json, clock).await
}
