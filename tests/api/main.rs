//! Black-box tests: the real server on port 0 with a temporary data directory, spoken to over
//! HTTP. One test binary, one module per area.

mod helpers;
// Shared with benches/requests.rs, whose durable cluster and pgbench runs the tests do not use.
#[allow(dead_code)]
mod pg_cluster;
mod shapes;

mod admin;
mod audit;
mod authorization;
mod cli;
mod crash;
mod errors;
mod faults;
mod keys;
mod nodes;
mod persistence;
mod process;
mod projects;
mod rate_limit;
mod store;
mod store_model;

mod fixtures;
mod receiver;

mod cascade;
mod contacts;
mod conversations;
mod isolation;
mod kb;
mod pagination;

mod agent;
mod archive;
mod backup;
mod beacons;
mod browser;
mod connection;
mod contract;
mod dashboard;
mod database;
mod filters;
mod forms;
mod idempotency;
mod integrations;
mod mcp;
mod metrics;
mod saved_replies;
mod sdk_compat;
mod webhook_delivery;
mod webhook_targets;
mod webhooks;
mod widget;
