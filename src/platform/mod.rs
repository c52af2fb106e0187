//! Ports and their adapters: what features use to reach storage, queues,
//! the event bus, secrets and the outside world. Nothing here names a
//! feature; only [`crate::app`]'s wiring chooses an adapter.

pub mod auth;
pub mod cache;
pub mod castiel_http;
pub mod events;
pub(crate) mod files;
pub mod outbound;
pub mod queue;
pub mod secrets;
pub mod shards;
pub mod store;
