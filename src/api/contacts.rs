//! Contacts: API.md §8 rows 12-15.

use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody, QueryParams};
use crate::api::list::{ListParams, text_param};
use crate::api::scoped::InProject;
use crate::api::{State, created, ok};
use crate::error::ApiResult;
use crate::resources::contact::{
    self, BY_CREATED, Contact, ContactFields, ContactFilter, Upserted,
};
use crate::resources::{self, Kind, Order};
use crate::validate::SHORT_TEXT_MAX;

pub async fn list(
    auth: Auth,
    project_id: web::Path<String>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    // Query parameters are checked after the project is resolved (API.md §2.3).
    let page = InProject::new(&auth, project_id.into_inner())
        .read(&state, move |rx, scope| {
            let params = ListParams::paged(&query, 50, 100)?;
            let filter = ContactFilter {
                q: text_param(&query, "q", SHORT_TEXT_MAX)?.map(|q| q.to_lowercase()),
                email: text_param(&query, "email", SHORT_TEXT_MAX)?.map(|e| e.to_lowercase()),
                external_id: text_param(&query, "external_id", SHORT_TEXT_MAX)?,
            };
            let order = Order {
                tag: BY_CREATED,
                group: b"",
                descending: true,
            };
            resources::list::<Contact>(
                rx,
                scope,
                order,
                params.cursor.as_ref(),
                params.limit,
                |c| filter.matches(c),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(page.render(Contact::view)))
}

/// Creates or updates (API.md §9.4); 201 either way.
pub async fn upsert(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let fields = ContactFields::upsert_from_json(body.value().await?)?;
    let outcome = project
        .write(&state, move |tx, scope, actor| {
            contact::upsert(tx, scope, actor, fields)
        })
        .await?;
    let (Upserted::Created(saved) | Upserted::Updated(saved)) = outcome;
    Ok(created(saved.view()))
}

pub async fn get(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let found = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            resources::get::<Contact>(rx, scope, &id)
        })
        .await?;
    Ok(ok(found.view()))
}

pub async fn update(
    auth: Auth,
    path: web::Path<(String, String)>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let project = InProject::checked(&state, &auth, project_id).await?;
    let fields = ContactFields::update_from_json(body.value().await?)?;
    let updated = project
        .write(&state, move |tx, scope, actor| {
            contact::update(tx, scope, actor, &id, fields)
        })
        .await?;
    Ok(ok(updated.view()))
}
