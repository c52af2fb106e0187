//! The Store contract: every backend runs exactly these tests.
//!
//! Add a backend by one `contract_tests!(name, async { Arc<dyn Store> })` line
//! and one `store_behaviour_tests!` line (a store on a given clock, and what a
//! reader sees when a unit of work fails midway there).

mod contract;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod cosmos_throttling;
mod encoding;

use std::sync::Arc;

use castiel_integrations::clock::{Clock, ManualClock, SystemClock};
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};
use contract::MidwayFailure;

macro_rules! contract_tests {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            contract_tests!(@each $make; create_then_read, duplicate_create_conflicts, replace_honours_etag,
                upsert_inserts_and_replaces, delete_honours_etag, queries_stay_in_their_partition,
                filters_select_documents, pages_cover_everything_once, descending_pages,
                bad_continuation_is_refused, count_is_partition_scoped,
                cross_partition_scan, concurrent_replace_one_wins,
                bodies_round_trip, provision_and_health, write_all_applies_in_order,
                text_bodies_are_documents, deferred_writes_land_before_later_ones);
            contract_tests!(@in encoding, $make; awkward_values_round_trip);
        }
    };
    (@each $make:expr; $($name:ident),*) => {
        contract_tests!(@in contract, $make; $($name),*);
    };
    (@in $file:ident, $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store: Arc<dyn Store> = $make.await;
                crate::$file::$name(store).await;
            }
        )*
    };
}

/// What differs per store, and the tests that run on a manual clock.
///
/// `$on_clock` opens a fresh store on a given clock; `$midway` is what a
/// reader sees when a unit of work fails midway on that store.
macro_rules! store_behaviour_tests {
    ($backend:ident, $on_clock:path, $midway:expr) => {
        mod $backend {
            use super::*;
            store_behaviour_tests!(@clocked $on_clock; per_document_ttl_expires,
                container_ttl_expires, purge_keeps_live_documents);

            #[tokio::test]
            async fn a_failed_unit_of_work_shows_what_the_store_promises() {
                let store = $on_clock(Arc::new(SystemClock)).await;
                crate::contract::a_failed_unit_of_work_shows(store, $midway).await;
            }
        }
    };
    (@clocked $on_clock:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
                let store = $on_clock(clock.clone()).await;
                crate::contract::$name(store, clock).await;
            }
        )*
    };
}

async fn embedded() -> Arc<dyn Store> {
    embedded_on(Arc::new(SystemClock)).await
}

async fn embedded_on(clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let db = SqliteDb::open(&dir.join("contract.db")).expect("open sqlite");
    Arc::new(EmbeddedStore::new(db, clock))
}

contract_tests!(embedded_store, embedded());
// Cosmos in the SDK's default encoding (binary JSON, as production), and in
// plain JSON (what `cosmos::connect` uses for a local emulator endpoint).
contract_tests!(cosmos_store, cosmos_emulator::store(Arc::new(SystemClock)));
contract_tests!(
    cosmos_store_json,
    cosmos_emulator::store_json(Arc::new(SystemClock))
);
// SQLite commits a unit of work in one transaction; Cosmos DB applies its
// writes one by one (its batches stay within one partition).
store_behaviour_tests!(
    embedded_behaviour,
    embedded_on,
    MidwayFailure::NothingVisible
);
store_behaviour_tests!(
    cosmos_behaviour,
    cosmos_emulator::store,
    MidwayFailure::EarlierWritesVisible
);
store_behaviour_tests!(
    cosmos_json_behaviour,
    cosmos_emulator::store_json,
    MidwayFailure::EarlierWritesVisible
);
