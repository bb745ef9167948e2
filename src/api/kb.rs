//! Knowledge base: publish and search (its endpoints (OpenAPI document)). Articles are listed,
//! created, read, updated and deleted by the generic routes of `owned`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::api::extract::Auth;
use crate::api::idempotency::body_of;
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::error::{ApiError, ApiResult};
use crate::project_owned::kb::{self, Article, ArticleStatus};
use crate::project_owned::{Id, Kind, search};
use crate::query::{QueryParams, text_param};

/// Publishes; idempotent. No body is read (the SDK sends none).
pub async fn publish(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let id = Id::<Article>::parse(&id);
    InProject::new(&auth, project_id)
        .answer(
            &state,
            auth.idempotent(None),
            StatusCode::OK,
            |article: &Article| body_of(&article.view()),
            move |tx, scope, actor| kb::publish(tx, scope, actor, Id::found(&id)?),
        )
        .await
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SearchHit {
    id: String,
    title: String,
    score: f64,
    content: String,
    slug: String,
    category: Option<String>,
    status: ArticleStatus,
}

pub async fn search(
    auth: Auth,
    project_id: web::Path<String>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let hits = InProject::new(&auth, project_id.into_inner())
        .read(&state, move |rx, scope| {
            let q = text_param(&query, "q", search::MAX_QUERY_CHARS)?
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| ApiError::bad_request("q is required"))?;
            kb::search(rx, scope, &q)
        })
        .await?;
    let hits: Vec<SearchHit> = hits
        .into_iter()
        .map(|(a, score)| SearchHit {
            id: a.id,
            title: a.title,
            score,
            content: a.content,
            slug: a.slug.into(),
            category: a.category,
            status: a.status,
        })
        .collect();
    Ok(ok(hits))
}
