//! HTTP-level tests through the real router (one test binary).
//!
//! `TEST_STORE=embedded|cosmos` picks the store backend, so the same suite
//! runs once per backend.

mod concurrency;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod helpers;
mod smoke;
