//! The registry of project-owned kinds, and what walks it: the project cascade. A kind is
//! written against the generic machinery of this module's parent; the registry is the one
//! place that names every kind.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use crate::codec;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::{self, OrgId, ProjectId};
use crate::org_owned::audit::{self, Actor};
use crate::org_owned::project;
use crate::project_owned::routed::{Archivable, Endpoints, Routed, RoutedVisitor};
use crate::project_owned::webhooks::{delivery_log, outbox, webhook};
use crate::project_owned::{
    FIRST_INDEX_TAG, IndexEntry, Kind, agent, beacon, contact, conversation, form, form_submission,
    integration, kb, message, saved_reply, widget,
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
    /// The HTTP contract of a kind served by the generic routes (`Routed`).
    pub endpoints: Option<Endpoints>,
    /// Whether its records are archived rather than deleted (`Archivable`).
    pub archivable: bool,
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
            endpoints: None,
            archivable: false,
        }
    }

    pub const fn routed<K: Routed>() -> KindInfo {
        KindInfo {
            endpoints: Some(K::ENDPOINTS),
            ..KindInfo::of::<K>()
        }
    }

    pub const fn archivable<K: Archivable>() -> KindInfo {
        KindInfo {
            archivable: true,
            ..KindInfo::routed::<K>()
        }
    }
}

fn decode_and_index<K: Kind>(bytes: &[u8]) -> ApiResult<Vec<IndexEntry>> {
    codec::decode::<K>(bytes)?.index()
}

fn decode_and_view<K: Kind>(bytes: &[u8]) -> ApiResult<serde_json::Value> {
    audit::snapshot(&codec::decode::<K>(bytes)?.view())
}

/// Declares the registry, one row per kind: `KINDS`, and `visit_routed`, which hands the kinds
/// served by the generic routes to a visitor with their types (`routed`, `archivable`).
macro_rules! registry {
    (@info $kind:ty) => { KindInfo::of::<$kind>() };
    (@info $kind:ty, $served:ident) => { KindInfo::$served::<$kind>() };
    (@visit $visitor:ident, $kind:ty) => {};
    (@visit $visitor:ident, $kind:ty, $served:ident) => { $visitor.$served::<$kind>() };
    ($($kind:ty $(=> $served:ident)?,)*) => {
        /// The registry of project-owned kinds: cascade counts, the tag checks, the router, the
        /// OpenAPI document and the authorization test walk it. A new kind adds its module to
        /// `project_owned` and its row here.
        pub const KINDS: &[KindInfo] = &[$(registry!(@info $kind $(, $served)?),)*];

        /// Hands every kind served by the generic routes to `visitor`, in registry order.
        pub fn visit_routed(visitor: &mut impl RoutedVisitor) {
            $(registry!(@visit visitor, $kind $(, $served)?);)*
        }
    };
}

registry! {
    conversation::Conversation => routed,
    message::Message,
    contact::Contact => routed,
    kb::Article => routed,
    integration::Integration,
    webhook::Webhook => routed,
    delivery_log::WebhookDelivery,
    widget::WidgetConfig,
    agent::AgentSettings,
    agent::AgentUsage,
    form::Form => archivable,
    form_submission::FormSubmission,
    beacon::Beacon => archivable,
    saved_reply::SavedReply => routed,
}

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
    org_id: &OrgId,
    project_id: &ProjectId,
) -> ApiResult<Vec<(String, u64)>> {
    let project = project::resolve(tx, org_id, project_id)?;
    let prefix = layout::project_prefix(&project.org_id, &project.id);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_tag: BTreeMap<u8, u64> = BTreeMap::new();
    let mut public_ids: Vec<Vec<u8>> = Vec::new();
    tx.remove_range(tables::OWNED, layout::prefix_range(&prefix), |key| {
        if let Some(kind) = key.get(prefix.len()).and_then(|&tag| kind_of_tag(tag)) {
            *counts.entry(kind.plural).or_default() += 1;
            *by_tag.entry(kind.tag).or_default() += 1;
            if kind.public {
                public_ids.push(key[prefix.len() + 1..].to_vec());
            }
        }
    })?;
    for id in public_ids {
        tx.remove(tables::PUBLIC_IDS, &id)?;
    }
    for (tag, removed) in by_tag {
        super::change_record_count(tx, tag, removed, false)?;
    }
    outbox::drop_project(tx, &project.org_id, &project.id)?;
    let cascade: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(kind, n)| (kind.to_string(), n))
        .collect();
    project::delete(tx, actor, &project, cascade.clone())?;
    Ok(cascade)
}

