//! The webhook outbox (docs/api/webhooks.md): deliveries waiting for their next attempt. The events
//! of a change are queued in the change's own write transaction (`project_owned::insert`,
//! `replace`,
//! `remove`), one entry per subscribed webhook, so a committed change always has its deliveries
//! queued and a rolled-back one has none. The dispatcher (`dispatch`) takes entries as
//! they fall due and writes back what each attempt came to.
//!
//! Layout:
//! - `outbox`: `org_id ++ project_id ++ webhook_id ++ delivery_id` → `PendingDelivery`. Keyed by
//!   owner, so the entries of one webhook or one project are one key range, dropped with it.
//! - `outbox_due`: `due (u64 ms, BE) ++ seq (u64 BE)` → the entry's `outbox` key: every entry in
//!   the order it falls due, and in the order it was queued within one millisecond.
//! - `owned`, under a project's prefix: `SUBSCRIBED ++ webhook_id` → the webhook's event patterns,
//!   one per line. A webhook's index entry (`Webhook::index`), present only while it is active:
//!   the project's subscriptions, read without decoding a webhook.
//!
//! The outbox holds at most `Limits::outbox_entries` entries. When it is full an event is not
//! queued for a webhook, the change that fired it commits all the same, and a warning is logged:
//! a receiver that falls behind never holds up the API.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::{self, Record};
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, OrgId, ProjectId};
use crate::org_owned::audit;
use crate::store::{Reader, Tx, layout, tables};

/// Index tag of a project's subscriptions in the owned table (see the module's layout).
pub const SUBSCRIBED: u8 = 0x5e;
/// Prefix of delivery ids (docs/design.md), shared by every attempt to deliver one event.
pub const DELIVERY_ID_PREFIX: &str = "whd_";

/// A webhook event (docs/api/webhooks.md): its name and its `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: &'static str,
    pub data: Value,
}

impl Event {
    /// `name` with `data` serialized (an object's wire view).
    pub fn new(name: &'static str, data: &impl Serialize) -> ApiResult<Event> {
        Ok(Event {
            name,
            data: audit::snapshot(data)?,
        })
    }
}

/// Whether one `events` entry of a webhook covers `event`: the same name, `*`, or `<group>.*`
/// where the event's name starts with `<group>.` (docs/api/webhooks.md).
pub fn pattern_matches(pattern: &str, event: &str) -> bool {
    pattern == "*"
        || pattern == event
        || pattern
            .strip_suffix('*')
            .is_some_and(|group_dot| group_dot.ends_with('.') && event.starts_with(group_dot))
}

/// The value of a webhook's `SUBSCRIBED` entry: its patterns, one per line (a pattern is an
/// event name, `*` or `<group>.*`, never a line break).
pub fn subscription_value<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    patterns
        .into_iter()
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// An active webhook of a project and the events it subscribes to.
pub struct Subscription {
    pub webhook_id: String,
    patterns: Vec<String>,
}

impl Subscription {
    pub fn wants(&self, event: &str) -> bool {
        self.patterns.iter().any(|p| pattern_matches(p, event))
    }
}

