//! Azure Functions deployment tests (one test binary): an emulated host
//! driving the real `handler` binary and the trigger adapters, and checks of
//! function.json, host.json, local.settings.json, infra/ and the package.
//!
//! The emulator follows `docs/functions-protocol.md`; see `host.rs` (with
//! `definitions.rs`, `wire.rs` and `envelopes.rs`).

mod bicep_settings;
mod binary;
mod config_files;
mod definitions;
mod envelopes;
mod host;
mod infra;
mod jobs;
mod package;
mod wire;

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../support/cosmos_gateway.rs"]
mod cosmos_gateway;
#[path = "../support/managed_identity.rs"]
mod managed_identity;
#[path = "../support/stores.rs"]
mod stores;
#[allow(dead_code, reason = "the doubles use only part of it")]
#[path = "../support/tls.rs"]
mod tls;
