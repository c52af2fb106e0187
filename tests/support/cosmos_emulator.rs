//! The one place tests touch the Cosmos SDK's in-process emulator
//! (`__internal_in_memory_emulator`, a pinned dev-dependency: it never
//! reaches the release build).
//!
//! The emulator replaces only the SDK's bottom HTTP transport, so routing,
//! retries, the query pipeline and paging run as in production. It keeps
//! Cosmos's real behaviour of *not* enforcing TTL; the store hides expired
//! documents itself. Each call makes a fresh in-memory account (4 physical
//! partitions per container), so tests never share state.

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::Arc;

use azure_core::credentials::Secret;
use azure_data_cosmos::options::ThrottlingRetryOptions;
use azure_data_cosmos::{AccountEndpoint, AccountReference, CosmosClient, CosmosRuntimeBuilder};
use azure_data_cosmos_driver::in_memory_emulator::{
    EmulatorStore, InMemoryEmulatorHttpClient, VirtualAccountConfig, VirtualRegion,
};
use castiel_integrations::clock::Clock;
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::cosmos::{self, CosmosStore};

const GATEWAY: &str = "https://eastus.emulator.local/";

/// A client on a fresh in-memory Cosmos account, with the store's 429 policy.
pub async fn client() -> CosmosClient {
    account(false, cosmos::throttling_retries()).await.0
}

/// A client on a fresh account (optionally enforcing RU budgets) with a
/// given 429 policy, and the emulator's store for direct set-up.
pub async fn account(
    throttling: bool,
    retries: ThrottlingRetryOptions,
) -> (CosmosClient, Arc<EmulatorStore>) {
    let url = azure_core::http::Url::parse(GATEWAY).expect("gateway url");
    let config = VirtualAccountConfig::new(vec![VirtualRegion::new("East US", url)])
        .expect("emulator config")
        .with_throttling_enabled(throttling);
    let emulator = Arc::new(InMemoryEmulatorHttpClient::new(config));
    let emulator_store = emulator.store();
    let client = key_client(&emulator, GATEWAY, retries).await;
    (client, emulator_store)
}

/// A client (key auth, plain JSON) on an emulator, called in process: its
/// requests go straight to the emulator, addressed to `gateway`.
pub async fn key_client(
    emulator: &Arc<InMemoryEmulatorHttpClient>,
    gateway: &str,
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
        true,
        retries,
    )
    .await
    .expect("emulator client")
}

/// A provisioned Cosmos store on a fresh in-memory account.
pub async fn store(clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    let store = CosmosStore::new(client().await, "castiel", clock);
    store.provision().await.expect("provision the emulator");
    Arc::new(store)
}
