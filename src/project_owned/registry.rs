//! The registry of project-owned kinds, and what walks it: the project cascade. A kind is
//! written against the generic machinery of this module's parent; the registry is the one
//! place that names every kind.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use crate::codec;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org_owned::audit::{self, Actor};
use crate::org_owned::project;
use crate::project_owned::{
    IndexEntry, Kind, agent, beacon, contact, conversation, form, form_submission, integration, kb,
    message, outbox, webhook, webhook_delivery, widget,
};
use crate::store::{Reader, Store, Tx, layout, tables};

/// What the store knows of a kind without its type: one entry per kind in `KINDS`.
#[derive(Debug)]
pub struct KindInfo {
    pub tag: u8,
    pub index_tags: &'static [u8],
    pub plural: &'static str,
    pub singular: &'static str,
    pub id_prefix: &'static str,
    pub not_found: ErrorCode,
    pub public: bool,
    /// Decodes a stored record of this kind and derives its index entries (consistency checks).
    pub index_of: fn(&[u8]) -> ApiResult<Vec<IndexEntry>>,
    /// Decodes a stored record of this kind into its wire view (exports, model checks).
    pub view_of: fn(&[u8]) -> ApiResult<serde_json::Value>,
}

impl KindInfo {
    pub const fn of<K: Kind>() -> KindInfo {
        KindInfo {
            tag: K::TAG,
            index_tags: K::INDEX_TAGS,
            plural: K::PLURAL,
            singular: K::SINGULAR,
            id_prefix: K::ID_PREFIX,
            not_found: K::NOT_FOUND,
            public: K::PUBLIC,
            index_of: decode_and_index::<K>,
            view_of: decode_and_view::<K>,
        }
    }
}

fn decode_and_index<K: Kind>(bytes: &[u8]) -> ApiResult<Vec<IndexEntry>> {
    codec::decode::<K>(bytes)?.index()
}

fn decode_and_view<K: Kind>(bytes: &[u8]) -> ApiResult<serde_json::Value> {
    audit::snapshot(&codec::decode::<K>(bytes)?.view())
}

/// The registry of project-owned kinds: cascade counts, the tag checks and the authorization
/// test walk it. A new kind adds its module above and its line here.
pub const KINDS: &[KindInfo] = &[
    KindInfo::of::<conversation::Conversation>(),
    KindInfo::of::<message::Message>(),
    KindInfo::of::<contact::Contact>(),
    KindInfo::of::<kb::Article>(),
    KindInfo::of::<integration::Integration>(),
    KindInfo::of::<webhook::Webhook>(),
    KindInfo::of::<webhook_delivery::WebhookDelivery>(),
    KindInfo::of::<widget::WidgetConfig>(),
    KindInfo::of::<agent::AgentSettings>(),
    KindInfo::of::<agent::AgentUsage>(),
    KindInfo::of::<form::Form>(),
    KindInfo::of::<form_submission::FormSubmission>(),
    KindInfo::of::<beacon::Beacon>(),
];

/// The kind whose records carry `tag`; `None` for index entries.
pub fn kind_of_tag(tag: u8) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.tag == tag)
}

/// Deletes a project and everything it owns, in `tx`: one range delete over the project's
/// prefix of the owned table, counting records per kind, its pending webhook deliveries (the
/// same prefix of the outbox), then the project's own rows and its audit entry with those
/// counts. Its cost follows the project's size, not the store's.
pub fn delete_project(
    tx: &mut Tx<'_>,
    actor: &Actor,
    org_id: &str,
    project_id: &str,
) -> ApiResult<Vec<(String, u64)>> {
    let project = project::resolve(tx, org_id, project_id)?;
    let prefix = layout::project_prefix(&project.org_id, &project.id);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut public_ids: Vec<Vec<u8>> = Vec::new();
    tx.remove_range(tables::OWNED, layout::prefix_range(&prefix), |key| {
        if let Some(kind) = key.get(prefix.len()).and_then(|&tag| kind_of_tag(tag)) {
            *counts.entry(kind.plural).or_default() += 1;
            if kind.public {
                public_ids.push(key[prefix.len() + 1..].to_vec());
            }
        }
    })?;
    for id in public_ids {
        tx.remove(tables::PUBLIC_IDS, &id)?;
    }
    outbox::drop_project(tx, &project.org_id, &project.id)?;
    let cascade: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(kind, n)| (kind.to_string(), n))
        .collect();
    project::delete(tx, actor, &project, cascade.clone())?;
    Ok(cascade)
}

