//! rogeriq: a self-hosted server for the RogerIQ customer-support API. docs/design.md explains
//! the storage layout, the transaction rules and the request path.

pub mod admin_socket;
pub mod api;
pub mod auth;
#[cfg(test)]
mod captured_log;
pub mod codec;
pub mod config;
pub mod error;
pub mod ids;
pub mod mcp;
pub mod metrics;
pub mod org_owned;
pub mod pagination;
pub mod project_owned;
pub mod query;
pub mod rate_limit;
pub mod schema;
pub mod server;
pub mod store;
pub mod timestamp;
pub mod validate;
mod view;
