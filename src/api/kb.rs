//! Knowledge base: API.md §8 rows 16-22.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use crate::api::extract::{Auth, JsonBody, QueryParams};
use crate::api::list::{ListParams, enum_param, text_param};
use crate::api::scoped::InProject;
use crate::api::{State, created, ok};
use crate::error::{ApiError, ApiResult};
use crate::resources::kb::{
    self, Article, ArticleFields, ArticleFilter, ArticleStatus, BY_CREATED, BY_UPDATED, STATUSES,
};
use crate::resources::{self, Kind, Order, search};
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
            let filter = ArticleFilter {
                status: enum_param(&query, "status", STATUSES)?,
                category: text_param(&query, "category", SHORT_TEXT_MAX)?,
                q: text_param(&query, "q", SHORT_TEXT_MAX)?.map(|q| q.to_lowercase()),
            };
            let order = Order {
                tag: params.sort.tag(BY_CREATED, BY_UPDATED),
                group: b"",
                descending: params.descending,
            };
            resources::list::<Article>(
                rx,
                scope,
                order,
                params.cursor.as_ref(),
                params.limit,
                |a| filter.matches(a),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(page.render(Article::view)))
}

pub async fn create(
    auth: Auth,
    project_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let project = InProject::checked(&state, &auth, project_id.into_inner()).await?;
    let fields = ArticleFields::create_from_json(body.value().await?)?;
    let article = project
        .write(&state, move |tx, scope, actor| {
            kb::create(tx, scope, actor, fields)
        })
        .await?;
    Ok(created(article.view()))
}

pub async fn get(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let found = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            resources::get::<Article>(rx, scope, &id)
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
    let fields = ArticleFields::update_from_json(body.value().await?)?;
    let article = project
        .write(&state, move |tx, scope, actor| {
            kb::update(tx, scope, actor, &id, Some(fields))
        })
        .await?;
    Ok(ok(article.view()))
}

/// Publishes; idempotent. No body is read (the SDK sends none).
pub async fn publish(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let article = InProject::new(&auth, project_id)
        .write(&state, move |tx, scope, actor| {
            kb::update(tx, scope, actor, &id, None)
        })
        .await?;
    Ok(ok(article.view()))
}

pub async fn delete(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let deleted_id = id.clone();
    InProject::new(&auth, project_id)
        .write(&state, move |tx, scope, actor| {
            kb::delete(tx, scope, actor, &id)
        })
        .await?;
    Ok(ok(json!({"id": deleted_id, "deleted": true})))
}

#[derive(Serialize)]
struct SearchHit {
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
            slug: a.slug,
            category: a.category,
            status: a.status,
        })
        .collect();
    Ok(ok(hits))
}
