//! The per-request context: a request id for every response, one log line and one count in the
//! metrics per request, JSON errors even for panics and CORS refusals, and the CORS rules:
//! actix-cors from `[cors]`, and the public browser endpoints' own around it.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_cors::{Cors, CorsError};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use futures_util::FutureExt;

use crate::api::browser;
use crate::api::error;
use crate::api::extract::{AuthenticatedKeyId, IDEMPOTENCY_KEY};
use crate::api::idempotency;
use crate::api::limits;
use crate::api::request_id::{self, REQUEST_ID_HEADER, REQUEST_ID_NAME};
use crate::api::response::State;
use crate::api::routes::RoutePattern;
use crate::config::{AllowedOrigin, CorsSettings};
use crate::error::ApiError;
use crate::ids;
use crate::metrics::{UNKNOWN_ROUTE, UNMATCHED_ROUTE};
use crate::store::panic_message;

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = ids::request_id();
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    // Cloned before the call: a failed call takes the request, and its route, with it.
    let state = req.app_data::<State>().cloned();
    let origin = req.headers().get(header::ORIGIN).cloned();

    let outcome = request_id::scope(
        request_id.clone(),
        AssertUnwindSafe(next.call(req)).catch_unwind(),
    )
    .await;
    let failure = match outcome {
        Ok(Ok(response)) => {
            let mut response = json_cors_refusal(response.map_into_boxed_body(), &request_id);
            add_headers(response.headers_mut(), &request_id);
            let request = response.request();
            let key_id = request
                .extensions()
                .get::<AuthenticatedKeyId>()
                .map(|k| k.0.clone());
            let route: Option<Cow<'static, str>> = match request.app_data::<RoutePattern>() {
                Some(pattern) => Some(Cow::Borrowed(pattern.0)),
                // Routes outside the table (the metrics endpoint) and unknown paths.
                None => request.match_pattern().map(Cow::Owned),
            };
            if let Some(state) = &state {
                state.metrics.request(
                    method.as_str(),
                    route.as_deref().unwrap_or(UNMATCHED_ROUTE),
                    response.status().as_u16(),
                    started.elapsed(),
                );
            }
            log_request(
                &method,
                route.as_deref().unwrap_or("-"),
                response.status().as_u16(),
                started,
                &request_id,
                key_id.as_deref(),
            );
            return Ok(response);
        }
        // The request moved into the failed call, so the response is rendered as an error that
        // the server turns into a response; it carries the request id itself.
        Ok(Err(err)) => error::from_framework(&err),
        Err(panic) => ApiError::internal(format!(
            "handler panicked: {}",
            panic_message(panic.as_ref())
        )),
    };
    if let Some(state) = &state {
        let status = error::status(failure.code()).as_u16();
        state
            .metrics
            .request(method.as_str(), UNKNOWN_ROUTE, status, started.elapsed());
    }
    log_request(
        &method,
        &path,
        error::status(failure.code()).as_u16(),
        started,
        &request_id,
        None,
    );
    // The CORS layer never saw this answer (a panic, or an error that took the request), so a
    // browser could not read it without these.
    let allow_origin = state
        .as_ref()
        .and_then(|state| allowed_origin(&state.cors, origin.as_ref()?));
    Err(FailedRequest {
        error: failure,
        request_id,
        allow_origin,
    }
    .into())
}

fn log_request(
    method: &Method,
    route: &str,
    status: u16,
    started: Instant,
    request_id: &str,
    key_id: Option<&str>,
) {
    tracing::info!(
        method = %method,
        route = %route,
        status,
        // To a tenth of a millisecond: finer digits are noise.
        latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
        request_id = %request_id,
        key_id = key_id.unwrap_or("-"),
        "request"
    );
}

/// An error rendered outside the request's scope, with its request id attached.
#[derive(Debug)]
struct FailedRequest {
    error: ApiError,
    request_id: String,
    /// `Access-Control-Allow-Origin` for the request's origin, when the CORS rules allow it.
    allow_origin: Option<HeaderValue>,
}

impl std::fmt::Display for FailedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for FailedRequest {
    fn status_code(&self) -> actix_web::http::StatusCode {
        error::status(self.error.code())
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = error::render(&self.error, self.request_id.clone());
        let headers = response.headers_mut();
        add_headers(headers, &self.request_id);
        if let Some(origin) = &self.allow_origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            expose_headers(headers);
        }
        response
    }
}

