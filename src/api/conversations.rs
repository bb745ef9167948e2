//! Conversations and their messages: API.md §8 rows 6-11.

use actix_web::{HttpResponse, web};

use crate::api::extract::{Auth, JsonBody, QueryParams};
use crate::api::list::{ListParams, enum_param, text_param};
use crate::api::scoped::InProject;
use crate::api::{State, created, ok};
use crate::error::ApiResult;
use crate::resources::conversation::{
    self, BY_CREATED, BY_UPDATED, CHANNELS, Conversation, ConversationCreate, ConversationFilter,
    ConversationUpdate, PRIORITIES, STATUSES,
};
use crate::resources::message::{self, IN_CONVERSATION, Message, MessageCreate};
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
            let params = ListParams::sorted(&query, 50, 100)?;
            let filter = ConversationFilter {
                status: enum_param(&query, "status", STATUSES)?,
                priority: enum_param(&query, "priority", PRIORITIES)?,
                channel: enum_param(&query, "channel", CHANNELS)?,
                assigned_to: text_param(&query, "assigned_to", SHORT_TEXT_MAX)?,
                contact_id: text_param(&query, "contact_id", SHORT_TEXT_MAX)?,
                q: text_param(&query, "q", SHORT_TEXT_MAX)?.map(|q| q.to_lowercase()),
            };
            let order = Order {
                tag: params.sort.tag(BY_CREATED, BY_UPDATED),
                group: b"",
                descending: params.descending,
            };
            resources::list::<Conversation>(
                rx,
                scope,
                order,
                params.cursor.as_ref(),
                params.limit,
                |c| filter.matches(c),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(page.render(Conversation::view)))
}

pub async fn create(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let input = ConversationCreate::from_json(body.value().await?)?;
    let created_conversation = project
        .write(&state, move |tx, scope, actor| {
            conversation::create(tx, scope, actor, input)
        })
        .await?;
    Ok(created(created_conversation.view()))
}

pub async fn get(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let found = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            resources::get::<Conversation>(rx, scope, &id)
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
    let input = ConversationUpdate::from_json(body.value().await?)?;
    let updated = project
        .write(&state, move |tx, scope, actor| {
            conversation::update(tx, scope, actor, &id, input)
        })
        .await?;
    Ok(ok(updated.view()))
}

pub async fn list_messages(
    auth: Auth,
    path: web::Path<(String, String)>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, conversation_id) = path.into_inner();
    let page = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            let params = ListParams::paged(&query, 100, 100)?;
            let parent: Conversation = resources::get(rx, scope, &conversation_id)?;
            let order = Order {
                tag: IN_CONVERSATION,
                group: parent.id.as_bytes(),
                descending: false,
            };
            resources::list::<Message>(
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
    let project = InProject::checked(&state, &auth, project_id).await?;
    let input = MessageCreate::from_json(body.value().await?)?;
    let posted = project
        .write(&state, move |tx, scope, actor| {
            message::post(tx, scope, actor, &conversation_id, input)
        })
        .await?;
    Ok(created(posted.view()))
}
