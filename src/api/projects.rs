//! Projects: API.md §8 rows 1-5.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
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
        .write_freeing(move |tx| project_owned::registry::delete_project(tx, &actor, &org, &id))
        .await?;
    Ok(ok(
        json!({"id": project_id, "deleted": true, "removed": counts(cascade)}),
    ))
}

/// What deleting the project would remove, as the delete reports it: records per kind, e.g.
/// `{"conversations": 2, "messages": 5}` (a self-hosting addition; the dashboard's delete
/// dialog shows it).
pub async fn contents(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, project_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    let contents = state
        .store
        .read(move |rx| project_owned::registry::project_contents(rx, &org, &project_id))
        .await?;
    Ok(ok(counts(contents)))
}

/// Records per kind of a project, by plural name: `{"conversations": 2, "messages": 5}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct RecordCounts(BTreeMap<String, u64>);

fn counts(by_kind: Vec<(String, u64)>) -> RecordCounts {
    RecordCounts(by_kind.into_iter().collect())
}
