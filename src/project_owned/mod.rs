//! Project-owned resources, on one generic implementation. Each kind is a small declaration (a
//! `Kind` impl: tag, id prefix, not-found code, view, index entries); storage, look-up, listing
//! with cursor pagination, index maintenance and audit entries are here, once. The project
//! cascade walks the kind registry and lives beside it (`registry::delete_project`).
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
pub mod search;
pub mod singleton;
pub mod trigram;
pub mod values;
pub mod webhooks;
pub mod widget;

use std::collections::HashSet;
use std::ops::{Bound, ControlFlow};

use serde::Serialize;

use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::{self, OrgId, ProjectId};
use crate::org_owned::audit::{self, Actor, Event};
use crate::org_owned::project;
use crate::pagination::{Cursor, Page};
use crate::project_owned::webhooks::outbox::{self, Event as WebhookEvent};
use crate::store::{Reader, Tx, layout, tables};

pub use routed::{Archivable, Filter, InputSettings, Listing, Routed};

/// A project-owned kind of record.
pub trait Kind: Record + Send + 'static {
    /// Tag byte of its records in the owned table, below `FIRST_INDEX_TAG`.
    const TAG: u8;
    /// Tag bytes of its index entries and counters, from `FIRST_INDEX_TAG` up.
    const INDEX_TAGS: &'static [u8];
    /// Name in cascade counts, e.g. `conversations`.
    const PLURAL: &'static str;
    /// Name in audit actions (`conversation.created`) and path parameters
    /// (`{conversation_id}`).
    const SINGULAR: &'static str;
    /// Prefix of its ids (docs/design.md), e.g. `con_`.
    const ID_PREFIX: &'static str;
    const NOT_FOUND: ErrorCode;
    /// Whether public endpoints find its records by id alone, without their project (a form's
    /// `POST /api/f/{formId}`, a beacon's `GET /api/beacons/{beaconId}/public`): each such record
    /// keeps a `public_ids` entry.
    const PUBLIC: bool = false;
    type View: Serialize;

    fn id(&self) -> &str;
    fn view(&self) -> Self::View;
    /// The index entries and counters that this record contributes.
    fn index(&self) -> ApiResult<Vec<IndexEntry>>;

    /// The webhook events (docs/api/webhooks.md) that a change of a record of this kind fires, from
    /// the record before and after it (no before: created; no after: deleted). The generic write
    /// path queues them with the change's audit entry, so no handler fires one by hand; most
    /// kinds fire none.
    fn events(_before: Option<&Self>, _after: Option<&Self>) -> ApiResult<Vec<WebhookEvent>> {
        Ok(Vec::new())
    }
}

pub const FIRST_INDEX_TAG: u8 = 0x40;

