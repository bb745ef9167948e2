//! What a kind declares to be served by the generic list, create, get, update, delete and
//! archive routes (`api::owned`): its inputs, its list filter, its ordering indexes, the write
//! operations and its HTTP contract as data (`Endpoints`: paths, scopes, request schemas,
//! filters), from which the router, the authorization tests and the OpenAPI document generate
//! its rows. It knows no HTTP framework, so it sits in the kind's own file beside the record.

use serde::Serialize;
use serde_json::Value;

use utoipa::ToSchema;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::Schema;

use crate::auth::scope::{Resource, Verb};
use crate::config::MIN_LIST_SCAN_BUDGET;
use crate::config::WebhookSettings;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org_owned::audit::Actor;
use crate::project_owned::{self, Id, Kind, Order, Postings, ProjectScope, Walk, Walked};
use crate::query::{ListParams, QueryParams};
use crate::schema::Named;
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;

/// The most items one page holds (docs/api/README.md).
const MAX_LIMIT: usize = 100;

/// The index entries a page may walk inline on an async worker (`api::owned::list`) before it
/// is run again on the blocking pool: a page of up to 63 items from one index, unfiltered or
/// with one exact filter, reads that many contiguous entries and records, the cost of a few
/// point reads. Filters that reject most of what they walk, and `q`, spend it and move.
pub const INLINE_PAGE_ENTRIES: u64 = 64;

/// A list filter of one kind, applied before paging.
pub trait Filter<K>: Send + 'static {
    fn matches(&self, record: &K) -> bool;

    /// Postings ordered like the ordering index `order` whose intersection holds every record
    /// that matches (each filtered field's value, a query's trigrams); `matches` checks the
    /// rest on each record found. Empty: the list walks the ordering and checks every record.
    fn postings(&self, _order: u8) -> Vec<Postings> {
        Vec::new()
    }
}

/// The filter of a kind whose list takes no filter parameters.
pub struct Unfiltered;

impl<K> Filter<K> for Unfiltered {
    fn matches(&self, _: &K) -> bool {
        true
    }
}

/// How a kind's list route answers (docs/api/README.md).
pub enum Listing {
    /// `{data, cursor, has_more}`, newest first by default, `limit` defaulting to
    /// `default_limit`; `sort`/`order` where the kind keeps an update-order index.
    Paged {
        default_limit: usize,
        by_updated: Option<u8>,
    },
    /// `{data: [...]}`: every record, oldest first. A plain list cannot be paged, so a project
    /// holds at most `max_per_project` of the kind.
    Plain { max_per_project: usize },
}

/// The server settings that input rules may depend on; the generic routes pass them to
/// `parse_create` and `parse_update`.
#[derive(Debug, Clone, Copy)]
pub struct InputSettings<'a> {
    /// Which URL schemes a webhook may use.
    pub webhooks: &'a WebhookSettings,
}

/// A route the generic handlers serve for every kind that declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// `GET` the collection.
    List,
    /// `POST` the collection.
    Create,
    /// `GET` an object.
    Get,
    /// `PATCH` an object.
    Update,
    /// `DELETE` an object.
    Delete,
    /// `POST` an object's `/archive` (an `Archivable` kind).
    Archive,
    /// `POST` an object's `/unarchive` (an `Archivable` kind).
    Unarchive,
}

impl Standard {
    /// What the route needs of a key: reads `<resource>:read`, changes `<resource>:write`.
    pub fn verb(self) -> Verb {
        match self {
            Standard::List | Standard::Get => Verb::Read,
            _ => Verb::Write,
        }
    }

    /// The route's path pattern for a kind whose collection is `collection`: an object's path
    /// adds `/{<singular>_id}`.
    pub fn path(self, collection: &str, singular: &str) -> String {
        let object = format!("{collection}/{{{singular}_id}}");
        match self {
            Standard::List | Standard::Create => collection.to_string(),
            Standard::Get | Standard::Update | Standard::Delete => object,
            Standard::Archive => format!("{object}/archive"),
            Standard::Unarchive => format!("{object}/unarchive"),
        }
    }
}

/// A kind's HTTP contract, as data: the router, the authorization tests and the OpenAPI document
/// read it (through the registry) and generate its standard rows from it.
#[derive(Clone, Copy)]
pub struct Endpoints {
    /// The collection's path, e.g. `/api/v1/projects/{project_id}/beacons`.
    pub collection: &'static str,
    /// The resource of its scopes: `<resource>:read` to list and get, `:write` to change.
    pub resource: Resource,
    /// Its standard routes. `Archive` and `Unarchive` come with `Archivable` and are not listed.
    pub routes: &'static [Standard],
    /// The request bodies of `Create` and `Update`.
    pub create: Body,
    pub update: Body,
    /// The query parameters of its list beyond paging and sorting: its filters.
    pub filters: fn() -> Vec<Parameter>,
    /// The create answer's `data` when it is not the view (`Routed::created_view`).
    pub created: Option<Named>,
}

/// Its collection's path is enough to tell which kind's contract it is.
impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.collection)
    }
}

/// A request body: its OpenAPI component, written beside the `Input` reader it describes.
#[derive(Clone, Copy)]
pub struct Body {
    /// The component name, e.g. `BeaconCreate`.
    pub name: &'static str,
    pub schema: fn() -> Schema,
    /// Error codes the body can cause beyond its validation, in the order the document lists
    /// them: a 404 of an object it names, 409 `SLUG_CONFLICT`.
    pub codes: &'static [ErrorCode],
}

/// No filter parameters.
pub fn no_filters() -> Vec<Parameter> {
    Vec::new()
}

