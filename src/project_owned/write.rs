//! The write path of every kind: a record stored, replaced or removed with its index entries,
//! its record count, its `<kind>.<verb>` audit entry and the webhook events it fires, all in the
//! change's transaction.

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::error::{ApiError, ApiResult};
use crate::org_owned::audit::{self, Actor, Event};
use crate::project_owned::kind::{IndexEntry, Kind};
use crate::project_owned::scope::{ProjectScope, decode_u64};
use crate::project_owned::webhooks::outbox::{self, Event as WebhookEvent};
use crate::store::{Reader, Tx, layout, tables};

/// Stores a new record with its index entries and its `<kind>.created` audit entry.
pub fn insert<K: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    record: &K,
) -> ApiResult<()> {
    write_record(tx, scope, None, Some(record))?;
    audit_change(tx, scope, actor, "created", None, Some(record), Vec::new())
}

/// Replaces a record, rewriting only the index entries that changed, and audits `verb`.
pub fn replace<K: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    verb: &str,
    before: &K,
    after: &K,
) -> ApiResult<()> {
    write_record(tx, scope, Some(before), Some(after))?;
    audit_change(
        tx,
        scope,
        actor,
        verb,
        Some(before),
        Some(after),
        Vec::new(),
    )
}

/// Deletes a record and its index entries, with a `<kind>.deleted` audit entry.
pub fn remove<K: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    record: &K,
) -> ApiResult<()> {
    write_record(tx, scope, Some(record), None)?;
    audit_change(tx, scope, actor, "deleted", Some(record), None, Vec::new())
}

/// Deletes a record together with its children: the records of kind `C` that its id groups in
/// the ordering index `children` (a webhook's deliveries, as a conversation's messages are
/// grouped). One `<kind>.deleted` audit entry counts them under `C::PLURAL`; the children get
/// none of their own. Returns how many children went.
pub fn remove_with_children<K: Kind, C: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    record: &K,
    children: u8,
) -> ApiResult<u64> {
    let group = scope.key(children, record.id().as_bytes());
    // Ids first: a table cannot be written while it is being scanned.
    let mut ids = Vec::new();
    tx.scan(
        tables::OWNED,
        layout::prefix_range(&group),
        false,
        &mut |key, _| {
            // After the group: the child's seq (8 bytes), then its id.
            let id = key
                .get(group.len() + 8..)
                .ok_or_else(|| ApiError::internal("malformed ordering key"))?;
            ids.push(id.to_vec());
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for id in &ids {
        let child: C = tx
            .get(tables::OWNED, &scope.key(C::TAG, id))?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "ordering entry without record: {}",
                    String::from_utf8_lossy(id)
                ))
            })?;
        write_record(tx, scope, Some(&child), None)?;
    }
    write_record(tx, scope, Some(record), None)?;
    let removed = u64::try_from(ids.len()).unwrap_or(u64::MAX);
    let cascade = if removed == 0 {
        Vec::new()
    } else {
        vec![(C::PLURAL.to_string(), removed)]
    };
    audit_change(tx, scope, actor, "deleted", Some(record), None, cascade)?;
    Ok(removed)
}

/// Writes a record the server keeps on its own account, not a client's change (a delivery
/// record, a webhook's delivery counters): its index entries are maintained, but it has no audit
/// entry and fires no event.
pub fn write_unaudited<K: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    old: Option<&K>,
    new: Option<&K>,
) -> ApiResult<()> {
    write_record(tx, scope, old, new)
}

