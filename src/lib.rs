//! castiel-integrations: Castiel's integration hub.
//!
//! A library with a thin binary: [`bootstrap::build`] wires an [`state::App`]
//! from a [`config::Config`], [`http::router`] serves it, and [`run::serve`]
//! runs the standalone service.

pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
mod files;
pub mod handler;
pub mod http;
pub mod jobs;
pub mod outbound;
pub mod queue;
pub mod run;
pub mod secrets;
pub mod services;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod triggers;
pub mod webhooks;