/// What walks the routed kinds of the registry (`registry::visit_routed`) with their types: the
/// router, to instantiate the generic handlers for each.
pub trait RoutedVisitor {
    fn routed<K: Routed>(&mut self);
    fn archivable<K: Archivable>(&mut self);
}

/// A kind served by the generic routes.
pub trait Routed: Kind<View: ToSchema> {
    type Create: Clone + Send + 'static;
    type Update: Clone + Send + 'static;
    type Filter: Filter<Self>;

    /// The ordering index by creation.
    const BY_CREATED: u8;
    const LISTING: Listing;
    const ENDPOINTS: Endpoints;

    fn parse_filter(query: &QueryParams) -> ApiResult<Self::Filter>;
    /// Reads a create body. `settings` are the server settings that input rules may depend
    /// on (whether a webhook URL may be `http`); most kinds ignore them.
    fn parse_create(body: Value, settings: InputSettings<'_>) -> ApiResult<Self::Create>;
    fn parse_update(body: Value, settings: InputSettings<'_>) -> ApiResult<Self::Update>;

    /// The create response's `data`: the view, unless the kind shows something exactly once, at
    /// creation (a webhook's signing secret). Audit entries always use the view.
    fn created_view(&self) -> impl Serialize {
        self.view()
    }

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
        id: &Id<Self>,
        input: Self::Update,
    ) -> ApiResult<Self>;

    /// Deletes one record with its index entries and a `<kind>.deleted` audit entry.
    fn delete(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
    ) -> ApiResult<()> {
        let record: Self = project_owned::get(tx, scope, id)?;
        project_owned::remove(tx, scope, actor, &record)
    }
}

/// One page of `K` for a paged list request: paging, `sort`/`order` where the kind keeps an
/// update index, and the kind's filters, walked through their postings within `budget` index
/// entries (the store's `list_scan_budget`, [`page_budget`], or the smaller inline budget).
/// Query parameters are read here, after the project resolved (docs/administration.md).
pub fn list_page<K: Routed>(
    reader: &impl Reader,
    scope: &ProjectScope,
    query: &QueryParams,
    budget: u64,
) -> ApiResult<Walked<K>> {
    let (params, tag) = match K::LISTING {
        Listing::Paged {
            default_limit,
            by_updated: Some(by_updated),
        } => {
            let params = ListParams::sorted(query, default_limit, MAX_LIMIT)?;
            let tag = params.sort.tag(K::BY_CREATED, by_updated);
            (params, tag)
        }
        Listing::Paged {
            default_limit,
            by_updated: None,
        } => (
            ListParams::paged(query, default_limit, MAX_LIMIT)?,
            K::BY_CREATED,
        ),
        Listing::Plain { .. } => {
            return Err(ApiError::internal(format!(
                "{} lists are not paged",
                K::PLURAL
            )));
        }
    };
    let filter = K::parse_filter(query)?;
    let walk = Walk {
        order: Order {
            tag,
            group: b"",
            descending: params.descending,
        },
        postings: filter.postings(tag),
        budget,
    };
    project_owned::list_within::<K>(
        reader,
        scope,
        &walk,
        params.cursor.as_ref(),
        params.limit,
        |record| filter.matches(record),
    )
}

/// The index entries one page may walk: `[store] list_scan_budget`.
pub fn page_budget(reader: &impl Reader) -> u64 {
    reader.limits().list_scan_budget.max(MIN_LIST_SCAN_BUDGET)
}

/// Every record of a plain-listed kind that passes its filters, oldest first.
pub fn list_all<K: Routed>(
    reader: &impl Reader,
    scope: &ProjectScope,
    query: &QueryParams,
) -> ApiResult<Vec<K>> {
    let filter = K::parse_filter(query)?;
    let order = Order {
        tag: K::BY_CREATED,
        group: b"",
        descending: false,
    };
    let page = project_owned::list::<K>(reader, scope, order, None, usize::MAX, |record| {
        filter.matches(record)
    })?;
    Ok(page.items)
}

/// Creates a record through the kind's `create`, first refusing one beyond the kind's cap.
pub fn create<K: Routed>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    input: K::Create,
) -> ApiResult<K> {
    if let Listing::Plain { max_per_project } = K::LISTING {
        let order = Order {
            tag: K::BY_CREATED,
            group: b"",
            descending: false,
        };
        let existing = project_owned::list::<K>(tx, scope, order, None, max_per_project, |_| true)?;
        if existing.next.is_some() || existing.items.len() >= max_per_project {
            // The body is valid; the project is full: a conflict with its state.
            return Err(ApiError::new(
                ErrorCode::LimitReached,
                format!("A project holds at most {max_per_project} {}", K::PLURAL),
            ));
        }
    }
    K::create(tx, scope, actor, input)
}

/// A kind whose records are archived and unarchived rather than deleted (forms, beacons).
pub trait Archivable: Routed + Clone {
    fn archived_at(&mut self) -> &mut Option<Timestamp>;
}

/// Archives (`archived`) or unarchives a record, audited as `<kind>.archived|unarchived`.
/// Idempotent: archiving an archived record keeps its first `archived_at`.
pub fn set_archived<K: Archivable>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    id: &Id<K>,
    archived: bool,
) -> ApiResult<K> {
    let before: K = project_owned::get(tx, scope, id)?;
    let mut after = before.clone();
    let slot = after.archived_at();
    if slot.is_some() == archived {
        return Ok(before);
    }
    *slot = archived.then_some(tx.now);
    let verb = if archived { "archived" } else { "unarchived" };
    project_owned::replace(tx, scope, actor, verb, &before, &after)?;
    Ok(after)
}
