//! Webhook delivery tests (one binary): a real local receiver, jobs run on a
//! manual clock, signatures checked by the official Standard Webhooks
//! library, Service Bus sends against a local server, and a SIGKILL crash
//! test of the real binary.

mod api;
#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
mod crash;
mod delivery;
mod harness;
mod queue;
mod servicebus;
#[path = "../support/stores.rs"]
mod stores;
