//! A project's configurations (`…/widget/config`, `…/agent/config`): one pair of handlers for
//! every `ProjectConfig`, read with GET and merged into with PATCH.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::body_of;
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::error::ApiResult;
use crate::project_owned::singleton::ProjectConfig;

pub async fn get<K: ProjectConfig>(
    auth: Auth,
    project_id: web::Path<String>,
    state: State,
) -> ApiResult<HttpResponse> {
    let config = InProject::new(&auth, project_id.into_inner())
        .look_up(&state, |rx, scope| K::read(rx, scope))
        .await?;
    Ok(ok(config))
}

/// Merges the body into the configuration and answers the whole of it.
pub async fn update<K: ProjectConfig>(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = K::parse_update(body)?;
    project
        .answer(
            &state,
            idempotent,
            StatusCode::OK,
            body_of::<K::View>,
            move |tx, scope, actor| K::update(tx, scope, actor, input),
        )
        .await
}
