//! Org API keys: docs/administration.md, and `auth/whoami`, a key describing itself.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::api::extract::{Auth, JsonBody};
use crate::api::idempotency::body_of;
use crate::api::response::{State, ok};
use crate::error::ApiResult;
use crate::ids::ApiKeyId;
use crate::org_owned::api_key::{self, ApiKey, CreatedKeyView, KeyCreate};
use crate::timestamp::Timestamp;

pub async fn list(auth: Auth, org_id: web::Path<String>, state: State) -> ApiResult<HttpResponse> {
    let org = auth.org(&org_id)?;
    let found = state.store.read(move |rx| api_key::list(rx, &org)).await?;
    Ok(ok(found.iter().map(ApiKey::view).collect::<Vec<_>>()))
}

pub async fn create(
    auth: Auth,
    org_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    let org = auth.org(&org_id)?;
    let (body, idempotent) = auth.read_body(body).await?;
    let input = KeyCreate::from_json(body, Timestamp::now(), state.rate_limit.default_tier)?;
    input.check_grantable(&auth.key.scopes)?;
    let actor = auth.actor();
    idempotent
        .write_new_key(&state, move |tx| {
            let (key, secret) = api_key::create(tx, &actor, &org, input)?;
            Ok(CreatedKeyView {
                view: key.view(),
                key: secret,
            })
        })
        .await
}

pub async fn revoke(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (org_id, key_id) = path.into_inner();
    let org = auth.org(&org_id)?;
    let key_id = ApiKeyId::parse(&key_id);
    let actor = auth.actor();
    // A revoke must work whatever the disk: it runs below `store.min_free_mb` too.
    auth.idempotent(None)
        .freeing()
        .write(&state, StatusCode::OK, body_of, move |tx| {
            let key_id = api_key::named(key_id.as_ref())?;
            let (key, already_revoked) = api_key::revoke(tx, &actor, &org, key_id)?;
            // docs/administration.md answers `{id, revoked}`; `already_revoked` tells a repeat from
            // the first.
            Ok(json!({"id": key.id, "revoked": true, "already_revoked": already_revoked}))
        })
        .await
}

/// The calling key's own record, secret excluded: how a client holding only a key learns its
/// organisation (the CLI does, when no org is configured). A self-hosting addition; any usable
/// key may ask, whatever its scopes.
pub async fn whoami(auth: Auth) -> ApiResult<HttpResponse> {
    Ok(ok(auth.key.view()))
}
