//! The SecretStore contract: every store runs exactly these cases, on its
//! own fresh backend: the local store (on the document store of
//! `TEST_STORE`: embedded SQLite, or Cosmos on the SDK's emulator), Key Vault
//! (the official SDK against an in-process Key Vault over https) and Castiel
//! secret-management (over HTTP against an in-process double).
//!
//! Add a store by one `contract_tests!(name, working(), down())` line.
//! Store-specific checks (what each double verifies, retries, limits) are in
//! `local.rs`, `keyvault.rs` and `castiel.rs`.
//!
//! Run: `cargo test --test secrets_contract`.

mod backends;
mod castiel;
mod contract;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod keyvault;
mod local;
#[path = "../support/logs.rs"]
mod logs;
mod wiring;

#[path = "../support/stores.rs"]
mod stores;

#[path = "../support/castiel_secrets_double.rs"]
mod castiel_secrets_double;
#[path = "../support/keyvault_double.rs"]
mod keyvault_double;
#[path = "../support/tls.rs"]
mod tls;

macro_rules! contract_tests {
    ($backend:ident, $make:expr, $down:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use crate::backends::*;
            contract_tests!(@each $make; round_trip, only_the_owner_reads,
                owners_are_isolated_across_tenants_and_kinds, odd_references_name_nothing,
                odd_owner_ids_round_trip, unicode_and_64k_values_round_trip,
                concurrent_puts_are_independent, nothing_secret_in_errors_debug_or_logs,
                values_over_the_limit_are_refused);

            #[tokio::test]
            async fn down_is_unavailable() {
                crate::contract::down_is_unavailable($down.await).await;
            }
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

contract_tests!(local_store, local(), local_down());
contract_tests!(keyvault_store, keyvault(), keyvault_down());
contract_tests!(castiel_store, castiel(), castiel_down());
