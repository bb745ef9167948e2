//! What happens on a connection outside the app: the answer to `Expect: 100-continue`, given
//! before the client sends its body, and the log line of a connection that the HTTP layer gave
//! up on (malformed request, oversized head, timeout), with the peer's address.

use std::net::SocketAddr;

use actix_http::error::DispatchError;
use actix_http::{ConnectionType, Request};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, web};

use crate::api::extract;
use crate::api::request_id::REQUEST_ID_NAME;
use crate::api::state::AppState;
use crate::api::{browser, error, limits};
use crate::auth;
use crate::error::{ApiError, ErrorCode};
use crate::ids;

/// Answers `Expect: 100-continue` (docs/api/README.md): the request goes on, and the client is told
/// to send its body, only when the body would be accepted. A declared length over
/// `max_body_bytes`, or an API request without a usable key (org key or master key), is
/// refused at once, so an unauthenticated client cannot make the server read an upload. The
/// public browser endpoints (`POST /api/v1/f/{formId}`) take no key.
pub async fn expect_continue(
    state: &web::Data<AppState>,
    req: Request,
) -> Result<Request, actix_web::Error> {
    let refusal = match refusal(state, &req).await {
        Ok(None) => return Ok(req),
        Ok(Some(refusal)) => refusal,
        Err(err) => err,
    };
    let request_id = ids::request_id();
    tracing::info!(
        method = %req.method(),
        path = %req.path(),
        status = error::status(refusal.code()).as_u16(),
        request_id = %request_id,
        "expect refused"
    );
    let mut response = error::render(&refusal, request_id.clone());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_NAME, value);
    }
    // The client may send the body anyway; it must not be read as the next request.
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Err(InternalError::from_response(refusal, response).into())
}

/// Why a request announcing its body should not send it, if it should not.
async fn refusal(state: &AppState, req: &Request) -> Result<Option<ApiError>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes as u64) {
        return Ok(Some(extract::too_large(state.max_body_bytes)));
    }
    if !req.path().starts_with(limits::LIMITED_PREFIX) || browser::is_browser_path(req.path()) {
        return Ok(None);
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let Some(token) = auth::presented_credential(header("x-api-key"), header("authorization"))
    else {
        return Ok(Some(ApiError::new(
            ErrorCode::Unauthorized,
            "Missing API key",
        )));
    };
    if state.master.verify(token) || extract::usable_key(state, token).await?.is_some() {
        return Ok(None);
    }
    Ok(Some(ApiError::new(
        ErrorCode::Unauthorized,
        "Invalid API key",
    )))
}

/// Logs why the HTTP layer closed a connection. What a client did (a malformed request, a head
/// or URI too long, a timeout, a dropped connection) is logged at debug level, so anyone can
/// not flood the log; only a failure of the server itself is an error.
pub fn log_dropped(peer: Option<SocketAddr>, err: &DispatchError) {
    use DispatchError as E;
    let peer = peer.map_or_else(|| "-".to_string(), |p| p.to_string());
    match err {
        E::Parse(_)
        | E::Io(_)
        | E::SlowRequestTimeout
        | E::DisconnectTimeout
        | E::HandlerDroppedPayload => {
            tracing::debug!(peer = %peer, error = %err, "connection closed: client error");
        }
        _ => tracing::error!(peer = %peer, error = %err, "connection failed"),
    }
}
