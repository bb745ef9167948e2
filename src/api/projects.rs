//! Projects: its endpoints (OpenAPI document).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::body_of;
use crate::api::response::{State, ok};
use crate::error::ApiResult;
use crate::ids::ProjectId;
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
    let (body, idempotent) = auth.read_body(body).await?;
    let input = ProjectCreate::from_json(body)?;
    let actor = auth.actor();
    idempotent
        .write(
            &state,
            StatusCode::CREATED,
            |project: &Project| body_of(&project.view()),
            move |tx| project::create(tx, &actor, &org, input),
        )
        .await
}

pub async fn get(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, project_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    let project_id = ProjectId::parse(&project_id);
    // A point read (see `InProject::look_up`).
    let project = state
        .store
        .look_up(move |rx| project::resolve(rx, &org, project::named(project_id.as_ref())?))
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
    // The project is resolved before the body is read (docs/administration.md), and again in the
    // write.
    let project_id = project::named(ProjectId::parse(&project_id).as_ref())?.clone();
    let (resolving, id) = (org.clone(), project_id.clone());
    state
        .store
        .look_up(move |rx| project::resolve(rx, &resolving, &id))
        .await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = ProjectUpdate::from_json(body)?;
    let actor = auth.actor();
    idempotent
        .write(
            &state,
            StatusCode::OK,
            |project: &Project| body_of(&project.view()),
            move |tx| project::update(tx, &actor, &org, &project_id, input),
        )
        .await
}

pub async fn delete(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, project_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    let named = ProjectId::parse(&project_id);
    let actor = auth.actor();
    // A delete runs below `store.min_free_mb` too: it makes room.
    auth.idempotent(None)
        .freeing()
        .write(&state, StatusCode::OK, body_of, move |tx| {
            let id = project::named(named.as_ref())?;
            let cascade = project_owned::registry::delete_project(tx, &actor, &org, id)?;
            Ok(json!({"id": project_id, "deleted": true, "removed": counts(cascade)}))
        })
        .await
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
    let project_id = ProjectId::parse(&project_id);
    let contents = state
        .store
        .read(move |rx| {
            let id = project::named(project_id.as_ref())?;
            project_owned::registry::project_contents(rx, &org, id)
        })
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
