//! The registry of project-owned kinds, and what walks it: the project cascade. A kind is
//! written against the generic machinery of this module's parent; the registry is the one
//! place that names every kind.

use std::collections::BTreeMap;

use crate::codec;
use crate::error::{ApiResult, ErrorCode};
use crate::org_owned::audit::{self, Actor};
use crate::org_owned::project;
use crate::project_owned::{
    IndexEntry, Kind, agent, beacon, contact, conversation, form, form_submission, integration, kb,
    message, outbox, webhook, webhook_delivery, widget,
};
use crate::store::{Tx, layout, tables};

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
