//! Integrations: its endpoints (OpenAPI document), and the admin route that installs one (there is
//! no OAuth flow locally). Routes name an integration by its provider, so they are thin handlers
//! over `project_owned::integration` rather than the id-keyed generic routes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody, Master};
use crate::api::idempotency::body_of;
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::error::ApiResult;
use crate::ids::ProjectId;
use crate::org_owned::project;
use crate::project_owned::integration::{
    self, CatalogFilter, InstallInput, Integration, LifecycleUpdate,
};
use crate::project_owned::{Kind, ProjectScope};
use crate::query::QueryParams;

/// Every installation of the project, disconnected ones included.
pub async fn list(
    auth: Auth,
    project_id: web::Path<String>,
    state: State,
) -> ApiResult<HttpResponse> {
    let rows = InProject::new(&auth, project_id.into_inner())
        .read(&state, integration::list)
        .await?;
    Ok(ok(rows.iter().map(Kind::view).collect::<Vec<_>>()))
}

pub async fn catalog(
    auth: Auth,
    project_id: web::Path<String>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let entries = InProject::new(&auth, project_id.into_inner())
        .read(&state, move |rx, scope| {
            integration::catalog(rx, scope, &CatalogFilter::from_query(&query)?)
        })
        .await?;
    Ok(ok(entries))
}

pub async fn catalog_item(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, provider) = path.into_inner();
    let entry = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            integration::catalog_item(rx, scope, &provider)
        })
        .await?;
    Ok(ok(entry))
}

/// No body is read (the SDK sends none). It changes nothing, so a retry is safe as it is: an
/// `Idempotency-Key` is checked (by `Auth`) but leaves no record.
pub async fn install_url(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, provider) = path.into_inner();
    let dashboard_url = state.integrations.dashboard_url.clone();
    let url = InProject::new(&auth, project_id)
        .read(&state, move |_, scope| {
            integration::install_url(&dashboard_url, &scope.project_id, &provider)
        })
        .await?;
    Ok(ok(url))
}

/// `{"data": null}` for a catalog provider that is not installed in the project.
pub async fn update_lifecycle(
    auth: Auth,
    path: web::Path<(String, String)>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, provider) = path.into_inner();
    let project = InProject::checked(&state, &auth, project_id).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let update = LifecycleUpdate::from_json(body)?;
    project
        .answer(
            &state,
            idempotent,
            StatusCode::OK,
            |updated: &Option<Integration>| body_of(&updated.as_ref().map(Kind::view)),
            move |tx, scope, actor| {
                integration::update_lifecycle(tx, scope, actor, &provider, update)
            },
        )
        .await
}

pub async fn disconnect(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, provider) = path.into_inner();
    InProject::new(&auth, project_id)
        .answer(
            &state,
            auth.idempotent(None),
            StatusCode::OK,
            |row: &Integration| body_of(&row.view()),
            move |tx, scope, actor| integration::disconnect(tx, scope, actor, &provider),
        )
        .await
}

/// Admin: installs (or re-activates) a provider in any organisation's project. The body is
/// optional.
pub async fn install(
    master: Master,
    path: web::Path<(String, String)>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, provider) = path.into_inner();
    let project_id = ProjectId::parse(&project_id);
    let body = body.optional_value().await?;
    let idempotent = master.idempotent(body.as_ref());
    let input = InstallInput::from_json(body)?;
    let actor = master.actor();
    idempotent
        .write(
            &state,
            StatusCode::CREATED,
            |row: &Integration| body_of(&row.view()),
            move |tx| {
                let scope = ProjectScope::resolve_any(tx, project::named(project_id.as_ref())?)?;
                integration::install(tx, &scope, &actor, &provider, input)
            },
        )
        .await
}
