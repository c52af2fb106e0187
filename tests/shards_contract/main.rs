//! The ShardSink contract: every sink runs exactly these cases on its own
//! fresh backend — the local shard store on the document store of
//! `TEST_STORE` (embedded SQLite, or Cosmos on the SDK's emulator) and the
//! Castiel shard-manager client against an in-process double speaking the
//! documented routes (`tests/support/shard_manager_double.rs`).
//!
//! Sink-specific checks are in `local.rs` and `castiel.rs`.
//!
//! Run: `cargo test --test shards_contract` (and `TEST_STORE=cosmos cargo
//! test --test shards_contract local`).

mod castiel;
mod contract;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod local;
#[path = "../support/shard_manager_double.rs"]
mod shard_manager_double;
#[path = "../support/stores.rs"]
mod stores;
mod subjects;

macro_rules! contract_tests {
    ($sink:ident, $make:expr) => {
        mod $sink {
            #[allow(unused_imports)]
            use crate::subjects::*;
            contract_tests!(@each $make; create_then_update_by_id_keeps_one_shard,
                a_page_creates_and_updates_together, another_tenant_cannot_read_it,
                one_refused_shard_fails_alone, health_answers);
        }
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                crate::contract::$name($make.await).await;
            }
        )*
    };
}

contract_tests!(local_store, local());
contract_tests!(castiel_shard_manager, castiel());
