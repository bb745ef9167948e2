//! The routes every client-managed, project-owned kind shares: list, create, get and update,
//! written once. A kind joins them by implementing `Routed`, which names its inputs, its list
//! filter and its ordering indexes; its storage is the generic `resources` machinery.

use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::api::extract::{Auth, JsonBody, QueryParams};
use crate::api::list::{ListParams, enum_param, text_param};
use crate::api::scoped::InProject;
use crate::api::{State, created, ok};
use crate::error::ApiResult;
use crate::model::audit::Actor;
use crate::resources::contact::{self, Contact, ContactFields, ContactFilter, Upserted};
use crate::resources::conversation::{
    self, Channel, Conversation, ConversationCreate, ConversationFilter, ConversationUpdate,
    Priority, Status,
};
use crate::resources::kb::{self, Article, ArticleCreate, ArticleFields, ArticleFilter};
use crate::resources::{self, Filter, Kind, Order, ProjectScope};
use crate::store::Tx;
use crate::validate::SHORT_TEXT_MAX;

/// A kind served by the generic routes.
pub trait Routed: Kind {
    type Create: Send + 'static;
    type Update: Send + 'static;
    type Filter: Filter<Self>;

    /// Page size when the client sends no `limit` (API.md §6.2); the maximum is 100.
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
}

const MAX_LIMIT: usize = 100;

pub async fn list<K: Routed>(
    auth: Auth,
    project_id: web::Path<String>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    // Query parameters are checked after the project is resolved (API.md §2.3).
    let page = InProject::new(&auth, project_id.into_inner())
        .read(&state, move |rx, scope| {
            let (params, tag) = match K::BY_UPDATED {
                Some(by_updated) => {
                    let params = ListParams::sorted(&query, K::DEFAULT_LIMIT, MAX_LIMIT)?;
                    let tag = params.sort.tag(K::BY_CREATED, by_updated);
                    (params, tag)
                }
                None => (
                    ListParams::paged(&query, K::DEFAULT_LIMIT, MAX_LIMIT)?,
                    K::BY_CREATED,
                ),
            };
            let filter = K::parse_filter(&query)?;
            let order = Order {
                tag,
                group: b"",
                descending: params.descending,
            };
            resources::list::<K>(
                rx,
                scope,
                order,
                params.cursor.as_ref(),
                params.limit,
                |record| filter.matches(record),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(page.render(K::view)))
}

pub async fn create<K: Routed>(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let input = K::parse_create(body.value().await?)?;
    let record = project
        .write(&state, move |tx, scope, actor| {
            K::create(tx, scope, actor, input)
        })
        .await?;
    Ok(created(record.view()))
}

pub async fn get<K: Kind>(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let record = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| resources::get::<K>(rx, scope, &id))
        .await?;
    Ok(ok(record.view()))
}

pub async fn update<K: Routed>(
    auth: Auth,
    path: web::Path<(String, String)>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let project = InProject::checked(&state, &auth, project_id).await?;
    let input = K::parse_update(body.value().await?)?;
    let record = project
        .write(&state, move |tx, scope, actor| {
            K::update(tx, scope, actor, &id, input)
        })
        .await?;
    Ok(ok(record.view()))
}

/// A free-text filter, compared in lowercase.
fn lowercase_param(query: &QueryParams, name: &str) -> ApiResult<Option<String>> {
    Ok(text_param(query, name, SHORT_TEXT_MAX)?.map(|q| q.to_lowercase()))
}

impl Routed for Conversation {
    type Create = ConversationCreate;
    type Update = ConversationUpdate;
    type Filter = ConversationFilter;

    const BY_CREATED: u8 = conversation::BY_CREATED;
    const BY_UPDATED: Option<u8> = Some(conversation::BY_UPDATED);

    fn parse_filter(query: &QueryParams) -> ApiResult<ConversationFilter> {
        Ok(ConversationFilter {
            status: enum_param(query, "status", Status::VALUES)?,
            priority: enum_param(query, "priority", Priority::VALUES)?,
            channel: enum_param(query, "channel", Channel::VALUES)?,
            assigned_to: text_param(query, "assigned_to", SHORT_TEXT_MAX)?,
            contact_id: text_param(query, "contact_id", SHORT_TEXT_MAX)?,
            q: lowercase_param(query, "q")?,
        })
    }

    fn parse_create(body: Value) -> ApiResult<ConversationCreate> {
        ConversationCreate::from_json(body)
    }

    fn parse_update(body: Value) -> ApiResult<ConversationUpdate> {
        ConversationUpdate::from_json(body)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ConversationCreate,
    ) -> ApiResult<Self> {
        conversation::create(tx, scope, actor, input)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &str,
        input: ConversationUpdate,
    ) -> ApiResult<Self> {
        conversation::update(tx, scope, actor, id, input)
    }
}

/// Contacts list newest first with no sort parameters; creating one is an upsert (201 both
/// ways, API.md §9.4).
impl Routed for Contact {
    type Create = ContactFields;
    type Update = ContactFields;
    type Filter = ContactFilter;

    const BY_CREATED: u8 = contact::BY_CREATED;
    const BY_UPDATED: Option<u8> = None;

    fn parse_filter(query: &QueryParams) -> ApiResult<ContactFilter> {
        Ok(ContactFilter {
            q: lowercase_param(query, "q")?,
            email: lowercase_param(query, "email")?,
            external_id: text_param(query, "external_id", SHORT_TEXT_MAX)?,
        })
    }

    fn parse_create(body: Value) -> ApiResult<ContactFields> {
        ContactFields::upsert_from_json(body)
    }

    fn parse_update(body: Value) -> ApiResult<ContactFields> {
        ContactFields::update_from_json(body)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ContactFields,
    ) -> ApiResult<Self> {
        let (Upserted::Created(saved) | Upserted::Updated(saved)) =
            contact::upsert(tx, scope, actor, input)?;
        Ok(saved)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &str,
        input: ContactFields,
    ) -> ApiResult<Self> {
        contact::update(tx, scope, actor, id, input)
    }
}

impl Routed for Article {
    type Create = ArticleCreate;
    type Update = ArticleFields;
    type Filter = ArticleFilter;

    const BY_CREATED: u8 = kb::BY_CREATED;
    const BY_UPDATED: Option<u8> = Some(kb::BY_UPDATED);

    fn parse_filter(query: &QueryParams) -> ApiResult<ArticleFilter> {
        Ok(ArticleFilter {
            status: enum_param(query, "status", kb::ArticleStatus::VALUES)?,
            category: text_param(query, "category", SHORT_TEXT_MAX)?,
            q: lowercase_param(query, "q")?,
        })
    }

    fn parse_create(body: Value) -> ApiResult<ArticleCreate> {
        ArticleCreate::from_json(body)
    }

    fn parse_update(body: Value) -> ApiResult<ArticleFields> {
        ArticleFields::update_from_json(body)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ArticleCreate,
    ) -> ApiResult<Self> {
        kb::create(tx, scope, actor, input)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &str,
        input: ArticleFields,
    ) -> ApiResult<Self> {
        kb::update(tx, scope, actor, id, Some(input))
    }
}
