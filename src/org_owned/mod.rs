//! What belongs to an organisation: the organisation itself, its API keys, its projects, its
//! audit log and its idempotency records. Each module holds a record, its wire view, the
//! validation of its inputs and its store operations. Everything a project owns is in
//! `project_owned`.

pub mod api_key;
pub mod audit;
pub mod idempotency;
pub mod org;
pub mod project;
pub mod retention;
pub mod session;
