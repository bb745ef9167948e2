//! A conversation's messages: its endpoints (OpenAPI document). Conversations themselves use the
//! generic routes of `owned`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::body_of;
use crate::api::response::State;
use crate::api::scoped::InProject;
use crate::error::ApiResult;
use crate::project_owned::conversation::Conversation;
use crate::project_owned::message::{self, IN_CONVERSATION, Message, MessageCreate};
use crate::project_owned::{self, Id, Kind, Order};
use crate::query::{ListParams, QueryParams};

/// Messages oldest first; `limit` defaults to 100.
pub async fn list_messages(
    auth: Auth,
    path: web::Path<(String, String)>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, conversation_id) = path.into_inner();
    let conversation_id = Id::<Conversation>::parse(&conversation_id);
    let page = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            let params = ListParams::paged(&query, 100, 100)?;
            let parent: Conversation = project_owned::get(rx, scope, Id::found(&conversation_id)?)?;
            let order = Order {
                tag: IN_CONVERSATION,
                group: parent.id.as_bytes(),
                descending: false,
            };
            project_owned::list::<Message>(
                rx,
                scope,
                order,
                params.cursor.as_ref(),
                params.limit,
                |_| true,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(page.render(Message::view)))
}

pub async fn post_message(
    auth: Auth,
    path: web::Path<(String, String)>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, conversation_id) = path.into_inner();
    let conversation_id = Id::<Conversation>::parse(&conversation_id);
    let project = InProject::checked(&state, &auth, project_id).await?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = MessageCreate::from_json(body)?;
    project
        .answer(
            &state,
            idempotent,
            StatusCode::CREATED,
            |posted: &Message| body_of(&posted.view()),
            move |tx, scope, actor| {
                message::post(tx, scope, actor, Id::found(&conversation_id)?, input)
            },
        )
        .await
}