/// A fresh id of kind `K`.
pub fn new_id<K: Kind>() -> String {
    ids::generate(K::ID_PREFIX)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexEntry {
    /// `tag ++ key` → `value`.
    Key {
        tag: u8,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// `tag ++ key` holds the sum of `amount` over all records.
    Counter { tag: u8, key: Vec<u8>, amount: u64 },
}

impl IndexEntry {
    /// An ordering entry: `tag ++ group ++ sort (u64 BE) ++ id`, listed by `list`.
    pub fn order(tag: u8, group: &[u8], sort: u64, id: &str) -> IndexEntry {
        IndexEntry::Key {
            tag,
            key: order_key(group, sort, id),
            value: Vec::new(),
        }
    }

    /// A look-up entry: `tag ++ len(text) ++ text ++ seq ++ id`, found oldest first with
    /// `ProjectScope::first`.
    pub fn lookup(tag: u8, text: &str, seq: u64, id: &str) -> IndexEntry {
        IndexEntry::order(tag, &lookup_prefix(text), seq, id)
    }
}

fn order_key(group: &[u8], sort: u64, id: &str) -> Vec<u8> {
    let mut key = group.to_vec();
    key.extend_from_slice(&sort.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// Variable-length text is length-prefixed so that one text is never a prefix of another's key.
pub fn lookup_prefix(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut key = len.to_be_bytes().to_vec();
    key.extend_from_slice(&bytes[..usize::from(len)]);
    key
}

/// A project resolved for the calling key: the prefix everything it owns is stored under.
#[derive(Debug, Clone)]
pub struct ProjectScope {
    pub org_id: OrgId,
    pub project_id: ProjectId,
    prefix: Vec<u8>,
}

impl ProjectScope {
    /// docs/administration.md: unknown → 404 `PROJECT_NOT_FOUND`, foreign → 403
    /// `API_KEY_PROJECT_MISMATCH`.
    pub fn resolve(
        reader: &impl Reader,
        key_org: &OrgId,
        project_id: &ProjectId,
    ) -> ApiResult<ProjectScope> {
        let found = project::resolve(reader, key_org, project_id)?;
        Ok(ProjectScope {
            prefix: layout::project_prefix(&found.org_id, &found.id),
            org_id: found.org_id,
            project_id: found.id,
        })
    }

    pub fn key(&self, tag: u8, rest: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 1 + rest.len());
        key.extend_from_slice(&self.prefix);
        key.push(tag);
        key.extend_from_slice(rest);
        key
    }

    /// The id of the oldest record with look-up entry `tag ++ len(text) ++ text`.
    pub fn first(&self, reader: &impl Reader, tag: u8, text: &str) -> ApiResult<Option<String>> {
        let prefix = self.key(tag, &lookup_prefix(text));
        let mut found = None;
        reader.scan(
            tables::OWNED,
            layout::prefix_range(&prefix),
            false,
            &mut |key, _| {
                // After the prefix: the record's seq (8 bytes), then its id.
                found = key
                    .get(prefix.len() + 8..)
                    .map(|id| String::from_utf8_lossy(id).into_owned());
                Ok(ControlFlow::Break(()))
            },
        )?;
        Ok(found)
    }

    /// Reads a counter kept by `IndexEntry::Counter`.
    pub fn counter(&self, reader: &impl Reader, tag: u8, name: &[u8]) -> ApiResult<u64> {
        Ok(reader
            .get_raw(tables::OWNED, &self.key(tag, name))?
            .map_or(0, |v| decode_u64(&v)))
    }
}

fn decode_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// A record of a public kind found by its id alone, with the scope of its project. Records
/// live only under existing projects, and the cascade removes their entries with them.
pub fn find_public<K: Kind>(
    reader: &impl Reader,
    id: &str,
) -> ApiResult<Option<(ProjectScope, K)>> {
    if !K::PUBLIC || !ids::has_shape(K::ID_PREFIX, id) {
        return Ok(None);
    }
    let Some(prefix) = reader.get_raw(tables::PUBLIC_IDS, id.as_bytes())? else {
        return Ok(None);
    };
    let (org_id, project_id) = prefix
        .split_at_checked(ids::ID_LEN)
        .and_then(|(o, p)| OrgId::from_bytes(o).zip(ProjectId::from_bytes(p)))
        .ok_or_else(|| ApiError::internal(format!("malformed public id entry of {id}")))?;
    let scope = ProjectScope {
        org_id,
        project_id,
        prefix,
    };
    Ok(find::<K>(reader, &scope, id)?.map(|record| (scope, record)))
}

pub fn find<K: Kind>(reader: &impl Reader, scope: &ProjectScope, id: &str) -> ApiResult<Option<K>> {
    if !ids::has_shape(K::ID_PREFIX, id) {
        return Ok(None);
    }
    reader.get(tables::OWNED, &scope.key(K::TAG, id.as_bytes()))
}

/// The record, or 404 with the kind's own code: an id of another project is not found either.
pub fn get<K: Kind>(reader: &impl Reader, scope: &ProjectScope, id: &str) -> ApiResult<K> {
    find(reader, scope, id)?.ok_or_else(|| not_found::<K>())
}

pub fn not_found<K: Kind>() -> ApiError {
    let mut name = K::SINGULAR.replace('_', " ");
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    ApiError::new(K::NOT_FOUND, format!("{name} not found"))
}

/// The record of kind `K` whose look-up entry under `tag` holds `text`, for a text that is
/// unique within a project (an integration's provider): one short range read, then the record.
pub fn find_by<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    tag: u8,
    text: &str,
) -> ApiResult<Option<K>> {
    let Some(id) = scope.first(reader, tag, text)? else {
        return Ok(None);
    };
    find(reader, scope, &id)?
        .map(Some)
        .ok_or_else(|| ApiError::internal(format!("look-up entry without record: {id}")))
}

impl ProjectScope {
    /// The server's project when it holds exactly one (public look-ups by a form's slug).
    pub fn the_only_one(reader: &impl Reader) -> ApiResult<Option<ProjectScope>> {
        Ok(
            project::the_only_one(reader)?.map(|(org_id, project_id)| ProjectScope {
                prefix: layout::project_prefix(&org_id, &project_id),
                org_id,
                project_id,
            }),
        )
    }

    /// A project for the master key, which reaches every organisation: unknown → 404
    /// `PROJECT_NOT_FOUND`.
    pub fn resolve_any(reader: &impl Reader, project_id: &ProjectId) -> ApiResult<ProjectScope> {
        let org_id = project::owner(reader, project_id)?;
        ProjectScope::resolve(reader, &org_id, project_id)
    }
}

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

fn write_record<K: Kind>(
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
fn audit_change<K: Kind>(
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

/// Which ordering index to walk, within which group (e.g. one conversation's messages).
pub struct Order<'a> {
    pub tag: u8,
    pub group: &'a [u8],
    pub descending: bool,
}

/// An index group whose keys are `tag ++ group ++ sort (u64 BE) ++ id`, ordered like an
/// ordering index: the records with one value of a filtered field (or one trigram), in the
/// list's order. The same `(sort, id)` positions in every group of one ordering let a list
/// intersect them and resume at a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postings {
    pub tag: u8,
    pub group: Vec<u8>,
}

impl Postings {
    /// The group of field `field` (a byte the kind picks) holding `value`.
    pub fn field(tag: u8, field: u8, value: &str) -> Postings {
        Postings {
            tag,
            group: field_group(field, value),
        }
    }
}

fn field_group(field: u8, value: &str) -> Vec<u8> {
    let mut group = vec![field];
    group.extend(lookup_prefix(value));
    group
}

impl IndexEntry {
    /// The entry of a record in the postings of `field` = `value`, ordered by `sort`.
    pub fn field(tag: u8, field: u8, value: &str, sort: u64, id: &str) -> IndexEntry {
        IndexEntry::order(tag, &field_group(field, value), sort, id)
    }

    /// A record's postings of each `(field, value)`, kept in both orderings so that every
    /// filter serves either `sort`: under `tags.0` by creation (`seq`), under `tags.1` by last
    /// update (`updated_seq`).
    pub fn fields_in_both_orders(
        tags: (u8, u8),
        fields: &[(u8, &str)],
        (seq, updated_seq): (u64, u64),
        id: &str,
    ) -> Vec<IndexEntry> {
        fields
            .iter()
            .flat_map(|&(field, value)| {
                [
                    IndexEntry::field(tags.0, field, value, seq, id),
                    IndexEntry::field(tags.1, field, value, updated_seq, id),
                ]
            })
            .collect()
    }
}

/// What a filtered list walks and how far one page may go.
pub struct Walk<'a> {
    pub order: Order<'a>,
    /// Postings in `order`'s positions whose intersection holds every record that can match;
    /// empty: the ordering itself is walked.
    pub postings: Vec<Postings>,
    /// Most index entries the page reads before it returns what it has.
    pub budget: u64,
}

/// A page of a walk, and whether the walk spent its whole budget: the page may then have ended
/// early, which a caller that tried a small budget first takes as "run it again with more".
pub struct Walked<K> {
    pub page: Page<K>,
    pub spent: bool,
}

/// One page in `order`, after `cursor`, of the records that pass `filter`. Filters apply
/// before paging, so `limit` counts matching records. Unbounded: for lists whose size is
/// bounded otherwise (plain lists, recent deliveries, a transcript).
pub fn list<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    order: Order<'_>,
    cursor: Option<&Cursor>,
    limit: usize,
    filter: impl Fn(&K) -> bool,
) -> ApiResult<Page<K>> {
    let walk = Walk {
        order,
        postings: Vec::new(),
        budget: u64::MAX,
    };
    Ok(list_within(reader, scope, &walk, cursor, limit, filter)?.page)
}

