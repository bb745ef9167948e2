//! Extractors: who is calling (`Auth`, `Master`), the body (`JsonBody`) and the query
//! (`QueryParams`, declared in `crate::query`). Authentication completes before a handler reads its body, so a request
//! without a key is a 401 even when its body is malformed.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::{LocalBoxFuture, Ready, ready};
use serde_json::Value;

use crate::api::access::{Access, RouteAccess};
use crate::api::state::AppState;
use crate::api::{origin, request_id};
use crate::auth;
use crate::auth::scope::{self, Required};
use crate::error::{ApiError, ApiResult, ErrorCode, Issue};
use crate::ids::OrgId;
use crate::org_owned::api_key::ApiKey;
use crate::org_owned::audit::Actor;
use crate::org_owned::idempotency;
use crate::org_owned::session;
use crate::query::QueryParams;
use crate::timestamp::Timestamp;

fn state(req: &HttpRequest) -> ApiResult<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

fn credential(req: &HttpRequest) -> Option<String> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    auth::presented_credential(header("x-api-key"), header("authorization")).map(str::to_string)
}

fn unauthorized(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// Looks up a presented org key; `None` for malformed, unknown, wrong-secret, revoked or
/// expired keys alike.
pub async fn usable_key(state: &AppState, token: &str) -> ApiResult<Option<Arc<ApiKey>>> {
    let Some(presented) = auth::parse_key(token) else {
        return Ok(None);
    };
    let secret_hash = auth::hash_secret(presented.secret);
    let key_id = presented.key_id;
    let key = state.keys.find(&state.store, &key_id).await?;
    Ok(key.filter(|k| {
        auth::hashes_match(&k.secret_hash, &secret_hash) && k.is_usable(Timestamp::now())
    }))
}

/// The cookie that holds a dashboard session's token (`api::session`).
pub const SESSION_COOKIE: &str = "riq_session";

/// The key a dashboard session stands for, while the session is current (not idle past
/// `dashboard.session_idle_hours`) and its key usable; `None` otherwise. A point read, then
/// the key cache; `last_seen_at` is written in the background, at most once a minute.
pub async fn session_key(state: &AppState, token: &str) -> ApiResult<Option<Arc<ApiKey>>> {
    let Some(hash) = session::token_hash(token) else {
        return Ok(None);
    };
    let Some(found) = state
        .store
        .look_up(move |rx| session::find(rx, &hash))
        .await?
    else {
        return Ok(None);
    };
    let now = Timestamp::now();
    let idle_secs = i64::try_from(state.dashboard.session_idle_hours * 3600).unwrap_or(i64::MAX);
    if found.is_idle(now, idle_secs) {
        return Ok(None);
    }
    let key = state
        .keys
        .find(&state.store, &found.key_id)
        .await?
        .filter(|k| k.is_usable(now));
    if key.is_some() && found.needs_touch(now) {
        let store = state.store.clone();
        actix_web::rt::spawn(async move {
            if let Err(err) = store.write(move |tx| session::touch(tx, &hash)).await {
                tracing::warn!(error = %err, "could not record session use");
            }
        });
    }
    Ok(key)
}

/// The id of the API key that authenticated the request, for the log line.
#[derive(Clone)]
pub struct AuthenticatedKeyId(pub String);

/// Who sends a request, as the rate limiter found out before routing; `Auth` takes it from the
/// request's extensions instead of looking the key up again.
pub enum Caller {
    Key(Arc<ApiKey>, Credential),
    /// No usable org key: none presented, or one that is malformed, unknown, revoked or
    /// expired (or the master key, which is no org key).
    Anonymous {
        presented: bool,
    },
}

/// How the caller presented its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `X-API-Key` or `Authorization: Bearer`.
    Header,
    /// The dashboard's session cookie, which a browser also sends with requests other sites
    /// make it send: writes must come from this server's own origin.
    Session,
}

/// Finds the caller's org key, if a usable one is presented: in a header, or else as a
/// dashboard session.
pub async fn identify(state: &AppState, req: &HttpRequest) -> ApiResult<Caller> {
    let (key, via) = if let Some(token) = credential(req) {
        (usable_key(state, &token).await?, Credential::Header)
    } else if let Some(cookie) = req
        .cookie(SESSION_COOKIE)
        .filter(|_| state.dashboard.enabled)
    {
        (
            session_key(state, cookie.value()).await?,
            Credential::Session,
        )
    } else {
        return Ok(Caller::Anonymous { presented: false });
    };
    Ok(match key {
        Some(key) => Caller::Key(key, via),
        None => Caller::Anonymous { presented: true },
    })
}

/// An authenticated org API key that holds the route's required scope, and the write
/// request's `Idempotency-Key`, if it carries one.
pub struct Auth {
    pub key: Arc<ApiKey>,
    request_id: String,
    idempotency: Option<KeyHeader>,
}

