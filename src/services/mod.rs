//! Business operations, callable from any trigger (HTTP, timers, queues, CLI).

pub mod catalog;
pub mod integrations;
pub mod pages;
