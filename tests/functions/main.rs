//! Azure Functions deployment tests (one test binary): an emulated host
//! driving the real `handler` binary and the trigger adapters, and checks of
//! function.json, host.json, local.settings.json, infra/ and the package.
//!
//! The emulator follows `reference/functions-protocol.md`; see `host.rs`.

mod binary;
mod config_files;
mod host;
mod infra;
mod jobs;
mod package;