impl Auth {
    /// The write request's `Idempotency-Key` (`api::idempotency` makes its record request).
    pub fn idempotency_key(&self) -> Option<&KeyHeader> {
        self.idempotency.as_ref()
    }

    pub fn actor(&self) -> Actor {
        Actor {
            api_key_id: Some(self.key.id.to_string()),
            request_id: Some(self.request_id.clone()),
            public: false,
        }
    }

    /// The key's organisation, if it is the one the path segment `org_id` names (else 403
    /// `API_KEY_ORG_MISMATCH`).
    pub fn org(&self, org_id: &str) -> ApiResult<OrgId> {
        if self.key.org_id == *org_id {
            Ok(self.key.org_id.clone())
        } else {
            Err(ApiError::new(
                ErrorCode::ApiKeyOrgMismatch,
                "API key is not authorized for this organisation",
            ))
        }
    }
}

/// The scope a key needs on this route; `None` when any usable key will do.
fn required_scope(req: &HttpRequest) -> ApiResult<Option<Required>> {
    // HEAD is a GET for scope purposes (docs/api/README.md).
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    match req
        .app_data::<RouteAccess>()
        .and_then(|access| access.get(&method))
    {
        Some(Access::Key(required)) => Ok(Some(required)),
        Some(Access::AnyKey) => Ok(None),
        _ => Err(ApiError::internal(format!(
            "no scope declared for {method} {}",
            req.path()
        ))),
    }
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, ApiResult<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let required = required_scope(&req)?;
            let caller = req.extensions_mut().remove::<Caller>();
            let key = match caller {
                Some(Caller::Key(key, via)) => {
                    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
                    let trusted = &state.rate_limit.trusted_proxies;
                    if via == Credential::Session && !safe && !origin::is_same_origin(&req, trusted)
                    {
                        return Err(ApiError::new(
                            ErrorCode::Forbidden,
                            "A dashboard session writes only from the dashboard's own origin",
                        ));
                    }
                    key
                }
                Some(Caller::Anonymous { presented: false }) => {
                    return Err(unauthorized("Missing API key"));
                }
                Some(Caller::Anonymous { presented: true }) => {
                    return Err(unauthorized("Invalid API key"));
                }
                None => return Err(ApiError::internal("the caller was not identified")),
            };
            state.note_key_use(&key);
            if let Some(required) = required
                && !scope::any_covers(&key.scopes, required)
            {
                return Err(ApiError::new(
                    ErrorCode::InsufficientScope,
                    format!("This API key lacks the scope {required}"),
                ));
            }
            // After the scope: a request the key may not make is refused as such first.
            let idempotency = KeyHeader::read(&req)?;
            Ok(Auth {
                key,
                request_id: request_id::current(),
                idempotency,
            })
        })
    }
}

/// The `Idempotency-Key` request header, as API clients spell it (docs/api/idempotency.md).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The routes whose writes take an `Idempotency-Key`.
const KEYED_PREFIX: &str = "/api/v1/";

/// A write request's `Idempotency-Key`, as `Auth` and `Master` read it once the caller is
/// known; `api::idempotency` turns it into the request's record.
#[derive(Debug, Clone)]
pub struct KeyHeader {
    pub key: String,
    pub method: Method,
    pub path: String,
}

impl KeyHeader {
    /// The key of a POST, PATCH or DELETE under `/api/v1/`: `None` when it carries none (or is
    /// a read, or elsewhere); 400 `BAD_REQUEST` naming the header when it is malformed.
    fn read(req: &HttpRequest) -> ApiResult<Option<KeyHeader>> {
        if !req.path().starts_with(KEYED_PREFIX)
            || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        {
            return Ok(None);
        }
        let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid_key("must be sent once"));
        }
        // HTTP drops the spaces around a value, so a key of spaces arrives empty.
        let key = value
            .to_str()
            .ok()
            .ok_or("must be printable ASCII characters only")
            .and_then(|key| idempotency::check_key(key).map_or(Ok(key), Err))
            .map_err(invalid_key)?;
        Ok(Some(KeyHeader {
            key: key.to_string(),
            method: req.method().clone(),
            path: req.path().to_string(),
        }))
    }

    /// Refuses a key on a route that takes none: the public browser endpoints have no API key
    /// to hold it, and any visitor could otherwise read another's replay by guessing the key.
    pub fn refuse(req: &HttpRequest) -> ApiResult<()> {
        if req.headers().contains_key(IDEMPOTENCY_KEY) {
            return Err(invalid_key(
                "is not accepted on the public endpoints, which take no API key to scope it to",
            ));
        }
        Ok(())
    }
}

