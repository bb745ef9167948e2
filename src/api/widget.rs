//! The widget config: its endpoints (OpenAPI document). One per project, with defaults until first
//! written.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::body_of;
use crate::api::scoped::InProject;
use crate::api::{State, ok};
use crate::error::ApiResult;
use crate::project_owned::Kind;
use crate::project_owned::widget::{self, WidgetConfig, WidgetUpdate};

pub async fn get_config(
    auth: Auth,
    project_id: web::Path<String>,
    state: State,
) -> ApiResult<HttpResponse> {
    let config = InProject::new(&auth, project_id.into_inner())
        .look_up(&state, widget::get)
        .await?;
    Ok(ok(config.view()))
}

/// Merges the body into the config and answers the whole config.
pub async fn update_config(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = WidgetUpdate::from_json(body)?;
    project
        .answer(
            &state,
            idempotent,
            StatusCode::OK,
            |config: &WidgetConfig| body_of(&config.view()),
            move |tx, scope, actor| widget::update(tx, scope, actor, input),
        )
        .await
}
