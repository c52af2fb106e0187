//! Events against the real RabbitMQ broker (127.0.0.1:5672, guest/guest, or
//! `CASTIEL_TEST_RABBITMQ_URL`, which `scripts/test` exports). Every exchange and queue a test declares has a uuid
//! suffix, so tests share the broker with anything else safely.

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/stores.rs"]
mod stores;

mod broker;
mod consumer;
mod crash;
mod crash_in_process;
mod outbox;
#[path = "../support/process.rs"]
mod process;
#[path = "../support/proxy.rs"]
mod proxy;
mod publish;
mod watched;
