//! The storage key layout (docs/design.md has the picture). Every id this server generates is
//! `ID_LEN` bytes, so concatenated ids need no separators and a prefix names exactly one owner:
//!
//! - org-owned records:     `org_id ++ child_id`          (API keys, projects, slugs)
//! - audit entries:         `org_id ++ seq (u64, big-endian)`
//! - project-owned records: `org_id ++ project_id ++ kind tag (1 byte) ++ rest`
//!
//! Org and project ids are `OrgId`/`ProjectId`, checked when parsed from a request path; other
//! ids are checked with `IdKind::matches` or parsed as `project_owned::Id` before they reach a key,
//! so a malformed id can never stand for a prefix of other keys.

use std::ops::Bound;

use crate::ids::{ApiKeyId, OrgId, ProjectId};

pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

pub fn org_child(org_id: &OrgId, child: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(org_id.as_str().len() + child.len());
    key.extend_from_slice(org_id.as_bytes());
    key.extend_from_slice(child.as_bytes());
    key
}

pub fn audit(org_id: &OrgId, seq: u64) -> Vec<u8> {
    let mut key = org_id.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A dashboard session, by the SHA-256 hash of its token: `"s" ++ hash`.
pub fn session(token_hash: &[u8]) -> Vec<u8> {
    [b"s".as_slice(), token_hash].concat()
}

/// The sessions of one API key, oldest first: `"k" ++ key_id ++ seq (u64, big-endian)` → the
/// session's token hash.
pub fn key_sessions(key_id: &ApiKeyId) -> Vec<u8> {
    [b"k".as_slice(), key_id.as_bytes()].concat()
}

pub fn key_session(key_id: &ApiKeyId, seq: u64) -> Vec<u8> {
    [key_sessions(key_id).as_slice(), &seq.to_be_bytes()].concat()
}

/// An idempotency record of an org key: `"k" ++ org_id ++ key_id ++ idempotency key`. The ids
/// are fixed-length, so no key of one API key is a prefix of another's.
pub fn idempotency_of_key(org_id: &OrgId, key_id: &ApiKeyId, key: &str) -> Vec<u8> {
    [
        b"k".as_slice(),
        org_id.as_bytes(),
        key_id.as_bytes(),
        key.as_bytes(),
    ]
    .concat()
}

/// An idempotency record of the master key (the admin API): `"m" ++ idempotency key`.
pub fn idempotency_of_master(key: &str) -> Vec<u8> {
    [b"m".as_slice(), key.as_bytes()].concat()
}

/// A record's entry in the age order: `created_at (Unix seconds, u64 big-endian) ++ record key`.
pub fn idempotency_by_age(created_at: u64, record: &[u8]) -> Vec<u8> {
    [created_at.to_be_bytes().as_slice(), record].concat()
}

/// The prefix under which everything a project owns is stored.
pub fn project_prefix(org_id: &OrgId, project_id: &ProjectId) -> Vec<u8> {
    org_child(org_id, project_id.as_str())
}

/// All keys that start with `prefix`.
pub fn prefix_range(prefix: &[u8]) -> KeyRange {
    let end = match successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), end)
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> OrgId {
        OrgId::parse(id).unwrap()
    }

    fn project(id: &str) -> ProjectId {
        ProjectId::parse(id).unwrap()
    }

    fn within(range: &KeyRange, key: &[u8]) -> bool {
        use std::ops::RangeBounds;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            range.0.as_ref().map(Vec::as_slice),
            range.1.as_ref().map(Vec::as_slice),
        );
        RangeBounds::<[u8]>::contains(&bounds, key)
    }

    #[test]
    fn project_prefix_contains_only_its_project() {
        let org = &org("org_aaaaaaaaaaaa");
        let a = project_prefix(org, &project("prj_aaaaaaaaaaaa"));
        let range = prefix_range(&a);
        let mut child = a.clone();
        child.extend_from_slice(b"\x01con_xxxxxxxxxxxx");
        assert!(within(&range, &child));
        assert!(!within(
            &range,
            &project_prefix(org, &project("prj_aaaaaaaaaaab"))
        ));
        assert!(!within(
            &range,
            &project_prefix(&self::org("org_aaaaaaaaaaab"), &project("prj_aaaaaaaaaaaa"))
        ));
        assert!(!within(&range, org.as_bytes()));
    }

    #[test]
    fn audit_keys_sort_by_sequence() {
        let org = &org("org_aaaaaaaaaaaa");
        assert!(audit(org, 255) < audit(org, 256));
        assert!(audit(org, u64::MAX) < audit(&self::org("org_aaaaaaaaaaab"), 0));
    }

    #[test]
    fn successor_skips_saturated_bytes() {
        assert_eq!(successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff\xff"), None);
    }
}