fn invalid_key(problem: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid {IDEMPOTENCY_KEY} header")).with_issues(vec![
        Issue::new(IDEMPOTENCY_KEY, format!("{IDEMPOTENCY_KEY} {problem}")),
    ])
}

/// The master key, for the admin API (docs/administration.md), and the request's `Idempotency-Key`.
pub struct Master {
    request_id: String,
    idempotency: Option<KeyHeader>,
}

impl Master {
    pub fn actor(&self) -> Actor {
        Actor::master(Some(self.request_id.clone()))
    }

    /// The write request's `Idempotency-Key`.
    pub fn idempotency_key(&self) -> Option<&KeyHeader> {
        self.idempotency.as_ref()
    }
}

impl FromRequest for Master {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, ApiResult<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            if !state.master.is_set() {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "The admin API is disabled: set master_key in the config file or \
                     ROGERIQ_MASTER_KEY (at least 16 characters) and restart the server",
                ));
            }
            let token = credential(&req).ok_or_else(|| unauthorized("Missing master key"))?;
            if state.master.verify(&token) {
                return Ok(Master {
                    request_id: request_id::current(),
                    idempotency: KeyHeader::read(&req)?,
                });
            }
            // The rate limiter already identified the caller; an org key is told why it fails.
            let org_key = matches!(req.extensions().get::<Caller>(), Some(Caller::Key(..)));
            if org_key {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "Org API keys cannot use the admin API",
                ));
            }
            Err(unauthorized("Invalid master key"))
        })
    }
}

/// A request body, read only when the handler asks for it, after authentication.
pub struct JsonBody {
    payload: Payload,
    limit: usize,
    /// `Content-Length` already says the body is too large; reported when the body is read.
    declared_too_large: bool,
    /// How long the whole body may take to arrive (`body_timeout_secs`).
    timeout: Duration,
}

/// The answer to a body over `max_body_bytes`.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::bad_request(format!("Request body is larger than {limit} bytes"))
}

impl JsonBody {
    /// Reads the body, capped at the configured size and time, as bytes. A client that stalls
    /// is answered once the time is up, and its connection is closed rather than held.
    pub async fn bytes(self) -> ApiResult<web::BytesMut> {
        let JsonBody {
            mut payload,
            limit,
            declared_too_large,
            timeout,
        } = self;
        if declared_too_large {
            return Err(too_large(limit));
        }
        let read = async {
            let mut bytes = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_request(format!("Could not read the request body: {e}"))
                })?;
                if bytes.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        actix_web::rt::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::bad_request(format!(
                    "Request body not received within {} s",
                    timeout.as_secs()
                )))
            })
    }

    /// Reads the body, capped at the configured size, as a JSON value. A missing
    /// `Content-Type` is taken as JSON (docs/api/README.md).
    pub async fn value(self) -> ApiResult<Value> {
        JsonBody::parse(&self.bytes().await?)
    }

    /// Like `value`, for routes whose body may be left out: an empty body is `None`.
    pub async fn optional_value(self) -> ApiResult<Option<Value>> {
        let bytes = self.bytes().await?;
        if is_blank(&bytes) {
            return Ok(None);
        }
        JsonBody::parse(&bytes).map(Some)
    }

    /// A body already read, as JSON: empty or malformed is 400 `BAD_JSON`; exactly `null` is
    /// no fields, `{}` (docs/api/README.md).
    pub fn parse(bytes: &[u8]) -> ApiResult<Value> {
        if is_blank(bytes) {
            return Err(ApiError::new(
                ErrorCode::BadJson,
                "Request body is empty; expected a JSON object",
            ));
        }
        match serde_json::from_slice(bytes) {
            Ok(Value::Null) => Ok(Value::Object(serde_json::Map::new())),
            Ok(value) => Ok(value),
            Err(e) => Err(ApiError::new(
                ErrorCode::BadJson,
                format!("Malformed JSON: {e}"),
            )),
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Ready<ApiResult<Self>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(state(req).map(|state| {
            let limit = state.max_body_bytes;
            let timeout = state.body_timeout;
            let declared = req
                .headers()
                .get(actix_web::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            // Not an error yet: the extractors of a handler are polled together, so failing here
            // could answer 400 before `Auth` has answered 401/403 (docs/administration.md).
            let declared_too_large = declared.is_some_and(|n| n > limit);
            JsonBody {
                payload: payload.take(),
                limit,
                declared_too_large,
                timeout,
            }
        }))
    }
}

impl FromRequest for QueryParams {
    type Error = ApiError;
    type Future = Ready<ApiResult<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .map(|pairs| QueryParams::from_pairs(pairs.into_inner()))
                .map_err(|_| ApiError::bad_request("Malformed query string")),
        )
    }
}
