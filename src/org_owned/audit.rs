//! The audit log (docs/administration.md). Every mutation writes one entry in the same write
//! transaction as the change, so an entry exists exactly when its change does.

use std::ops::{Bound, ControlFlow};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::codec::{self, CodecError, Record};
use crate::error::{ApiError, ApiResult};
use crate::ids::{IdKind, OrgId, ProjectId};
use crate::pagination::{Cursor, Page};
use crate::store::{Reader, Tx, layout, tables};
use crate::timestamp::Timestamp;
use crate::view::record_view;

/// Who performs a mutation: an org API key, the master key (admin API, first start), or an
/// anonymous caller of a public endpoint (a form submission).
#[derive(Debug, Clone)]
pub struct Actor {
    pub api_key_id: Option<String>,
    pub request_id: Option<String>,
    /// No credential at all: neither a key nor the master key.
    pub public: bool,
}

impl Actor {
    pub fn master(request_id: Option<String>) -> Self {
        Actor {
            api_key_id: None,
            request_id,
            public: false,
        }
    }

    pub fn public(request_id: Option<String>) -> Self {
        Actor {
            api_key_id: None,
            request_id,
            public: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub org_id: OrgId,
    pub project_id: Option<ProjectId>,
    pub action: String,
    pub target_id: String,
    pub api_key_id: Option<String>,
    pub request_id: Option<String>,
    /// JSON text of `{field: {before, after}}`; postcard cannot hold a free-form JSON value.
    pub changes: String,
    /// For a delete that takes other records with it (a project; a webhook, its deliveries):
    /// how many records of each kind went.
    pub cascade: Vec<(String, u64)>,
    pub created_at: Timestamp,
    pub seq: u64,
    /// Made by an anonymous caller of a public endpoint (`Actor::public`).
    pub public: bool,
}

impl Record for AuditEntry {
    const NAME: &'static str = "audit entry";
    const VERSION: u8 = 2;

    /// Version 1 had no `public`: every entry without a key was the master key's.
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, CodecError> {
        codec::upgrade_from(version, 1, bytes, |v1: AuditEntryV1| AuditEntry {
            id: v1.id,
            org_id: v1.org_id,
            project_id: v1.project_id,
            action: v1.action,
            target_id: v1.target_id,
            api_key_id: v1.api_key_id,
            request_id: v1.request_id,
            changes: v1.changes,
            cascade: v1.cascade,
            created_at: v1.created_at,
            seq: v1.seq,
            public: false,
        })
    }
}

/// The layout of version 1.
#[derive(Serialize, Deserialize)]
struct AuditEntryV1 {
    id: String,
    org_id: OrgId,
    project_id: Option<ProjectId>,
    action: String,
    target_id: String,
    api_key_id: Option<String>,
    request_id: Option<String>,
    changes: String,
    cascade: Vec<(String, u64)>,
    created_at: Timestamp,
    seq: u64,
}

/// One mutation to record.
pub struct Event<'a> {
    pub org_id: &'a OrgId,
    pub project_id: Option<&'a ProjectId>,
    pub action: &'a str,
    pub target_id: &'a str,
    /// The object's view before and after; `None` for a create's before and a delete's after.
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub cascade: Vec<(String, u64)>,
}

pub fn record(tx: &mut Tx<'_>, actor: &Actor, event: Event<'_>) -> ApiResult<()> {
    let seq = tx.next_seq();
    let entry = AuditEntry {
        id: IdKind::Audit.generate(),
        org_id: event.org_id.clone(),
        project_id: event.project_id.cloned(),
        action: event.action.to_string(),
        target_id: event.target_id.to_string(),
        api_key_id: actor.api_key_id.clone(),
        request_id: actor.request_id.clone(),
        changes: Value::Object(diff(event.before.as_ref(), event.after.as_ref())).to_string(),
        cascade: event.cascade,
        created_at: tx.now,
        seq,
        public: actor.public,
    };
    tx.put(tables::AUDIT, &layout::audit(event.org_id, seq), &entry)
}

/// The fields that differ between two views, each as `{before, after}`.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Map<String, Value> {
    let empty = Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut changes = Map::new();
    for key in before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)))
    {
        let old = before.get(key).unwrap_or(&Value::Null);
        let new = after.get(key).unwrap_or(&Value::Null);
        if old != new {
            changes.insert(key.clone(), json!({"before": old, "after": new}));
        }
    }
    changes
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct AuditEntryView from AuditEntry {
        id: String,
        #[schema(value_type = String)]
        org_id: OrgId,
        #[schema(value_type = Option<String>)]
        project_id: Option<ProjectId>,
        action: String,
        target_id: String,
        api_key_id: Option<String>,
        actor: &'static str = |entry| {
            if entry.api_key_id.is_some() {
                "api_key"
            } else if entry.public {
                "public"
            } else {
                "master"
            }
        },
        request_id: Option<String>,
        changes: Value = |entry| serde_json::from_str(&entry.changes).unwrap_or(Value::Null),
        #[serde(skip_serializing_if = "Option::is_none")]
        cascade: Option<Map<String, Value>> = |entry| {
            (!entry.cascade.is_empty()).then(|| {
                entry
                    .cascade
                    .iter()
                    .map(|(k, n)| (k.clone(), json!(n)))
                    .collect()
            })
        },
        created_at: Timestamp,
    }
}

