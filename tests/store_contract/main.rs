//! The Store contract: every backend runs exactly these tests.
//!
//! Add a backend by one `contract_tests!(name, async { Arc<dyn Store> })` line.

mod contract;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod cosmos_throttling;

use std::sync::Arc;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};

macro_rules! contract_tests {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            contract_tests!(@each $make; create_then_read, duplicate_create_conflicts, replace_honours_etag,
                upsert_inserts_and_replaces, delete_honours_etag, queries_stay_in_their_partition,
                filters_select_documents, pages_cover_everything_once, descending_pages,
                bad_continuation_is_refused, count_is_partition_scoped, per_document_ttl_expires,
                container_ttl_and_no_ttl, cross_partition_scan, concurrent_replace_one_wins,
                bodies_round_trip, provision_and_health, write_all_applies_in_order,
                write_all_is_atomic_where_transactional, text_bodies_are_documents,
                purge_keeps_live_documents, deferred_writes_land_before_later_ones);
        }
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store: Arc<dyn Store> = $make.await;
                crate::contract::$name(store).await;
            }
        )*
    };
}

async fn embedded() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let db = SqliteDb::open(&dir.join("contract.db")).expect("open sqlite");
    Arc::new(EmbeddedStore::new(db, Arc::new(SystemClock)))
}

contract_tests!(embedded_store, embedded());
contract_tests!(cosmos_store, cosmos_emulator::store(Arc::new(SystemClock)));
