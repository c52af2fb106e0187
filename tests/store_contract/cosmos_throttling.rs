//! Cosmos-only: throttling (429). The emulator enforces a 400 RU/s budget on
//! a one-partition container when throttling is on; a large write spends it.
//!
//! What the emulator answered is observed, not assumed: the client carries a
//! diagnostics handler that records, per operation, the status of every
//! request the SDK sent and the emulator answered (retries included). The
//! tests assert that 429s happened, and what followed them.

use std::sync::{Arc, Mutex};

use azure_core::credentials::Secret;
use azure_core::http::Context;
use azure_data_cosmos::diagnostics::{DiagnosticsContext, DiagnosticsHandler};
use azure_data_cosmos::options::{ThrottlingRetryOptions, ThrottlingRetryOptionsBuilder};
use azure_data_cosmos::{AccountEndpoint, AccountReference, CosmosClient, CosmosRuntimeBuilder};
use azure_data_cosmos_driver::in_memory_emulator::{
    ContainerConfig, EmulatorStore, InMemoryEmulatorHttpClient, VirtualAccountConfig, VirtualRegion,
};
use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::cosmos::{self, CosmosStore};
use castiel_integrations::platform::store::{Container, Store, StoreError};
use serde_json::{Value, json};

const C: Container = Container::Integrations;
const GATEWAY: &str = "https://eastus.emulator.local/";
const TOO_MANY_REQUESTS: u16 = 429;
/// Cosmos's sub-status for "the partition's RU budget is spent".
const RU_BUDGET_SPENT: u16 = 3200;

/// One request's answer: HTTP status and Cosmos sub-status.
type Status = (u16, Option<u16>);

/// The statuses of each operation's requests, in order.
#[derive(Default)]
struct Answers(Mutex<Vec<Vec<Status>>>);

impl DiagnosticsHandler for Answers {
    fn handle(&self, diagnostics: &DiagnosticsContext, _cx: &Context<'_>) {
        let statuses = diagnostics
            .requests()
            .iter()
            .map(|r| {
                let s = r.status();
                (
                    u16::from(s.status_code()),
                    s.sub_status().map(|c| c.value()),
                )
            })
            .collect();
        self.0.lock().expect("lock").push(statuses);
    }
}

impl Answers {
    /// Forgets what was recorded so far.
    fn clear(&self) {
        self.0.lock().expect("lock").clear();
    }

    /// Every operation recorded since the last `clear`.
    fn operations(&self) -> Vec<Vec<Status>> {
        self.0.lock().expect("lock").clone()
    }

    /// How many 429s the emulator returned since the last `clear`, each
    /// checked to be the RU-budget kind.
    fn throttled(&self) -> usize {
        let ops = self.operations();
        let all = ops.iter().flatten();
        let throttled: Vec<_> = all.filter(|(s, _)| *s == TOO_MANY_REQUESTS).collect();
        for (_, sub) in &throttled {
            assert_eq!(
                *sub,
                Some(RU_BUDGET_SPENT),
                "a 429 of the RU budget: {ops:?}"
            );
        }
        throttled.len()
    }
}

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

/// A store on a fresh throttling emulator account whose client reports
/// every operation's answers to `answers`, with the given 429 policy.
async fn store(retries: ThrottlingRetryOptions, answers: Arc<Answers>) -> CosmosStore {
    let url = azure_core::http::Url::parse(GATEWAY).expect("gateway url");
    let config = VirtualAccountConfig::new(vec![VirtualRegion::new("East US", url)])
        .expect("emulator config")
        .with_throttling_enabled(true);
    let emulator = Arc::new(InMemoryEmulatorHttpClient::new(config));
    small_container(&emulator.store());
    let runtime = CosmosRuntimeBuilder::from(emulator.runtime_builder())
        .build()
        .await
        .expect("emulator runtime");
    let account = AccountReference::with_authentication_key(
        GATEWAY.parse::<AccountEndpoint>().expect("endpoint"),
        Secret::new("dGVzdGtleQ=="),
    );
    let builder = CosmosClient::builder()
        .with_runtime(runtime)
        .with_diagnostics_handler(answers);
    // The SDK's default encoding (binary), as production sends.
    let client = cosmos::build(builder, account, false, retries)
        .await
        .expect("emulator client");
    let store = CosmosStore::new(client, "castiel", Arc::new(SystemClock));
    store.provision().await.expect("provision the rest");
    store
}

#[tokio::test]
async fn throttled_writes_are_retried_after_the_servers_delay() {
    let answers = Arc::new(Answers::default());
    let s = store(cosmos::throttling_retries(), answers.clone()).await;
    s.create(C, padded("seed", 40))
        .await
        .expect("seed spends the budget");
    answers.clear();
    s.create(C, padded("next", 8))
        .await
        .expect("the 429 is retried after x-ms-retry-after-ms and succeeds");
    let ops = answers.operations();
    assert!(answers.throttled() >= 1, "the emulator throttled: {ops:?}");
    let create = ops
        .iter()
        .find(|op| op.iter().any(|(s, _)| *s == TOO_MANY_REQUESTS))
        .expect("a throttled operation");
    assert_eq!(
        create.last().map(|(s, _)| *s),
        Some(201),
        "the same operation was retried until created: {ops:?}"
    );
    assert!(s.read(C, "t", "next").await.expect("read").is_some());
}

#[tokio::test]
async fn a_429_that_outlives_the_retries_is_throttled_with_the_servers_delay() {
    let no_retries = ThrottlingRetryOptionsBuilder::new()
        .with_max_retry_count(0)
        .build();
    let answers = Arc::new(Answers::default());
    let s = store(no_retries, answers.clone()).await;
    s.create(C, padded("seed", 40))
        .await
        .expect("seed spends the budget");
    answers.clear();
    match s.create(C, padded("next", 8)).await {
        Err(StoreError::Throttled { retry_after }) => {
            assert!(
                !retry_after.is_zero(),
                "the server's retry-after is passed on"
            );
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    let ops = answers.operations();
    assert!(answers.throttled() >= 1, "the emulator throttled: {ops:?}");
    let create = ops
        .iter()
        .find(|op| op.iter().any(|(s, _)| *s == TOO_MANY_REQUESTS))
        .expect("a throttled operation");
    assert_eq!(
        create.len(),
        1,
        "no retry was sent, the 429 reached the store: {ops:?}"
    );
}
