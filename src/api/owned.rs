//! The routes every client-managed, project-owned kind shares: list, create, get, update,
//! delete, archive and unarchive, written once and generic over the kind's `Routed` declaration
//! (in its own file under `project_owned`). The route table generates a kind's rows from that
//! declaration, found through the registry (`routes::kind_rows`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::body_of;
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::error::ApiResult;
use crate::project_owned::routed::InputSettings;
use crate::project_owned::{self, Archivable, Id, Kind, Listing, Routed, routed};
use crate::query::QueryParams;

/// A paged list (`{data, cursor, has_more}`) or a plain one (`{data}`), as the kind declares.
pub async fn list<K: Routed>(
    auth: Auth,
    project_id: web::Path<String>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::new(&auth, project_id.into_inner());
    match K::LISTING {
        Listing::Paged { .. } => {
            // Most pages are the next few entries of one index: served as a point read. A walk
            // that outgrows that is run again, whole, on the blocking pool.
            let (inline, query) = project
                .look_up(&state, move |rx, scope| {
                    let page =
                        routed::list_page::<K>(rx, scope, &query, routed::INLINE_PAGE_ENTRIES);
                    Ok((page, query))
                })
                .await?;
            let inline = inline?;
            let page = if inline.spent {
                project
                    .read(&state, move |rx, scope| {
                        routed::list_page::<K>(rx, scope, &query, routed::page_budget(rx))
                    })
                    .await?
                    .page
            } else {
                inline.page
            };
            Ok(HttpResponse::Ok().json(page.render(K::view)))
        }
        Listing::Plain { .. } => {
            let all = project
                .read(&state, move |rx, scope| {
                    routed::list_all::<K>(rx, scope, &query)
                })
                .await?;
            Ok(ok(all.iter().map(K::view).collect::<Vec<_>>()))
        }
    }
}

pub async fn create<K: Routed>(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = K::parse_create(body, input_settings(&state))?;
    project
        .answer(
            &state,
            idempotent,
            StatusCode::CREATED,
            |record: &K| body_of(&record.created_view()),
            move |tx, scope, actor| routed::create::<K>(tx, scope, actor, input),
        )
        .await
}

pub async fn get<K: Kind>(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let id = Id::<K>::parse(&id);
    let record = InProject::new(&auth, project_id)
        .look_up(&state, move |rx, scope| {
            project_owned::get::<K>(rx, scope, Id::found(&id)?)
        })
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
    let id = Id::<K>::parse(&id);
    let project = InProject::checked(&state, &auth, project_id).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = K::parse_update(body, input_settings(&state))?;
    project
        .answer(
            &state,
            idempotent,
            StatusCode::OK,
            |record: &K| body_of(&record.view()),
            move |tx, scope, actor| K::update(tx, scope, actor, Id::found(&id)?, input),
        )
        .await
}

fn input_settings(state: &State) -> InputSettings<'_> {
    InputSettings {
        webhooks: &state.webhooks,
    }
}

/// `{id, deleted: true}` (the OpenAPI document, DELETE rows).
pub async fn delete<K: Routed>(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let id = Id::<K>::parse(&id);
    InProject::new(&auth, project_id)
        .answer(
            &state,
            // A delete runs below `store.min_free_mb` too: it makes room.
            auth.idempotent(None).freeing(),
            StatusCode::OK,
            body_of,
            move |tx, scope, actor| {
                let id = Id::found(&id)?;
                K::delete(tx, scope, actor, id)?;
                Ok(json!({"id": id.as_str(), "deleted": true}))
            },
        )
        .await
}

/// `{id, archived: true}`; no body is read (the SDK sends none).
pub async fn archive<K: Archivable>(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    set_archived::<K>(auth, path, state, true).await
}

/// `{id, archived: false}`; no body is read.
pub async fn unarchive<K: Archivable>(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    set_archived::<K>(auth, path, state, false).await
}

async fn set_archived<K: Archivable>(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
    archived: bool,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let id = Id::<K>::parse(&id);
    InProject::new(&auth, project_id)
        .answer(
            &state,
            auth.idempotent(None),
            StatusCode::OK,
            body_of,
            move |tx, scope, actor| {
                let record =
                    routed::set_archived::<K>(tx, scope, actor, Id::found(&id)?, archived)?;
                Ok(json!({"id": record.id(), "archived": archived}))
            },
        )
        .await
}
