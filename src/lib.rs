//! castiel-integrations: Castiel's integration hub.
//!
//! A library with a thin binary. Layers, imports in one direction
//! (`docs/architecture.md`, guarded by `tests/layers.rs`):
//!
//! - [`drivers`]: the HTTP API, the Functions custom handler and the `serve`
//!   runner — the ways work comes in;
//! - [`app`]: wiring (configuration → ports → feature contexts), the job
//!   dispatch and the one table of periodic work;
//! - [`features`]: catalog, integrations, webhooks — model, service and
//!   background work of each;
//! - [`platform`]: ports and their adapters (store, queue, events, secrets,
//!   outbound, cache, auth);
//! - basics: [`domain`], [`error`], [`clock`], [`config`], [`jobs`],
//!   [`telemetry`].

pub mod app;
pub mod clock;
pub mod config;
pub mod domain;
pub mod drivers;
pub mod error;
pub mod features;
pub mod jobs;
pub mod platform;
pub mod telemetry;