/// The index layout this build writes: 1 added the filter postings and the trigrams of `q`.
/// A data file written with an older layout gets its entries built when it is opened.
pub const INDEX_VERSION: u64 = 1;
/// Its key in the store's `meta` table.
pub const INDEX_VERSION_KEY: &str = "index_version";
/// Records indexed per write transaction while building.
const BUILD_BATCH: usize = 2_000;
/// Records between two progress lines.
const PROGRESS_EVERY: u64 = 100_000;

/// Brings a data file's index entries up to `INDEX_VERSION`, once: for every record of every
/// kind of `KINDS` in every project, writes the key entries its kind's `index` implies (writing
/// an existing entry again changes nothing), in batches of `BUILD_BATCH` records per
/// transaction, then records the version. An interrupted build is redone at the next open.
/// Counters are left alone: they are sums kept since before version 1, and adding a record's
/// share again would count it twice; a version that changes counters must clear them first.
pub fn build_indexes(store: &Store) -> ApiResult<()> {
    // One transaction decides: up to date, nothing to index (a new file), or which projects.
    let pending = store.write_blocking(|tx| {
        let version = tx.meta(INDEX_VERSION_KEY)?.unwrap_or(0);
        if version >= INDEX_VERSION {
            return Ok(None);
        }
        let mut projects = Vec::new();
        tx.scan(
            tables::PROJECTS,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            &mut |key, _| {
                projects.push(key.to_vec());
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if projects.is_empty() {
            tx.set_meta(INDEX_VERSION_KEY, INDEX_VERSION)?;
            return Ok(None);
        }
        Ok(Some((version, projects)))
    })?;
    let Some((version, projects)) = pending else {
        return Ok(());
    };
    tracing::info!(
        from = version,
        to = INDEX_VERSION,
        projects = projects.len(),
        "building index entries"
    );
    let mut records = 0u64;
    for prefix in &projects {
        for kind in KINDS {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let (prefix, start) = (prefix.clone(), after.clone());
                let (count, last) = store
                    .write_blocking(move |tx| index_batch(tx, &prefix, kind, start.as_deref()))?;
                let before = records;
                records += count;
                if records / PROGRESS_EVERY > before / PROGRESS_EVERY {
                    tracing::info!(records, "building index entries");
                }
                match last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
    }
    store.write_blocking(|tx| tx.set_meta(INDEX_VERSION_KEY, INDEX_VERSION))?;
    tracing::info!(records, version = INDEX_VERSION, "index entries built");
    Ok(())
}

/// Writes the key entries of at most `BUILD_BATCH` records of `kind` under `project` (the
/// project prefix), after the record key `after`. Returns how many it indexed, and the last
/// key when there may be more.
fn index_batch(
    tx: &mut Tx<'_>,
    project: &[u8],
    kind: &KindInfo,
    after: Option<&[u8]>,
) -> ApiResult<(u64, Option<Vec<u8>>)> {
    let mut records_prefix = project.to_vec();
    records_prefix.push(kind.tag);
    let (mut start, end) = layout::prefix_range(&records_prefix);
    if let Some(after) = after {
        start = Bound::Excluded(after.to_vec());
    }
    // Records first: a table cannot be written while it is being scanned.
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    tx.scan(tables::OWNED, (start, end), false, &mut |key, value| {
        batch.push((key.to_vec(), value.to_vec()));
        Ok(if batch.len() == BUILD_BATCH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    for (_, value) in &batch {
        for entry in (kind.index_of)(value)? {
            if let IndexEntry::Key { tag, key, value } = entry {
                let mut full = project.to_vec();
                full.push(tag);
                full.extend(key);
                tx.put_raw(tables::OWNED, &full, &value)?;
            }
        }
    }
    let count = u64::try_from(batch.len()).map_err(ApiError::internal)?;
    let last = (batch.len() == BUILD_BATCH)
        .then(|| batch.pop().map(|(key, _)| key))
        .flatten();
    Ok((count, last))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::project_owned::FIRST_INDEX_TAG;

    #[test]
    fn registry_tags_and_names_are_distinct() {
        let mut tags: Vec<u8> = Vec::new();
        for kind in KINDS {
            assert!(kind.tag < FIRST_INDEX_TAG, "{kind:?}");
            assert!(
                kind.index_tags.iter().all(|t| *t >= FIRST_INDEX_TAG),
                "{kind:?}"
            );
            tags.push(kind.tag);
            tags.extend(kind.index_tags);
        }
        let distinct: HashSet<u8> = tags.iter().copied().collect();
        assert_eq!(distinct.len(), tags.len(), "a tag is used twice: {tags:?}");
        for name in [
            |k: &KindInfo| k.plural,
            |k: &KindInfo| k.singular,
            |k: &KindInfo| k.id_prefix,
        ] {
            let names: HashSet<&str> = KINDS.iter().map(name).collect();
            assert_eq!(names.len(), KINDS.len());
        }
    }
}
