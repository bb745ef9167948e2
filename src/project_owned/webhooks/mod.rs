//! Webhooks in one place (docs/api/webhooks.md): the two kinds a client manages, and delivery.
//!
//! - `webhook`: the webhook kind (URL, event patterns, status, signing secret). While it is
//!   active it keeps its subscription as an index entry of its project.
//! - `delivery_log`: the delivery record kind, one record per attempt, the latest of each webhook
//!   kept.
//! - `outbox`: deliveries waiting for their next attempt (tables `outbox` and `outbox_due`).
//! - `dispatch`: the dispatcher, which sends the outbox's deliveries as they fall due, and the
//!   test action's single attempt.
//! - `signing`: the `X-RogerIQ-Signature` value, an HMAC of the body under the webhook's secret.
//! - `outbound`: the server's outgoing HTTP clients and the webhook client's private-address
//!   guard.
//!
//! How an event travels: a change of a record is written by the generic write path, which asks
//! its kind for the events it fires (`Kind::events`) and, in the same transaction, queues one
//! outbox entry per active webhook of the project whose patterns match. The dispatcher claims
//! the entries that fall due, reloads each one's webhook, signs the stored envelope with the
//! webhook's current secret and POSTs it through the guarded client. It then writes back, in one
//! transaction, a delivery record, the webhook's counters (and its auto-disable) and the outbox
//! entry, removed or moved to its next attempt.
//!
//! The folder lies inside `project_owned/` because both ends of that trip are there: the outbox
//! is written by the write path beneath every kind, and the dispatcher reads and writes webhooks
//! and their delivery records. `outbound` also builds the agent's model-provider client, because
//! both clients follow the same rules (rustls, no redirect, no proxy); most of the file is the
//! webhook guard, so it lives here; the server's `AppState` holds both clients.

pub mod delivery_log;
pub mod dispatch;
pub mod outbound;
pub mod outbox;
pub mod signing;
pub mod webhook;