/// Entries read from each posting list to judge how sparse it is.
const SAMPLE: usize = 8;
/// The most posting lists one page intersects (the sparsest of those a filter names).
const MOST_INTERSECTED: usize = 3;

/// Why a page ended.
enum Stop {
    /// The walk reached the end: no cursor.
    End,
    /// Another match exists past the page: resume after the last decided position.
    Resume,
    /// The budget ran out: resume after the last decided position.
    Spent,
}

/// One page of the records at the positions present in every posting list of `walk` (the
/// ordering when there are none), checked with `filter`. The lists are intersected by seeking
/// each to the others' next position (leapfrog), so the cost follows the rarest list and the
/// page, not the project. The page reads at most `walk.budget` index entries; when they run
/// out it returns what it found, with a cursor at the last position it decided, which the next
/// page resumes from (docs/api/README.md: a page may hold fewer than `limit` items).
pub fn list_within<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    walk: &Walk<'_>,
    cursor: Option<&Cursor>,
    limit: usize,
    filter: impl Fn(&K) -> bool,
) -> ApiResult<Walked<K>> {
    let lists: Vec<Vec<u8>> = if walk.postings.is_empty() {
        vec![scope.key(walk.order.tag, walk.order.group)]
    } else {
        walk.postings
            .iter()
            .map(|p| scope.key(p.tag, &p.group))
            .collect()
    };
    let descending = walk.order.descending;
    let mut walker = Walker {
        reader,
        scope,
        budget: walk.budget,
        decided: cursor.map(position_of),
        items: Vec::new(),
        limit,
        filter,
    };
    let lists = walker.sparsest(lists, descending)?;
    let stop = if let [list] = lists.as_slice() {
        walker.stream(list, descending)?
    } else {
        walker.leapfrog(&lists, descending)?
    };
    let next = match stop {
        Stop::End => None,
        Stop::Resume | Stop::Spent => Some(
            walker
                .decided
                .as_deref()
                .map(cursor_of)
                .ok_or_else(|| ApiError::internal("a page ended before deciding a position"))?,
        ),
    };
    Ok(Walked {
        page: Page {
            items: walker.items,
            next,
        },
        spent: matches!(stop, Stop::Spent),
    })
}