/// The subscriptions stored under `prefix` (a project's `SUBSCRIBED` prefix in the owned table).
pub fn subscriptions(reader: &impl Reader, prefix: &[u8]) -> ApiResult<Vec<Subscription>> {
    let mut found = Vec::new();
    reader.scan(
        tables::OWNED,
        layout::prefix_range(prefix),
        false,
        &mut |key, value| {
            let webhook_id = key
                .get(prefix.len()..)
                .ok_or_else(|| ApiError::internal("malformed subscription key"))?;
            found.push(Subscription {
                webhook_id: String::from_utf8_lossy(webhook_id).into_owned(),
                patterns: String::from_utf8_lossy(value)
                    .split('\n')
                    .map(str::to_string)
                    .collect(),
            });
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(found)
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingDelivery {
    /// `whd_…`, sent as `X-RogerIQ-Delivery` and as the envelope's `id` on every attempt.
    pub delivery_id: String,
    pub webhook_id: String,
    pub event: String,
    /// The envelope (docs/api/webhooks.md) as JSON, made once when the event fired: every attempt
    /// signs and sends these same bytes.
    pub body: String,
    /// The number of the next attempt: 1, then 2, 3, …
    pub attempt: u32,
    /// When the next attempt is due, in Unix milliseconds.
    pub due_ms: u64,
    /// Orders entries due in the same millisecond by when they were queued.
    pub seq: u64,
}

impl Record for PendingDelivery {
    const NAME: &'static str = "pending webhook delivery";
}

/// The envelope of docs/api/webhooks.md, fields in the contract's order.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    event: &'a str,
    /// When the event happened (not when an attempt is sent), in Unix seconds.
    timestamp: i64,
    data: &'a Value,
}

/// The envelope's bytes for a new delivery of `event`, which happened at `timestamp`.
pub fn envelope(delivery_id: &str, event: &Event, timestamp: i64) -> ApiResult<String> {
    serde_json::to_string(&Envelope {
        id: delivery_id,
        event: event.name,
        timestamp,
        data: &event.data,
    })
    .map_err(|e| ApiError::internal(format!("webhook envelope: {e}")))
}

/// A new delivery id, `whd_…`.
pub fn new_delivery_id() -> String {
    ids::generate(DELIVERY_ID_PREFIX)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `outbox` key of a delivery.
fn entry_key(
    org_id: &OrgId,
    project_id: &ProjectId,
    webhook_id: &str,
    delivery_id: &str,
) -> Vec<u8> {
    let mut key = webhook_prefix(org_id, project_id, webhook_id);
    key.extend_from_slice(delivery_id.as_bytes());
    key
}

fn webhook_prefix(org_id: &OrgId, project_id: &ProjectId, webhook_id: &str) -> Vec<u8> {
    let mut key = layout::project_prefix(org_id, project_id);
    key.extend_from_slice(webhook_id.as_bytes());
    key
}

fn due_key(due_ms: u64, seq: u64) -> Vec<u8> {
    let mut key = due_ms.to_be_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The organisation and project of an `outbox` key.
pub fn owner(key: &[u8]) -> ApiResult<(OrgId, ProjectId)> {
    let org = key.get(..ids::ID_LEN).and_then(OrgId::from_bytes);
    let project = key
        .get(ids::ID_LEN..2 * ids::ID_LEN)
        .and_then(ProjectId::from_bytes);
    org.zip(project)
        .ok_or_else(|| ApiError::internal("malformed outbox key"))
}

/// Queues `event` for one webhook of a project, due now. When the outbox is full the event is
/// not queued (see the module's notes); the change goes on.
pub fn enqueue(
    tx: &mut Tx<'_>,
    org_id: &OrgId,
    project_id: &ProjectId,
    webhook_id: &str,
    event: &Event,
) -> ApiResult<()> {
    if tx.len(tables::OUTBOX)? >= tx.limits.outbox_entries {
        tracing::warn!(
            project_id = project_id.as_str(),
            webhook_id,
            event = event.name,
            capacity = tx.limits.outbox_entries,
            "webhook outbox full: event not queued for delivery"
        );
        return Ok(());
    }
    let delivery_id = new_delivery_id();
    let pending = PendingDelivery {
        body: envelope(&delivery_id, event, tx.now.unix())?,
        delivery_id,
        webhook_id: webhook_id.to_string(),
        event: event.name.to_string(),
        attempt: 1,
        due_ms: now_ms(),
        seq: tx.next_seq(),
    };
    let key = entry_key(org_id, project_id, webhook_id, &pending.delivery_id);
    tx.put(tables::OUTBOX, &key, &pending)?;
    tx.put_raw(
        tables::OUTBOX_DUE,
        &due_key(pending.due_ms, pending.seq),
        &key,
    )
}

pub fn get(reader: &impl Reader, key: &[u8]) -> ApiResult<Option<PendingDelivery>> {
    reader.get(tables::OUTBOX, key)
}

/// Moves an entry to its next attempt, due at `due_ms`.
pub fn reschedule(
    tx: &mut Tx<'_>,
    key: &[u8],
    pending: &PendingDelivery,
    due_ms: u64,
) -> ApiResult<()> {
    let next = PendingDelivery {
        attempt: pending.attempt.saturating_add(1),
        due_ms,
        ..pending.clone()
    };
    replace(tx, key, pending, &next)
}

/// Stores `next` in place of the entry `pending` at `key`, with its due key.
fn replace(
    tx: &mut Tx<'_>,
    key: &[u8],
    pending: &PendingDelivery,
    next: &PendingDelivery,
) -> ApiResult<()> {
    tx.remove(tables::OUTBOX_DUE, &due_key(pending.due_ms, pending.seq))?;
    tx.put(tables::OUTBOX, key, next)?;
    tx.put_raw(tables::OUTBOX_DUE, &due_key(next.due_ms, next.seq), key)
}

/// Removes an entry: delivered, failed for good, or stopped.
pub fn remove(tx: &mut Tx<'_>, key: &[u8], pending: &PendingDelivery) -> ApiResult<()> {
    tx.remove(tables::OUTBOX_DUE, &due_key(pending.due_ms, pending.seq))?;
    tx.remove(tables::OUTBOX, key).map(drop)
}

/// Drops every pending delivery of a webhook (deleted or disabled); returns how many.
pub fn drop_webhook(
    tx: &mut Tx<'_>,
    org_id: &OrgId,
    project_id: &ProjectId,
    webhook_id: &str,
) -> ApiResult<u64> {
    drop_under(tx, &webhook_prefix(org_id, project_id, webhook_id))
}

/// Drops every pending delivery of a project (deleted); returns how many.
pub fn drop_project(tx: &mut Tx<'_>, org_id: &OrgId, project_id: &ProjectId) -> ApiResult<u64> {
    drop_under(tx, &layout::project_prefix(org_id, project_id))
}

fn drop_under(tx: &mut Tx<'_>, prefix: &[u8]) -> ApiResult<u64> {
    // Due keys first: a table cannot be written while it is being scanned.
    let mut due_keys = Vec::new();
    tx.scan(
        tables::OUTBOX,
        layout::prefix_range(prefix),
        false,
        &mut |_, value| {
            let pending: PendingDelivery = codec::decode(value)?;
            due_keys.push(due_key(pending.due_ms, pending.seq));
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for key in &due_keys {
        tx.remove(tables::OUTBOX_DUE, key)?;
    }
    tx.remove_range(tables::OUTBOX, layout::prefix_range(prefix), |_| {})?;
    Ok(u64::try_from(due_keys.len()).unwrap_or(u64::MAX))
}

/// Entries due by `now_ms`, earliest first, that the caller does not hold already.
pub struct Due {
    /// `(outbox key, entry)`, at most the number asked for.
    pub entries: Vec<(Vec<u8>, PendingDelivery)>,
    /// When the next entry falls due, if none is due now beyond those returned.
    pub next_due_ms: Option<u64>,
}

/// Claims up to `room` entries due by `now_ms` for this process, where several share the
/// store: each is moved to fall due at `until_ms` (its attempt number unchanged), so that no
/// other process takes it until then, and entries that another process is claiming at the
/// same moment are passed over (`Tx::scan_claiming`). The attempt's outcome is written back
/// as usual; if this process dies first, the entry falls due at `until_ms` and another one
/// takes it. The entries come back as they now are.
pub fn claim(tx: &mut Tx<'_>, now_ms: u64, room: usize, until_ms: u64) -> ApiResult<Due> {
    let mut keys = Vec::new();
    let mut next_due_ms = None;
    tx.scan_claiming(
        tables::OUTBOX_DUE,
        layout::prefix_range(b""),
        &mut |due, key| {
            let due_ms = due_ms_of(due)?;
            if due_ms > now_ms {
                next_due_ms = Some(due_ms);
                return Ok(ControlFlow::Break(()));
            }
            if keys.len() == room {
                return Ok(ControlFlow::Break(()));
            }
            keys.push(key.to_vec());
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let mut entries = Vec::with_capacity(keys.len());
    for key in keys {
        let pending = get(tx, &key)?
            .ok_or_else(|| ApiError::internal("outbox due entry without its delivery"))?;
        let held = PendingDelivery {
            due_ms: until_ms,
            ..pending.clone()
        };
        replace(tx, &key, &pending, &held)?;
        entries.push((key, held));
    }
    Ok(Due {
        entries,
        next_due_ms,
    })
}

fn due_ms_of(due_key: &[u8]) -> ApiResult<u64> {
    due_key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| ApiError::internal("malformed outbox due key"))
}

/// Up to `room` entries due by `now_ms`, skipping the keys in `held` (attempts in progress).
pub fn due(
    reader: &impl Reader,
    now_ms: u64,
    room: usize,
    held: &HashSet<Vec<u8>>,
) -> ApiResult<Due> {
    let mut entries = Vec::new();
    let mut next_due_ms = None;
    reader.scan(
        tables::OUTBOX_DUE,
        layout::prefix_range(b""),
        false,
        &mut |due, key| {
            let due_ms = due_ms_of(due)?;
            if due_ms > now_ms {
                next_due_ms = Some(due_ms);
                return Ok(ControlFlow::Break(()));
            }
            if held.contains(key) {
                return Ok(ControlFlow::Continue(()));
            }
            if entries.len() == room {
                return Ok(ControlFlow::Break(()));
            }
            let pending = get(reader, key)?
                .ok_or_else(|| ApiError::internal("outbox due entry without its delivery"))?;
            entries.push((key.to_vec(), pending));
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(Due {
        entries,
        next_due_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_groups_and_everything() {
        for (pattern, event, expected) in [
            ("*", "conversation.created", true),
            ("*", "form.submitted", true),
            ("conversation.created", "conversation.created", true),
            ("conversation.created", "conversation.updated", false),
            ("conversation.*", "conversation.resolved", true),
            ("conversation.*", "contact.created", false),
            ("contact.*", "contact.updated", true),
            ("form.*", "form.submitted", true),
            ("agent.*", "agent.escalated", true),
            ("message.*", "messages.created", false),
        ] {
            assert_eq!(
                pattern_matches(pattern, event),
                expected,
                "{pattern} {event}"
            );
        }
    }

    #[test]
    fn subscription_values_keep_every_pattern() {
        let value = subscription_value(["conversation.*", "message.created"]);
        assert_eq!(value, b"conversation.*\nmessage.created");
    }

    #[test]
    fn the_envelope_has_the_contracts_fields_in_order() {
        let event = Event {
            name: "message.created",
            data: serde_json::json!({"id": "msg_x", "content": "hi"}),
        };
        let body = envelope("whd_abcdefghijkl", &event, 1_700_000_000).unwrap();
        assert_eq!(
            body,
            r#"{"id":"whd_abcdefghijkl","event":"message.created","timestamp":1700000000,"data":{"id":"msg_x","content":"hi"}}"#
        );
    }

    #[test]
    fn due_keys_sort_by_time_then_queue_order() {
        assert!(due_key(1, u64::MAX) < due_key(2, 0));
        assert!(due_key(5, 1) < due_key(5, 2));
        assert!(due_key(255, 0) < due_key(256, 0));
    }

    #[test]
    fn outbox_keys_name_their_project() {
        let org = OrgId::parse("org_aaaaaaaaaaaa").unwrap();
        let project = ProjectId::parse("prj_bbbbbbbbbbbb").unwrap();
        let key = entry_key(&org, &project, "wh_cccccccccccc", "whd_dddddddddddd");
        let (org, project) = owner(&key).unwrap();
        assert_eq!(
            (org.as_str(), project.as_str()),
            ("org_aaaaaaaaaaaa", "prj_bbbbbbbbbbbb")
        );
        assert!(key.starts_with(&webhook_prefix(&org, &project, "wh_cccccccccccc")));
    }
}
