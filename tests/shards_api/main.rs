//! `/api/v1/shards` (SPEC §5.7) through the real router, on the store of
//! `TEST_STORE`: browse filters and paging, get, edits with `If-Match`,
//! `shard.updated` as shard-manager raises it, tenant isolation, and 404s
//! when Castiel's shard-manager is the sink.
//!
//! Run: `cargo test --test shards_api` (and with `TEST_STORE=cosmos`).

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/stores.rs"]
mod stores;

mod browse;
mod edit;