pub(super) fn write_record<K: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    old: Option<&K>,
    new: Option<&K>,
) -> ApiResult<()> {
    let index_of = |record: Option<&K>| -> ApiResult<HashSet<IndexEntry>> {
        Ok(record
            .map(K::index)
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .collect())
    };
    let (old_index, new_index) = (index_of(old)?, index_of(new)?);
    for entry in old_index.difference(&new_index) {
        match entry {
            IndexEntry::Key { tag, key, .. } => {
                tx.remove(tables::OWNED, &scope.key(*tag, key))?;
            }
            IndexEntry::Counter { tag, key, amount } => {
                add_to_counter(tx, scope, *tag, key, *amount, false)?
            }
        }
    }
    for entry in new_index.difference(&old_index) {
        match entry {
            IndexEntry::Key { tag, key, value } => {
                tx.put_raw(tables::OWNED, &scope.key(*tag, key), value)?
            }
            IndexEntry::Counter { tag, key, amount } => {
                add_to_counter(tx, scope, *tag, key, *amount, true)?
            }
        }
    }
    match (old, new) {
        (old, Some(record)) => {
            if old.is_none() {
                if K::PUBLIC {
                    tx.put_raw(tables::PUBLIC_IDS, record.id().as_bytes(), &scope.prefix)?;
                }
                change_record_count(tx, K::TAG, 1, true)?;
            }
            tx.put(
                tables::OWNED,
                &scope.key(K::TAG, record.id().as_bytes()),
                record,
            )
        }
        (Some(record), None) => {
            if K::PUBLIC {
                tx.remove(tables::PUBLIC_IDS, record.id().as_bytes())?;
            }
            change_record_count(tx, K::TAG, 1, false)?;
            tx.remove(tables::OWNED, &scope.key(K::TAG, record.id().as_bytes()))
                .map(drop)
        }
        (None, None) => Ok(()),
    }
}

/// Adds to (or subtracts from) the store-wide count of the records tagged `tag`
/// (`Tx::add_to_count`), in the transaction of the change: metrics read it without a scan.
pub(crate) fn change_record_count(tx: &Tx<'_>, tag: u8, amount: u64, add: bool) -> ApiResult<()> {
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    tx.add_to_count(&[tag], if add { amount } else { -amount })
}

fn add_to_counter(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    tag: u8,
    name: &[u8],
    amount: u64,
    add: bool,
) -> ApiResult<()> {
    let key = scope.key(tag, name);
    let current = tx
        .get_raw(tables::OWNED, &key)?
        .map_or(0, |v| decode_u64(&v));
    let next = if add {
        current.saturating_add(amount)
    } else {
        current.saturating_sub(amount)
    };
    if next == 0 {
        tx.remove(tables::OWNED, &key).map(drop)
    } else {
        tx.put_raw(tables::OWNED, &key, &next.to_be_bytes())
    }
}

/// `<kind>.<verb>` with the changes between the views before and after, and the counts of the
/// records removed with it; and the webhook deliveries of the events the change fires.
pub(super) fn audit_change<K: Kind>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    verb: &str,
    before: Option<&K>,
    after: Option<&K>,
    cascade: Vec<(String, u64)>,
) -> ApiResult<()> {
    let action = format!("{}.{verb}", K::SINGULAR);
    let target_id = after.or(before).map(K::id).unwrap_or_default();
    audit::record(
        tx,
        actor,
        Event {
            org_id: &scope.org_id,
            project_id: Some(&scope.project_id),
            action: &action,
            target_id,
            before: before.map(|r| audit::snapshot(&r.view())).transpose()?,
            after: after.map(|r| audit::snapshot(&r.view())).transpose()?,
            cascade,
        },
    )?;
    emit(tx, scope, &K::events(before, after)?)
}

/// Queues one delivery of each event for each active webhook of the project that subscribes to
/// it, in the change's transaction (`outbox`).
fn emit(tx: &mut Tx<'_>, scope: &ProjectScope, events: &[WebhookEvent]) -> ApiResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let subscriptions = outbox::subscriptions(tx, &scope.key(outbox::SUBSCRIBED, b""))?;
    for event in events {
        for subscription in subscriptions.iter().filter(|s| s.wants(event.name)) {
            outbox::enqueue(
                tx,
                &scope.org_id,
                &scope.project_id,
                &subscription.webhook_id,
                event,
            )?;
        }
    }
    Ok(())
}
