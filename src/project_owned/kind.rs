//! What a project-owned kind declares (`Kind`: tag, id prefix, not-found code, view, index
//! entries) and the index entries it derives from a record: ordering, look-up and filter
//! postings. Storage and listing on top of them are in `write.rs` and `walker.rs`.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;

use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids;
use crate::project_owned::webhooks::outbox::Event as WebhookEvent;
use crate::store::Tx;
use crate::timestamp::Timestamp;

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
    /// Its wire form, built from a record: declared with `record_view!`, or a hand-written
    /// `From` where it is not the record's fields.
    type View: Serialize + for<'a> From<&'a Self>;

    fn id(&self) -> &str;
    fn view(&self) -> Self::View {
        Self::View::from(self)
    }
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

/// The id of a record of kind `K`, parsed once where it enters (a path segment, a request
/// body's field): text without the kind's id shape is no `Id` and so never reaches a key.
/// Records keep their ids as `String`; this type is for ids on their way to a look-up.
pub struct Id<K> {
    text: String,
    kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Id<K> {
    /// `None` when `text` lacks the kind's id shape: such an id names no record, so callers
    /// answer it with the kind's 404 where the look-up would have.
    pub fn parse(text: &str) -> Option<Id<K>> {
        ids::has_shape(K::ID_PREFIX, text).then(|| Id {
            text: text.to_string(),
            kind: PhantomData,
        })
    }

    /// `parse`, with the kind's 404 for text that names no record.
    pub fn parse_found(text: &str) -> ApiResult<Id<K>> {
        Id::parse(text).ok_or_else(not_found::<K>)
    }

    /// The id parsed at the edge, or the kind's 404 for one that did not parse: raised where
    /// the look-up would raise it, after whatever the request checks first.
    pub fn found(id: &Option<Id<K>>) -> ApiResult<&Id<K>> {
        id.as_ref().ok_or_else(not_found::<K>)
    }

    /// The id of a stored record, which has the kind's shape by construction.
    pub fn of(record: &K) -> Id<K> {
        Id {
            text: record.id().to_string(),
            kind: PhantomData,
        }
    }
}

impl<K> Id<K> {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        Id {
            text: self.text.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// 404 with the kind's own code and name.
pub fn not_found<K: Kind>() -> ApiError {
    let mut name = K::SINGULAR.replace('_', " ");
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    ApiError::new(K::NOT_FOUND, format!("{name} not found"))
}

/// A fresh id of kind `K`.
pub fn new_id<K: Kind>() -> String {
    ids::generate(K::ID_PREFIX)
}

/// What a new record of a kind is stamped with in its transaction: a fresh id of the kind, the
/// next value of the creation counter (its `seq`, and `updated_seq` where it keeps one) and the
/// transaction's time (its `created_at`, and `updated_at` where it has one).
pub struct Stamp {
    pub id: String,
    pub seq: u64,
    pub now: Timestamp,
}

impl Stamp {
    pub fn new<K: Kind>(tx: &mut Tx<'_>) -> Stamp {
        Stamp {
            id: new_id::<K>(),
            seq: tx.next_seq(),
            now: tx.now,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_parses_only_with_its_kinds_shape() {
        use crate::project_owned::contact::Contact;
        let id = format!("{}abcdefghij12", Contact::ID_PREFIX);
        assert_eq!(Id::<Contact>::parse(&id).map(|id| id.to_string()), Some(id));
        for malformed in ["", "abcdefghij12", "con_abcdefghij12", "ct_ABCDEFGHIJ12"] {
            assert!(Id::<Contact>::parse(malformed).is_none(), "{malformed}");
        }
        let short = format!("{}abc", Contact::ID_PREFIX);
        assert!(Id::<Contact>::parse(&short).is_none());
    }

    #[test]
    fn lookup_keys_do_not_prefix_each_other() {
        let a = lookup_prefix("ab");
        let b = lookup_prefix("abc");
        assert!(!b.starts_with(&a));
    }
}
