//! What a kind declares to be served by the generic list, create, get, update and delete routes
//! (`api::owned`): its inputs, its list filter, its ordering indexes and the write operations.
//! It knows no HTTP framework, so it sits in the kind's own file beside the record.

use serde_json::Value;

use crate::error::ApiResult;
use crate::org_owned::audit::Actor;
use crate::pagination::Page;
use crate::project_owned::{self, Kind, Order, ProjectScope};
use crate::query::{ListParams, QueryParams};
use crate::store::{Reader, Tx};

/// The most items one page holds (API.md §6.2).
const MAX_LIMIT: usize = 100;

/// A list filter of one kind, applied before paging.
pub trait Filter<K>: Send + 'static {
    fn matches(&self, record: &K) -> bool;
}

/// A kind served by the generic routes.
pub trait Routed: Kind {
    type Create: Send + 'static;
    type Update: Send + 'static;
    type Filter: Filter<Self>;

    /// Page size when the client sends no `limit` (API.md §6.2).
    const DEFAULT_LIMIT: usize = 50;
    /// The ordering index by creation.
    const BY_CREATED: u8;
    /// The ordering index by last update, for kinds that accept `sort`/`order`.
    const BY_UPDATED: Option<u8>;

    fn parse_filter(query: &QueryParams) -> ApiResult<Self::Filter>;
    fn parse_create(body: Value) -> ApiResult<Self::Create>;
    fn parse_update(body: Value) -> ApiResult<Self::Update>;

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: Self::Create,
    ) -> ApiResult<Self>;

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &str,
        input: Self::Update,
    ) -> ApiResult<Self>;

    /// Deletes one record with its index entries and a `<kind>.deleted` audit entry.
    fn delete(tx: &mut Tx<'_>, scope: &ProjectScope, actor: &Actor, id: &str) -> ApiResult<()> {
        let record: Self = project_owned::get(tx, scope, id)?;
        project_owned::remove(tx, scope, actor, &record)
    }
}

/// One page of `K` for a list request: paging, `sort`/`order` where the kind keeps an update
/// index, and the kind's filters. Query parameters are read here, after the project resolved
/// (API.md §2.3).
pub fn list_page<K: Routed>(
    reader: &impl Reader,
    scope: &ProjectScope,
    query: &QueryParams,
) -> ApiResult<Page<K>> {
    let (params, tag) = match K::BY_UPDATED {
        Some(by_updated) => {
            let params = ListParams::sorted(query, K::DEFAULT_LIMIT, MAX_LIMIT)?;
            let tag = params.sort.tag(K::BY_CREATED, by_updated);
            (params, tag)
        }
        None => (
            ListParams::paged(query, K::DEFAULT_LIMIT, MAX_LIMIT)?,
            K::BY_CREATED,
        ),
    };
    let filter = K::parse_filter(query)?;
    let order = Order {
        tag,
        group: b"",
        descending: params.descending,
    };
    project_owned::list::<K>(
        reader,
        scope,
        order,
        params.cursor.as_ref(),
        params.limit,
        |record| filter.matches(record),
    )
}
