//! The product's features, one folder each: its model, its service and its
//! background work, with a context holding exactly the ports it uses.

pub mod catalog;
pub mod connections;
pub mod integrations;
pub mod sync;
pub mod webhooks;
