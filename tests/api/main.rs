//! HTTP-level tests through the real router (one test binary).
//!
//! `TEST_STORE=embedded|cosmos` picks the store backend, so the same suite
//! runs once per backend.

mod auth;
mod catalog;
mod concurrency;
mod conventions;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod cross_tenant;
mod fuzz;
mod hardening;
mod helpers;
mod idempotency;
mod integrations;
mod pagination;
mod slowloris;
mod smoke;
#[path = "../support/stores.rs"]
mod stores;
mod tenancy;
mod two_writers;
mod validation;
