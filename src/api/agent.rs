//! The agent: its endpoints (OpenAPI document). respond, classify and suggest read the conversation
//! in one transaction, ask the responder outside any transaction, then write in another.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::Claim;
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::error::ApiResult;
use crate::project_owned::agent::{self, AgentRequest, Context, TaskKind};

pub async fn status(
    auth: Auth,
    project_id: web::Path<String>,
    state: State,
) -> ApiResult<HttpResponse> {
    let default_model = state.agent.default_model.clone();
    let status = InProject::new(&auth, project_id.into_inner())
        .read(&state, move |rx, scope| {
            agent::status(rx, scope, &default_model)
        })
        .await?;
    Ok(ok(status))
}

pub async fn respond(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    run(TaskKind::Respond, auth, project_id, body, state).await
}

pub async fn classify(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    run(TaskKind::Classify, auth, project_id, body, state).await
}

pub async fn suggest(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    run(TaskKind::Suggest, auth, project_id, body, state).await
}

/// Read the context, think outside any transaction (a model call may take seconds), commit.
/// With an `Idempotency-Key` the key is claimed first, so a retry meanwhile asks no model.
async fn run(
    kind: TaskKind,
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let request = AgentRequest::from_json(kind, body)?;
    let thinking = Duration::from_secs(state.agent.timeout_secs);
    let mut held = match idempotent.claim(&state, thinking).await? {
        Claim::Answered(replay) => return Ok(replay),
        Claim::Held(held) => held,
    };
    let default_model = state.agent.default_model.clone();
    let context = project
        .read(&state, move |rx, scope| {
            Context::load(rx, scope, request, &default_model)
        })
        .await;
    let context = held.or_release(context).await?;
    let outcome = agent::think(&state.responder(), context).await;
    let outcome = held.or_release(outcome).await?;
    held.finish(
        StatusCode::OK,
        project.in_tx(move |tx, scope, actor| outcome.commit(tx, scope, actor)),
    )
    .await
}