impl AuditEntry {
    pub fn view(&self) -> AuditEntryView {
        AuditEntryView::from(self)
    }
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub project_id: Option<String>,
    pub action: Option<String>,
    pub api_key_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl AuditFilter {
    fn matches(&self, entry: &AuditEntry) -> bool {
        self.project_id
            .as_ref()
            .is_none_or(|p| entry.project_id.as_ref().is_some_and(|id| *id == **p))
            && self.action.as_ref().is_none_or(|a| &entry.action == a)
            && self
                .api_key_id
                .as_ref()
                .is_none_or(|k| entry.api_key_id.as_ref() == Some(k))
            && self.since.is_none_or(|t| entry.created_at >= t)
            && self.until.is_none_or(|t| entry.created_at <= t)
    }
}

/// Newest first; the cursor holds the last entry's sequence number.
pub fn list(
    reader: &impl Reader,
    org_id: &OrgId,
    filter: &AuditFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> ApiResult<Page<AuditEntry>> {
    let start = Bound::Included(layout::audit(org_id, 0));
    let end = match after {
        Some(cursor) => Bound::Excluded(layout::audit(org_id, cursor.sort)),
        None => Bound::Included(layout::audit(org_id, u64::MAX)),
    };
    let mut items = Vec::new();
    let mut has_more = false;
    reader.scan(tables::AUDIT, (start, end), true, &mut |_, value| {
        let entry: AuditEntry = crate::codec::decode(value)?;
        // Newest first, and entries are numbered in commit order with their commit's time:
        // past `since`, no older entry can match.
        if filter.since.is_some_and(|since| entry.created_at < since) {
            return Ok(ControlFlow::Break(()));
        }
        if !filter.matches(&entry) {
            return Ok(ControlFlow::Continue(()));
        }
        if items.len() == limit {
            has_more = true;
            return Ok(ControlFlow::Break(()));
        }
        items.push(entry);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(Page::new(items, has_more, |e| Cursor {
        sort: e.seq,
        id: e.id.clone(),
    }))
}

/// Serialises a view for `Event::before`/`after`.
pub fn snapshot(view: &impl Serialize) -> ApiResult<Value> {
    serde_json::to_value(view).map_err(|e| ApiError::internal(format!("audit snapshot: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_only_changed_fields() {
        let before = json!({"name": "a", "slug": "s", "domain": null});
        let after = json!({"name": "b", "slug": "s", "domain": "x.io"});
        let d = diff(Some(&before), Some(&after));
        assert_eq!(d.len(), 2);
        assert_eq!(d["name"], json!({"before": "a", "after": "b"}));
        assert_eq!(d["domain"], json!({"before": null, "after": "x.io"}));
    }

    #[test]
    fn version_1_entries_are_the_master_keys_or_a_keys() {
        let v1 = AuditEntryV1 {
            id: "aud_abcdefghijkl".into(),
            org_id: OrgId::parse("org_abcdefghijkl").unwrap(),
            project_id: None,
            action: "org.created".into(),
            target_id: "org_abcdefghijkl".into(),
            api_key_id: None,
            request_id: Some("req_x".into()),
            changes: "{}".into(),
            cascade: Vec::new(),
            created_at: Timestamp::from_unix(1_700_000_000),
            seq: 7,
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&v1).unwrap());
        let entry: AuditEntry = crate::codec::decode(&bytes).unwrap();
        assert_eq!((entry.seq, entry.public), (7, false));
        assert_eq!(entry.view().actor, "master");
        let public = AuditEntry {
            public: true,
            ..entry
        };
        let again: AuditEntry =
            crate::codec::decode(&crate::codec::encode(&public).unwrap()).unwrap();
        assert_eq!(again.view().actor, "public");
    }

    /// Entries are scanned newest first and the scan stops at the first one older than
    /// `since`: an older-stamped entry further down (a clock that went back) is never reached.
    #[test]
    fn since_stops_the_scan_at_the_first_older_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("audit.redb")).unwrap();
        let org = OrgId::parse("org_abcdefghijkl").unwrap();
        let entry = |seq: u64, at: i64| AuditEntry {
            id: format!("aud_{seq:012}"),
            org_id: org.clone(),
            project_id: None,
            action: "org.updated".into(),
            target_id: org.to_string(),
            api_key_id: None,
            request_id: None,
            changes: "{}".into(),
            cascade: Vec::new(),
            created_at: Timestamp::from_unix(at),
            seq,
            public: false,
        };
        // seq 1 carries a late time: only a full scan would find it.
        let entries = [entry(1, 1_700_000_900), entry(2, 1_700_000_100)]
            .into_iter()
            .chain((3..=5).map(|seq| entry(seq, 1_700_000_000 + 100 * seq as i64)))
            .collect::<Vec<_>>();
        let written = org.clone();
        store
            .write_blocking(move |tx| {
                for e in &entries {
                    tx.put(tables::AUDIT, &layout::audit(&written, e.seq), e)?;
                }
                Ok(())
            })
            .unwrap();
        let filter = AuditFilter {
            since: Some(Timestamp::from_unix(1_700_000_400)),
            ..AuditFilter::default()
        };
        let page = store
            .read_blocking(|rx| list(rx, &org, &filter, None, 10))
            .unwrap();
        let seqs: Vec<u64> = page.items.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [5, 4]);
        assert!(page.next.is_none());
    }

    #[test]
    fn create_and_delete_diffs_cover_every_field() {
        let view = json!({"name": "a", "slug": "s"});
        assert_eq!(
            diff(None, Some(&view))["slug"],
            json!({"before": null, "after": "s"})
        );
        assert_eq!(
            diff(Some(&view), None)["name"],
            json!({"before": "a", "after": null})
        );
    }
}
