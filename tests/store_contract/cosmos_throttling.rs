//! Cosmos-only: throttling (429). The emulator enforces a 400 RU/s budget on
//! a one-partition container when throttling is on; a large write spends it.

use std::sync::Arc;

use azure_data_cosmos::options::ThrottlingRetryOptionsBuilder;
use azure_data_cosmos_driver::in_memory_emulator::{ContainerConfig, EmulatorStore};
use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::cosmos::{self, CosmosStore};
use castiel_integrations::platform::store::{Container, Store, StoreError};
use serde_json::{Value, json};

use crate::cosmos_emulator;

const C: Container = Container::Integrations;

fn small_container(emulator: &EmulatorStore) {
    emulator.create_database("castiel");
    emulator.create_container_with_config(
        "castiel",
        C.name(),
        serde_json::from_value(
            json!({"paths": [C.partition_key_path()], "kind": "Hash", "version": 2}),
        )
        .expect("pk definition"),
        ContainerConfig::new()
            .with_partition_count(1)
            .with_throughput(400)
            .build()
            .expect("container config"),
    );
}

fn padded(id: &str, kb: usize) -> Value {
    json!({"id": id, "tenantId": "t", "padding": "x".repeat(kb * 1024)})
}

async fn store(retries: azure_data_cosmos::options::ThrottlingRetryOptions) -> CosmosStore {
    let (client, emulator) = cosmos_emulator::account(true, retries).await;
    small_container(&emulator);
    let store = CosmosStore::new(client, "castiel", Arc::new(SystemClock));
    store.provision().await.expect("provision the rest");
    store
}

#[tokio::test]
async fn throttled_writes_are_retried_after_the_servers_delay() {
    let s = store(cosmos::throttling_retries()).await;
    s.create(C, padded("seed", 40))
        .await
        .expect("seed spends the budget");
    s.create(C, padded("next", 8))
        .await
        .expect("the 429 is retried after x-ms-retry-after-ms and succeeds");
    assert!(s.read(C, "t", "next").await.expect("read").is_some());
}

#[tokio::test]
async fn a_429_that_outlives_the_retries_is_throttled_with_the_servers_delay() {
    let no_retries = ThrottlingRetryOptionsBuilder::new()
        .with_max_retry_count(0)
        .build();
    let s = store(no_retries).await;
    s.create(C, padded("seed", 40))
        .await
        .expect("seed spends the budget");
    match s.create(C, padded("next", 8)).await {
        Err(StoreError::Throttled { retry_after }) => {
            assert!(
                !retry_after.is_zero(),
                "the server's retry-after is passed on"
            );
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
}