/// The response headers a browser may read (docs/api/README.md), and a replay's.
const EXPOSED_HEADERS: [&str; 8] = [
    REQUEST_ID_HEADER,
    limits::LIMIT,
    limits::REMAINING,
    limits::RESET,
    limits::TIER,
    "retry-after",
    idempotency::REPLAYED,
    idempotency::AGE,
];

/// Lets a browser read `EXPOSED_HEADERS` of an answer that actix-cors did not make.
fn expose_headers(headers: &mut HeaderMap) {
    if let Ok(exposed) = HeaderValue::from_str(&EXPOSED_HEADERS.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed);
    }
}

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: usize = 600;

/// What `cors` answers an actual request from `origin` with: `*` when any origin is allowed,
/// the origin itself when it is one of the allowed ones, else nothing.
fn allowed_origin(settings: &CorsSettings, origin: &HeaderValue) -> Option<HeaderValue> {
    let origins = &settings.allowed_origins;
    if origins.iter().any(|o| o.as_str() == AllowedOrigin::ANY) {
        return Some(HeaderValue::from_static("*"));
    }
    let origin_text = origin.to_str().ok()?;
    origins
        .iter()
        .any(|o| o.as_str() == origin_text)
        .then(|| origin.clone())
}

/// The CORS rules of docs/api/README.md: preflights are answered here, before the rate limit,
/// routing and authentication, for the configured origins (any, by default).
pub fn cors(settings: &CorsSettings) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"])
        // The SDK also sets `User-Agent` (docs/api/README.md), which some browsers send and then
        // name in the preflight.
        .allowed_headers([
            "X-API-Key",
            "Authorization",
            "Content-Type",
            "Accept",
            "User-Agent",
            IDEMPOTENCY_KEY,
        ])
        .expose_headers(EXPOSED_HEADERS)
        .max_age(PREFLIGHT_MAX_AGE);
    let origins = &settings.allowed_origins;
    if origins.iter().any(|o| o.as_str() == AllowedOrigin::ANY) {
        return cors.allow_any_origin().send_wildcard();
    }
    origins
        .iter()
        .fold(cors, |cors, origin| cors.allowed_origin(origin.as_str()))
}

/// The CORS of the public browser endpoints (`browser`), around actix-cors (which answers
/// every other path from `[cors]`): each follows the `allowed_origins` of the form or beacon
/// its path names. A preflight from an origin that object allows is answered here (200, that
/// origin, the path's method); from any other origin, or for an object that does not exist,
/// it is refused with 400 `BAD_REQUEST`, as actix-cors refuses one. Other answers carry
/// `Access-Control-Allow-Origin` (and the exposed headers) only for an allowed origin, in place
/// of what actix-cors added. Archived or closed objects keep their origin rules, so that a page
/// can read their 410 or 403.
pub async fn browser_cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let named = browser::Named::of(req.path());
    let origin = req.headers().get(header::ORIGIN).cloned();
    let (Some(named), Some(origin)) = (named, origin) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let method = named.method();
    let allowed = match req.app_data::<State>().cloned() {
        Some(state) => named.allows(&state, &origin).await,
        None => false,
    };
    if is_preflight(&req) {
        if !allowed {
            return Ok(req.error_response(ApiError::bad_request(
                "CORS: this origin may not use this form or beacon",
            )));
        }
        let response = HttpResponse::Ok()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, method))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type, Accept"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
            .insert_header((header::VARY, "Origin"))
            .finish();
        return Ok(req.into_response(response));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    allow_origin(response.headers_mut(), allowed.then_some(origin));
    Ok(response)
}

/// `OPTIONS` naming the method to come, as actix-cors tells a preflight.
fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Replaces actix-cors's allow headers with this object's answer. Its `Vary` stays: the answer
/// depends on the `Origin` here too.
fn allow_origin(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    headers.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
    let Some(origin) = origin else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    expose_headers(headers);
}

/// actix-cors refuses a preflight (an origin, method or header not allowed) with a plain-text
/// 400; the contract wants every error as JSON (docs/api/README.md).
fn json_cors_refusal(
    response: ServiceResponse<BoxBody>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let Some(refusal) = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
    else {
        return response;
    };
    let error = ApiError::bad_request(format!("CORS: {refusal}"));
    response.into_response(error::render(&error, request_id.to_string()))
}

