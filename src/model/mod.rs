//! Stored records, their wire views, the validation of their inputs, and their store operations.

pub mod api_key;
pub mod audit;
pub mod org;
pub mod project;
