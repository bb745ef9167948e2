//! A project resolved for the calling key, and the point reads of one record under it: by id,
//! by a public id alone, by a unique look-up text.

use std::ops::ControlFlow;

use crate::error::{ApiError, ApiResult};
use crate::ids::{self, OrgId, ProjectId};
use crate::org_owned::project;
use crate::project_owned::kind::{Id, Kind, lookup_prefix, not_found};
use crate::store::{Reader, layout, tables};

/// A project resolved for the calling key: the prefix everything it owns is stored under.
#[derive(Debug, Clone)]
pub struct ProjectScope {
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub(super) prefix: Vec<u8>,
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

pub(super) fn decode_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// A record of a public kind found by its id alone, with the scope of its project. Records
/// live only under existing projects, and the cascade removes their entries with them.
pub fn find_public<K: Kind>(
    reader: &impl Reader,
    id: &Id<K>,
) -> ApiResult<Option<(ProjectScope, K)>> {
    if !K::PUBLIC {
        return Ok(None);
    }
    let Some(prefix) = reader.get_raw(tables::PUBLIC_IDS, id.as_str().as_bytes())? else {
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

pub fn find<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    id: &Id<K>,
) -> ApiResult<Option<K>> {
    reader.get(tables::OWNED, &scope.key(K::TAG, id.as_str().as_bytes()))
}

/// `find` for an id held as text (a stored reference, a request body's field): text without
/// the kind's id shape names no record.
pub fn find_text<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    id: &str,
) -> ApiResult<Option<K>> {
    match Id::parse(id) {
        Some(id) => find(reader, scope, &id),
        None => Ok(None),
    }
}

/// The record, or 404 with the kind's own code: an id of another project is not found either.
pub fn get<K: Kind>(reader: &impl Reader, scope: &ProjectScope, id: &Id<K>) -> ApiResult<K> {
    find(reader, scope, id)?.ok_or_else(|| not_found::<K>())
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
    find_text(reader, scope, &id)?
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