fn add_headers(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_NAME, value);
    }
}

#[cfg(test)]
mod tests {
    use actix_web::dev::{Service, ServiceResponse};
    use actix_web::{App, test, web};

    use super::*;
    use crate::captured_log::CapturedLog;

    /// Sends `request` through `request_context`, which reports failures as errors, and renders the
    /// error the way the server would: status, request id header and JSON body.
    async fn failed_call<S, R>(app: &S, request: R) -> (u16, String, serde_json::Value)
    where
        S: Service<R, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    {
        let err = test::try_call_service(app, request)
            .await
            .expect_err("the middleware reports the failure as an error response");
        let response = err.error_response();
        let request_id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let status = response.status().as_u16();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        (status, request_id, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn a_panicking_handler_answers_a_json_500_with_a_request_id() {
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(request_context))
                .route(
                    "/boom",
                    web::get().to(|| async {
                        if true {
                            panic!("storage exploded: secret detail");
                        }
                        HttpResponse::Ok().finish()
                    }),
                ),
        )
        .await;
        let (status, request_id, body) =
            failed_call(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(status, 500);
        assert_eq!(body["code"], "INTERNAL_ERROR");
        assert_eq!(body["request_id"], request_id.as_str());
        assert!(!body.to_string().contains("secret detail"));
    }

    #[actix_web::test]
    async fn a_failed_request_carries_cors_headers_for_an_allowed_origin() {
        let origin = HeaderValue::from_static("https://app.example.com");
        let settings = |origins: &[&str]| CorsSettings {
            allowed_origins: origins
                .iter()
                .map(|o| AllowedOrigin::try_from(o.to_string()).unwrap())
                .collect(),
        };
        assert_eq!(
            allowed_origin(&settings(&["*"]), &origin).unwrap(),
            HeaderValue::from_static("*")
        );
        assert_eq!(
            allowed_origin(&settings(&["https://app.example.com"]), &origin).unwrap(),
            origin
        );
        assert!(allowed_origin(&settings(&["https://other.example.com"]), &origin).is_none());

        let failed = FailedRequest {
            error: ApiError::internal("handler panicked: boom".to_string()),
            request_id: "req_0123456789abcdef".into(),
            allow_origin: Some(origin.clone()),
        };
        let response = failed.error_response();
        let headers = response.headers();
        assert_eq!(
            headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(&origin)
        );
        let exposed = headers
            .get(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .unwrap()
            .to_str()
            .unwrap();
        for name in EXPOSED_HEADERS {
            assert!(exposed.contains(name), "{exposed}");
        }
        assert_eq!(
            headers.get(REQUEST_ID_HEADER).unwrap(),
            "req_0123456789abcdef"
        );
    }

    /// A middleware inside `request_context` that fails every request with actix's own error.
    async fn failing(
        req: ServiceRequest,
        _next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        Err(match req.path() {
            "/server" => actix_web::error::ErrorServiceUnavailable("actix internals: secret"),
            _ => actix_web::error::ErrorPayloadTooLarge("payload over the limit"),
        })
    }

    #[actix_web::test]
    async fn a_framework_server_error_is_internal_and_only_logged() {
        let (log, _guard) = CapturedLog::start();
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(failing))
                .wrap(actix_web::middleware::from_fn(request_context))
                .route("/server", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let (status, request_id, body) =
            failed_call(&app, test::TestRequest::get().uri("/server").to_request()).await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            serde_json::json!({
                "error": "Internal server error",
                "code": "INTERNAL_ERROR",
                "request_id": request_id,
            })
        );
        let logged = log.text();
        let line = logged
            .lines()
            .find(|l| l.contains("actix internals: secret"))
            .unwrap_or_else(|| panic!("actix's text is logged: {logged}"));
        assert!(line.contains(&request_id), "{line}");
    }

    #[actix_web::test]
    async fn a_framework_client_error_keeps_its_text() {
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(failing))
                .wrap(actix_web::middleware::from_fn(request_context))
                .route("/client", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let (status, request_id, body) =
            failed_call(&app, test::TestRequest::get().uri("/client").to_request()).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "BAD_REQUEST");
        assert_eq!(body["error"], "payload over the limit");
        assert_eq!(body["request_id"], request_id.as_str());
    }
}
