//! Domain types and pure rules: no I/O here.

pub mod catalog;
pub mod integration;
pub mod tenancy;
pub mod time;
pub mod validation;
