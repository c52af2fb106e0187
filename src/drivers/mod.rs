//! The ways work comes in: the HTTP API ([`http`]), the Azure Functions
//! custom handler ([`functions`]) and the standalone runner ([`serve`]).

pub mod functions;
pub mod http;
pub mod serve;