/// What a delete of the project would remove: its records per kind (plural name, count), the
/// kinds it holds none of left out, as `delete_project` reports them. One pass over each kind's
/// records under the project's prefix, index entries skipped: its cost follows the project's
/// record count, below the delete's own.
pub fn project_contents(
    reader: &impl Reader,
    org_id: &OrgId,
    project_id: &ProjectId,
) -> ApiResult<Vec<(String, u64)>> {
    let project = project::resolve(reader, org_id, project_id)?;
    let prefix = layout::project_prefix(&project.org_id, &project.id);
    let mut contents = BTreeMap::new();
    for kind in KINDS {
        let mut count = 0u64;
        let records = [prefix.as_slice(), &[kind.tag]].concat();
        reader.scan(
            tables::OWNED,
            layout::prefix_range(&records),
            false,
            &mut |_, _| {
                count += 1;
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if count > 0 {
            contents.insert(kind.plural, count);
        }
    }
    Ok(contents
        .into_iter()
        .map(|(kind, n)| (kind.to_string(), n))
        .collect())
}

/// The key of `tables::COUNTS` saying that its counts cover every record: a store written
/// before the counts existed has records they do not cover.
const COUNTED: &[u8] = b"counted";

/// How many records of each kind the store holds (plural name, count), read from the counts
/// the write path keeps: one short read, whatever the store's size.
pub fn record_counts(reader: &impl Reader) -> ApiResult<Vec<(&'static str, u64)>> {
    KINDS
        .iter()
        .map(|kind| Ok((kind.plural, reader.count(&[kind.tag])?)))
        .collect()
}

/// Counts every record once, on a store whose counts do not cover them all yet (one written
/// before they existed): a scan of the owned table's keys, in one write transaction at start-up.
/// Afterwards the write path keeps the counts. Returns whether it counted.
pub fn count_records_once(tx: &mut Tx<'_>) -> ApiResult<bool> {
    if tx.get_raw(tables::COUNTS, COUNTED)?.is_some() {
        return Ok(false);
    }
    let mut by_tag: BTreeMap<u8, u64> = BTreeMap::new();
    // Every owned key is `org_id ++ project_id ++ tag ++ …`; tags below FIRST_INDEX_TAG are
    // records.
    let tag_at = 2 * ids::ID_LEN;
    tx.scan(
        tables::OWNED,
        (Bound::Unbounded, Bound::Unbounded),
        false,
        &mut |key, _| {
            if let Some(&tag) = key.get(tag_at)
                && tag < FIRST_INDEX_TAG
            {
                *by_tag.entry(tag).or_default() += 1;
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for kind in KINDS {
        let count = by_tag.get(&kind.tag).copied().unwrap_or(0);
        tx.set_count(&[kind.tag], count)?;
    }
    tx.put_raw(tables::COUNTS, COUNTED, &[1])?;
    Ok(true)
}

/// The index layout this build writes: 1 added the filter postings and the trigrams of `q`; 2
/// the `public_ids` entries of beacons, which became a public kind. A data file written with an
/// older layout gets its entries built when it is opened.
pub const INDEX_VERSION: u64 = 2;
/// Its key in the store's `meta` table.
pub const INDEX_VERSION_KEY: &str = "index_version";
/// Records indexed per write transaction while building.
const BUILD_BATCH: usize = 2_000;
/// Records between two progress lines.
const PROGRESS_EVERY: u64 = 100_000;

/// Brings a data file's index entries up to `INDEX_VERSION`, once: for every record of every
/// kind of `KINDS` in every project, writes the key entries its kind's `index` implies and, for
/// a public kind, its `public_ids` entry (writing an existing entry again changes nothing), in
/// batches of `BUILD_BATCH` records per transaction, then records the version. From version 1,
/// only the public kinds are walked: version 2 added nothing else. An interrupted build is
/// redone at the next open.
/// Counters are left alone: they are sums kept since before version 1, and adding a record's
/// share again would count it twice; a version that changes counters must clear them first.
/// It runs at start-up, so below `store.min_free_mb` too (`write_blocking_freeing`): the
/// server must start, if only to let an operator make room.
pub fn build_indexes(store: &Store) -> ApiResult<()> {
    // One transaction decides: up to date, nothing to index (a new file), or which projects.
    let pending = store.write_blocking_freeing(|tx| {
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
        for kind in KINDS.iter().filter(|kind| version < 1 || kind.public) {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let (prefix, start) = (prefix.clone(), after.clone());
                let (count, last) = store.write_blocking_freeing(move |tx| {
                    index_batch(tx, &prefix, kind, start.as_deref())
                })?;
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
    store.write_blocking_freeing(|tx| tx.set_meta(INDEX_VERSION_KEY, INDEX_VERSION))?;
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
    for (key, value) in &batch {
        if kind.public {
            tx.put_raw(tables::PUBLIC_IDS, &key[project.len() + 1..], project)?;
        }
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

    use serde_json::json;

    use super::*;
    use crate::org_owned::org::{self, OrgCreate};
    use crate::org_owned::project::{ProjectCreate, Slug};
    use crate::project_owned::conversation::{Conversation, ConversationCreate};
    use crate::project_owned::form::{Form, FormInput};
    use crate::project_owned::message::{self, MessageCreate};
    use crate::project_owned::{self, Id, ProjectScope, Routed};
    use crate::store::Store;

    /// The counts as a scan of every record finds them, by plural.
    fn scanned(store: &Store) -> Vec<(&'static str, u64)> {
        store
            .read_blocking(|rx| {
                let mut by_tag: BTreeMap<u8, u64> = BTreeMap::new();
                rx.scan(
                    tables::OWNED,
                    (Bound::Unbounded, Bound::Unbounded),
                    false,
                    &mut |key, _| {
                        let tag = key[2 * ids::ID_LEN];
                        if tag < FIRST_INDEX_TAG {
                            *by_tag.entry(tag).or_default() += 1;
                        }
                        Ok(ControlFlow::Continue(()))
                    },
                )?;
                Ok(KINDS
                    .iter()
                    .map(|k| (k.plural, by_tag.get(&k.tag).copied().unwrap_or(0)))
                    .collect())
            })
            .unwrap()
    }

    fn counted(store: &Store) -> Vec<(&'static str, u64)> {
        store.read_blocking(record_counts).unwrap()
    }

    fn count_of(counts: &[(&'static str, u64)], plural: &str) -> u64 {
        counts.iter().find(|(k, _)| *k == plural).map_or(0, |c| c.1)
    }

    /// A project with `conversations` conversations of two messages each, and a form.
    fn fill(store: &Store, org_id: &OrgId, slug: &str, conversations: usize) -> ProjectId {
        let org_id = org_id.clone();
        let slug = slug.to_string();
        store
            .write_blocking(move |tx| {
                let actor = Actor::master(None);
                let input = ProjectCreate {
                    name: slug.clone(),
                    slug: Slug::try_from(slug).unwrap(),
                    domain: None,
                };
                let project = project::create(tx, &actor, &org_id, input)?;
                let scope = ProjectScope::resolve(tx, &org_id, &project.id)?;
                for _ in 0..conversations {
                    let input = ConversationCreate::from_json(json!({}))?;
                    let conversation = Conversation::create(tx, &scope, &actor, input)?;
                    for _ in 0..2 {
                        let input = MessageCreate::from_json(json!({"content": "hi"}))?;
                        message::post(tx, &scope, &actor, &Id::of(&conversation), input)?;
                    }
                }
                let input = FormInput::create_from_json(json!({"name": "Contact"}))?;
                Form::create(tx, &scope, &actor, input)?;
                Ok(project.id)
            })
            .unwrap()
    }

    #[test]
    fn record_counts_follow_creates_deletes_and_project_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("counts.redb")).unwrap();
        let org_id = store
            .write_blocking(|tx| {
                let input = OrgCreate {
                    name: "Acme".into(),
                };
                Ok(org::create(tx, &Actor::master(None), input)?.id)
            })
            .unwrap();
        let first = fill(&store, &org_id, "first", 3);
        fill(&store, &org_id, "second", 2);
        let counts = counted(&store);
        assert_eq!(counts, scanned(&store));
        assert_eq!(count_of(&counts, "conversations"), 5);
        assert_eq!(count_of(&counts, "messages"), 10);
        assert_eq!(count_of(&counts, "forms"), 2);

        // One record deleted through the generic path, then a whole project.
        let (o, p) = (org_id.clone(), first.clone());
        store
            .write_blocking(move |tx| {
                let scope = ProjectScope::resolve(tx, &o, &p)?;
                let forms: Vec<Form> = tx.scan_prefix(tables::OWNED, &scope.key(Form::TAG, b""))?;
                project_owned::remove(tx, &scope, &Actor::master(None), &forms[0])
            })
            .unwrap();
        assert_eq!(count_of(&counted(&store), "forms"), 1);
        let o = org_id.clone();
        store
            .write_blocking(move |tx| delete_project(tx, &Actor::master(None), &o, &first))
            .unwrap();
        let counts = counted(&store);
        assert_eq!(counts, scanned(&store));
        assert_eq!(count_of(&counts, "conversations"), 2);
        assert_eq!(count_of(&counts, "messages"), 4);
        assert_eq!(count_of(&counts, "forms"), 1);

        // A store from before the counts: they are made once from a scan, then kept.
        store
            .write_blocking(|tx| {
                for kind in KINDS {
                    tx.remove(tables::COUNTS, &[kind.tag])?;
                }
                tx.remove(tables::COUNTS, COUNTED)?;
                Ok(())
            })
            .unwrap();
        assert!(counted(&store).iter().all(|(_, n)| *n == 0));
        assert!(store.write_blocking(count_records_once).unwrap());
        assert_eq!(counted(&store), scanned(&store));
        assert!(!store.write_blocking(count_records_once).unwrap());
        fill(&store, &org_id, "third", 1);
        assert_eq!(counted(&store), scanned(&store));
    }

    /// Beacons became public in index version 2: a version-1 file gets their `public_ids`
    /// entries when it is opened, and only the public kinds are walked for it.
    #[test]
    fn a_version_1_file_gets_the_public_ids_of_its_beacons() {
        use crate::project_owned::beacon::{Beacon, BeaconInput};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v1.redb")).unwrap();
        let beacon_id = store
            .write_blocking(|tx| {
                let actor = Actor::master(None);
                let org = org::create(tx, &actor, OrgCreate { name: "O".into() })?;
                let input = ProjectCreate {
                    name: "P".into(),
                    slug: Slug::try_from("p1".to_string()).unwrap(),
                    domain: None,
                };
                let project = project::create(tx, &actor, &org.id, input)?;
                let scope = ProjectScope::resolve(tx, &org.id, &project.id)?;
                let form = Form::create(
                    tx,
                    &scope,
                    &actor,
                    FormInput::create_from_json(json!({"name": "F"}))?,
                )?;
                let input = BeaconInput::create_from_json(json!({"form_id": form.id}))?;
                let beacon = Beacon::create(tx, &scope, &actor, input)?;
                // As a version-1 build left it: no entry for the beacon.
                tx.remove(tables::PUBLIC_IDS, beacon.id.as_bytes())?;
                tx.set_meta(INDEX_VERSION_KEY, 1)?;
                Ok(Id::of(&beacon))
            })
            .unwrap();
        let found = |store: &Store| {
            let id = beacon_id.clone();
            store
                .read_blocking(move |rx| project_owned::find_public::<Beacon>(rx, &id))
                .unwrap()
                .is_some()
        };
        assert!(!found(&store));
        build_indexes(&store).unwrap();
        assert!(found(&store));
        let version = store
            .write_blocking(|tx| tx.meta(INDEX_VERSION_KEY))
            .unwrap();
        assert_eq!(version, Some(INDEX_VERSION));
    }

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
