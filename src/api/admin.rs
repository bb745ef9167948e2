//! The admin API, authenticated by the master key: API.md §18.1.

use actix_web::{HttpResponse, web};

use crate::api::extract::{JsonBody, Master};
use crate::api::{State, created, ok};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org_owned::api_key::{self, CreatedKeyView, KeyCreate};
use crate::org_owned::org::{self, Org, OrgCreate};

pub async fn list_orgs(_master: Master, state: State) -> ApiResult<HttpResponse> {
    let orgs = state.store.read(org::list).await?;
    Ok(ok(orgs.iter().map(Org::view).collect::<Vec<_>>()))
}

pub async fn create_org(master: Master, body: JsonBody, state: State) -> ApiResult<HttpResponse> {
    let input = OrgCreate::from_json(body.value().await?)?;
    let actor = master.actor();
    let org = state
        .store
        .write(move |tx| org::create(tx, &actor, input))
        .await?;
    Ok(created(org.view()))
}

/// Mints a key for an organisation; the master key may grant any scope.
pub async fn create_key(
    master: Master,
    org_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let org_id = org_id.into_inner();
    let input = KeyCreate::from_json(body.value().await?, state.rate_limit.default_tier)?;
    let actor = master.actor();
    let (key, secret) = state
        .store
        .write(move |tx| {
            org::get(tx, &org_id)?.ok_or_else(|| {
                ApiError::new(ErrorCode::ResourceNotFound, "Organization not found")
            })?;
            api_key::create(tx, &actor, &org_id, input)
        })
        .await?;
    Ok(created(CreatedKeyView {
        view: key.view(),
        key: secret,
    }))
}
