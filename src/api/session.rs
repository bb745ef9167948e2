//! The dashboard's session endpoint, `/dashboard/session`: sign in with an org API key (POST),
//! who is signed in (GET), sign out (DELETE). Signing in stores a session (`org_owned::session`)
//! and sets its token in an `HttpOnly; SameSite=Strict` cookie; the key itself stays on the
//! server side of the sign-in request. The `Auth` extractor then takes the cookie for the key.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use crate::api::extract::{self, Caller, JsonBody, SESSION_COOKIE};
use crate::api::response::{State, ok};
use crate::api::{limits, origin};
use crate::auth::{SecretHash, scope};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org_owned::api_key::ApiKey;
use crate::org_owned::{org, session};
use crate::project_owned::webhooks::webhook;
use crate::validate::{Input, trimmed};

/// Longest value taken for a key: real keys are 49 characters.
const MAX_KEY_CHARS: usize = 200;

/// `POST /dashboard/session` with `{"key": "riq_…"}`: starts a session of that key.
pub async fn sign_in(req: HttpRequest, body: JsonBody, state: State) -> ApiResult<HttpResponse> {
    same_origin(&req, &state)?;
    // Every attempt counts in the client's anonymous bucket, like a request with a bad key.
    let (decision, _) = limits::decide(&state, &req, &Caller::Anonymous { presented: true });
    if !decision.allowed {
        return Err(ApiError::rate_limited(decision.retry_after()));
    }
    let mut input = Input::new(body.value().await?)?;
    let presented = input.required("key", trimmed(1, MAX_KEY_CHARS));
    let presented = input.finish_with(|| presented)?;
    let key = extract::usable_key(&state, &presented)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "Invalid API key"))?;
    let token = session::new_token();
    let hash =
        session::token_hash(&token).ok_or_else(|| ApiError::internal("malformed session token"))?;
    // Signing in again from the same browser replaces its session.
    let previous = current_hash(&req);
    let started = Arc::clone(&key);
    state
        .store
        .write(move |tx| {
            if let Some(previous) = previous {
                session::end(tx, &previous)?;
            }
            session::start(tx, &started, &hash)
        })
        .await?;
    let cookie = Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(origin::is_https(&req, &state.rate_limit.trusted_proxies))
        .finish();
    let mut response = private(ok(describe(&state, &key).await?));
    response
        .add_cookie(&cookie)
        .map_err(|e| ApiError::internal_from("session cookie", e))?;
    Ok(response)
}

/// `GET /dashboard/session`: the signed-in key and its organisation, or 401.
pub async fn current(req: HttpRequest, state: State) -> ApiResult<HttpResponse> {
    let key = match req.cookie(SESSION_COOKIE) {
        Some(cookie) => extract::session_key(&state, cookie.value()).await?,
        None => None,
    };
    let key = key.ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "Not signed in"))?;
    Ok(private(ok(describe(&state, &key).await?)))
}

/// `DELETE /dashboard/session`: ends the session and clears its cookie.
pub async fn sign_out(req: HttpRequest, state: State) -> ApiResult<HttpResponse> {
    same_origin(&req, &state)?;
    if let Some(hash) = current_hash(&req) {
        state
            .store
            .write_freeing(move |tx| session::end(tx, &hash))
            .await?;
    }
    let mut response = ok(json!({"signed_out": true}));
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    response
        .add_cookie(&gone)
        .map_err(|e| ApiError::internal_from("session cookie", e))?;
    Ok(response)
}

/// The stored hash of the session the request's cookie names, if it names one.
fn current_hash(req: &HttpRequest) -> Option<SecretHash> {
    req.cookie(SESSION_COOKIE)
        .and_then(|cookie| session::token_hash(cookie.value()))
}

/// Keeps a description of the signed-in key out of every cache.
fn private(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Refuses a sign-in or sign-out from another origin: a page elsewhere must neither sign the
/// browser in to a key of its choosing nor out.
fn same_origin(req: &HttpRequest, state: &State) -> ApiResult<()> {
    if origin::is_same_origin(req, &state.rate_limit.trusted_proxies) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Forbidden,
        "Sign in and out from the dashboard's own page",
    ))
}

/// What the page needs to know of its key: the key (no secret), its organisation, the
/// strongest verb it holds on each resource, and the values its forms offer.
async fn describe(state: &State, key: &ApiKey) -> ApiResult<Value> {
    let org_id = key.org_id.clone();
    let org = state
        .store
        .look_up(move |rx| org::get(rx, &org_id))
        .await?
        .ok_or_else(|| ApiError::internal("a key's organisation is missing"))?;
    let access: Map<String, Value> = scope::access(&key.scopes)
        .into_iter()
        .map(|(resource, verb)| (resource.to_string(), json!(verb)))
        .collect();
    let events: Vec<String> = std::iter::once("*".to_string())
        .chain(webhook::GROUPS.iter().map(|g| format!("{g}.*")))
        .chain(webhook::EVENTS.iter().map(|e| e.to_string()))
        .collect();
    Ok(json!({
        "org": org.view(),
        "key": key.view(),
        "access": access,
        "scopes": scope::every_scope(),
        "webhook_events": events,
    }))
}
