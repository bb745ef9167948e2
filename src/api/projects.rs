//! Projects: API.md §8 rows 1-5.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::api::extract::{Auth, JsonBody};
use crate::api::{State, created, ok};
use crate::error::ApiResult;
use crate::org_owned::project::{self, Project, ProjectCreate, ProjectUpdate};
use crate::project_owned;

pub async fn list(auth: Auth, org_id: web::Path<String>, state: State) -> ApiResult<HttpResponse> {
    let org = auth.org(&org_id)?;
    let projects = state.store.read(move |rx| project::list(rx, &org)).await?;
    Ok(ok(projects.iter().map(Project::view).collect::<Vec<_>>()))
}

pub async fn create(
    auth: Auth,
    org_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let org = auth.org(&org_id)?;
    let input = ProjectCreate::from_json(body.value().await?)?;
    let actor = auth.actor();
    let project = state
        .store
        .write(move |tx| project::create(tx, &actor, &org, input))
        .await?;
    Ok(created(project.view()))
}

pub async fn get(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, project_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    // A point read (see `InProject::look_up`).
    let project = state
        .store
        .look_up(move |rx| project::resolve(rx, &org, &project_id))
        .await?;
    Ok(ok(project.view()))
}

pub async fn update(
    auth: Auth,
    path: web::Path<(String, String)>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, project_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    // The project is resolved before the body is read (API.md §2.3), and again in the write.
    let (resolving, id) = (org.clone(), project_id.clone());
    state
        .store
        .look_up(move |rx| project::resolve(rx, &resolving, &id))
        .await?;
    let input = ProjectUpdate::from_json(body.value().await?)?;
    let actor = auth.actor();
    let project = state
        .store
        .write(move |tx| project::update(tx, &actor, &org, &project_id, input))
        .await?;
    Ok(ok(project.view()))
}

pub async fn delete(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, project_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    let actor = auth.actor();
    let id = project_id.clone();
    let cascade = state
        .store
        .write(move |tx| project_owned::registry::delete_project(tx, &actor, &org, &id))
        .await?;
    let removed: serde_json::Map<String, serde_json::Value> = cascade
        .into_iter()
        .map(|(kind, n)| (kind, json!(n)))
        .collect();
    Ok(ok(
        json!({"id": project_id, "deleted": true, "removed": removed}),
    ))
}
