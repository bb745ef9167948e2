//! The audit log endpoint: docs/administration.md.

use actix_web::{HttpResponse, web};

use crate::api::extract::Auth;
use crate::api::response::State;
use crate::error::{ApiError, ApiResult};
use crate::org_owned::audit::{self, AuditEntry, AuditFilter};
use crate::pagination::{Cursor, parse_limit};
use crate::query::QueryParams;
use crate::timestamp::Timestamp;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

pub async fn list(
    auth: Auth,
    org_id: web::Path<String>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let org = auth.org(&org_id)?;
    let time = |name: &str| -> ApiResult<Option<Timestamp>> {
        query
            .get(name)
            .map(|raw| {
                Timestamp::parse(raw).ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be an RFC 3339 date-time"))
                })
            })
            .transpose()
    };
    let filter = AuditFilter {
        project_id: query.get("project_id").map(str::to_string),
        action: query.get("action").map(str::to_string),
        api_key_id: query.get("api_key_id").map(str::to_string),
        since: time("since")?,
        until: time("until")?,
    };
    let limit = parse_limit(query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = query.get("cursor").map(Cursor::decode).transpose()?;
    let page = state
        .store
        .read(move |rx| audit::list(rx, &org, &filter, cursor.as_ref(), limit))
        .await?;
    Ok(HttpResponse::Ok().json(page.render(AuditEntry::view)))
}
