//! Webhook delivery tests (one binary): a real local receiver, jobs run on a
//! manual clock, signatures checked by the official Standard Webhooks
//! library, Service Bus sends against a local server, and a crash test (a
//! SIGKILL of the real binary on the embedded store, an in-process crash on
//! Cosmos). `TEST_STORE=embedded|cosmos` picks the store.

mod api;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod crash;
mod crash_in_process;
mod delivery;
mod harness;
#[path = "../support/process.rs"]
mod process;
mod queue;
mod redrive;
mod servicebus;
#[path = "../support/stores.rs"]
mod stores;