/// The state of one page's walk. A position is `sort (8 bytes) ++ id`, the tail of every key of
/// the lists it walks.
struct Walker<'r, R, K, F> {
    reader: &'r R,
    scope: &'r ProjectScope,
    budget: u64,
    /// Every position up to this one (in the walk's direction) is decided: returned, or known
    /// not to match.
    decided: Option<Vec<u8>>,
    items: Vec<K>,
    limit: usize,
    filter: F,
}

/// What deciding one candidate found.
enum Decision {
    Next,
    PageFull,
}

impl<R: Reader, K: Kind, F: Fn(&K) -> bool> Walker<'_, R, K, F> {
    /// Takes one index entry from the budget; false once it is spent.
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// Fetches the record at `position` and keeps it if it passes the filter.
    fn decide(&mut self, position: &[u8]) -> ApiResult<Decision> {
        let id = &position[8..];
        let record: K = self
            .reader
            .get(tables::OWNED, &self.scope.key(K::TAG, id))?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "index entry without record: {}",
                    String::from_utf8_lossy(id)
                ))
            })?;
        if (self.filter)(&record) {
            if self.items.len() == self.limit {
                return Ok(Decision::PageFull);
            }
            self.items.push(record);
        }
        self.decided = Some(position.to_vec());
        Ok(Decision::Next)
    }

    /// At most `MOST_INTERSECTED` of `lists`: those whose `SAMPLE`th entry after the cursor
    /// lies furthest from where the walk starts (the nearest first entry of any list), so a
    /// list whose entries sit together far away counts as sparse, as the seek that skips to
    /// them does; a list that ends within its sample counts as the sparsest. A dense list
    /// rarely rules a candidate out but costs a seek for each, and dropping one only widens
    /// the candidates, which the filter checks on the records. Kept whole when there are few
    /// lists or the samples would take more than a quarter of the budget.
    fn sparsest(&mut self, lists: Vec<Vec<u8>>, descending: bool) -> ApiResult<Vec<Vec<u8>>> {
        let cost = u64::try_from(SAMPLE * lists.len()).unwrap_or(u64::MAX);
        if lists.len() <= MOST_INTERSECTED || self.budget / 4 < cost {
            return Ok(lists);
        }
        let mut samples = Vec::with_capacity(lists.len());
        for list in lists {
            let range = after(&list, self.decided.as_deref(), false, descending);
            let mut sorts: Vec<u64> = Vec::with_capacity(SAMPLE);
            let reader = self.reader;
            reader.scan(tables::OWNED, range, descending, &mut |key, _| {
                self.budget -= 1;
                sorts.push(decode_u64(&tail_of(key, &list)?[..8]));
                Ok(if sorts.len() == SAMPLE {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })?;
            samples.push((sorts, list));
        }
        let firsts = samples
            .iter()
            .filter_map(|(sorts, _)| sorts.first().copied());
        let start = if descending {
            firsts.max()
        } else {
            firsts.min()
        }
        .unwrap_or(0);
        let mut spread: Vec<(u64, Vec<u8>)> = samples
            .into_iter()
            .map(|(sorts, list)| match sorts.last() {
                Some(last) if sorts.len() == SAMPLE => (start.abs_diff(*last), list),
                _ => (u64::MAX, list),
            })
            .collect();
        // Furthest first; equal spreads keep the kind's order.
        spread.sort_by_key(|(gap, _)| std::cmp::Reverse(*gap));
        spread.truncate(MOST_INTERSECTED);
        Ok(spread.into_iter().map(|(_, list)| list).collect())
    }

    /// One list: a single pass over its range after the cursor.
    fn stream(&mut self, list: &[u8], descending: bool) -> ApiResult<Stop> {
        let range = after(list, self.decided.as_deref(), false, descending);
        let mut stop = Stop::End;
        let mut failure = None;
        let reader = self.reader;
        reader.scan(tables::OWNED, range, descending, &mut |key, _| {
            if !self.spend() {
                stop = Stop::Spent;
                return Ok(ControlFlow::Break(()));
            }
            let position = match tail_of(key, list) {
                Ok(position) => position,
                Err(err) => {
                    failure = Some(err);
                    return Ok(ControlFlow::Break(()));
                }
            };
            match self.decide(position)? {
                Decision::Next => Ok(ControlFlow::Continue(())),
                Decision::PageFull => {
                    stop = Stop::Resume;
                    Ok(ControlFlow::Break(()))
                }
            }
        })?;
        failure.map_or(Ok(stop), Err)
    }

    /// Several lists: the next position of the first list after the decided one is a
    /// candidate; each other list is sought from it, and a list whose next position lies
    /// further makes that the candidate, until every list holds it.
    fn leapfrog(&mut self, lists: &[Vec<u8>], descending: bool) -> ApiResult<Stop> {
        loop {
            if !self.spend() {
                return Ok(Stop::Spent);
            }
            let Some(mut candidate) =
                self.seek(&lists[0], self.decided.clone(), false, descending)?
            else {
                return Ok(Stop::End);
            };
            let mut agreed = 1;
            let mut turn = 1;
            while agreed < lists.len() {
                if !self.spend() {
                    return Ok(Stop::Spent);
                }
                let Some(found) =
                    self.seek(&lists[turn], Some(candidate.clone()), true, descending)?
                else {
                    return Ok(Stop::End);
                };
                if found == candidate {
                    agreed += 1;
                } else {
                    // The candidate is missing from this list: it and everything before it
                    // is decided.
                    self.decided = Some(std::mem::replace(&mut candidate, found));
                    agreed = 1;
                }
                turn = (turn + 1) % lists.len();
            }
            if let Decision::PageFull = self.decide(&candidate)? {
                return Ok(Stop::Resume);
            }
        }
    }

    /// The first position of `list` after (or at, if `inclusive`) `from`.
    fn seek(
        &self,
        list: &[u8],
        from: Option<Vec<u8>>,
        inclusive: bool,
        descending: bool,
    ) -> ApiResult<Option<Vec<u8>>> {
        let range = after(list, from.as_deref(), inclusive, descending);
        let mut found = None;
        self.reader
            .scan(tables::OWNED, range, descending, &mut |key, _| {
                found = Some(tail_of(key, list).map(<[u8]>::to_vec));
                Ok(ControlFlow::Break(()))
            })?;
        found.transpose()
    }
}

/// The keys of `list` past `from` in the walk's direction (all of them without `from`).
fn after(list: &[u8], from: Option<&[u8]>, inclusive: bool, descending: bool) -> layout::KeyRange {
    let (mut start, mut end) = layout::prefix_range(list);
    if let Some(position) = from {
        let mut key = list.to_vec();
        key.extend_from_slice(position);
        let bound = if inclusive {
            Bound::Included(key)
        } else {
            Bound::Excluded(key)
        };
        if descending {
            end = bound
        } else {
            start = bound
        }
    }
    (start, end)
}

/// The position (`sort ++ id`) of a key of `list`.
fn tail_of<'k>(key: &'k [u8], list: &[u8]) -> ApiResult<&'k [u8]> {
    key.get(list.len()..)
        .filter(|tail| tail.len() > 8)
        .ok_or_else(|| ApiError::internal("malformed ordering key"))
}

fn position_of(cursor: &Cursor) -> Vec<u8> {
    let mut position = cursor.sort.to_be_bytes().to_vec();
    position.extend_from_slice(cursor.id.as_bytes());
    position
}

fn cursor_of(position: &[u8]) -> Cursor {
    let (sort, id) = position.split_at(8.min(position.len()));
    Cursor {
        sort: decode_u64(sort),
        id: String::from_utf8_lossy(id).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_keys_do_not_prefix_each_other() {
        let a = lookup_prefix("ab");
        let b = lookup_prefix("abc");
        assert!(!b.starts_with(&a));
    }
}
