//! Project-owned resources, on one generic implementation. Each kind is a small declaration (a
//! `Kind` impl: tag, id prefix, not-found code, view, index entries; `kind.rs`); look-up by id
//! (`scope.rs`), storage with index maintenance and audit entries (`write.rs`) and listing with
//! cursor pagination (`walker.rs`) are written once, for every kind. The registry of kinds and
//! what walks it, the project cascade included, is `registry.rs` (`registry::delete_project`).
//!
//! Layout inside the owned table, under the project prefix `org_id ++ project_id`:
//! - records: `tag ++ id`                  → the record (codec-encoded)
//! - indexes: `tag ++ … ++ seq ++ id`       → a small value, derived from one record
//! - counters: `tag ++ name`               → u64, summed over records (search statistics)
//!
//! Index entries and counters are computed from the record by the kind, so they are rewritten
//! whenever the record is, in the same transaction, and removed with it.

pub mod agent;
pub mod beacon;
pub mod contact;
pub mod conversation;
pub mod export;
pub mod form;
pub mod form_submission;
pub mod integration;
pub mod kb;
pub mod message;
pub mod registry;
pub mod routed;
pub mod saved_reply;
pub mod search;
pub mod singleton;
pub mod trigram;
pub mod values;
pub mod webhooks;
pub mod widget;

mod kind;
mod scope;
mod walker;
mod write;

pub use kind::{
    FIRST_INDEX_TAG, Id, IndexEntry, Kind, Postings, Stamp, lookup_prefix, new_id, not_found,
};
pub use routed::{Archivable, Filter, InputSettings, Listing, Routed};
pub use scope::{ProjectScope, find, find_by, find_public, find_text, get};
pub use walker::{Order, Walk, Walked, list, list_within};
pub(crate) use write::change_record_count;
use write::{audit_change, write_record};
pub use write::{insert, remove, remove_with_children, replace, write_unaudited};
