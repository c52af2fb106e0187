//! Domain basics and pure rules: tenancy, validation, time, paging. No I/O.

pub mod pages;
pub mod tenancy;
pub mod time;
pub mod validation;
