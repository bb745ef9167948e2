//! `ApiError` over HTTP: the status of each error code and the contract's error body
//! (docs/api/errors.md). Internal causes are logged here with the request id and never rendered.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::api::request_id;
use crate::error::{ApiError, ErrorCode, Issue};

/// The HTTP status of a code, as the code table (`error::ErrorCode`) gives it.
pub fn status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'static str,
    request_id: String,
    #[serde(skip_serializing_if = "<[Issue]>::is_empty")]
    issues: &'a [Issue],
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// The contract's error response for request `request_id`. An internal failure is logged with
/// the request id and its cause; the body carries only the generic message.
pub fn render(error: &ApiError, request_id: String) -> HttpResponse {
    if error.code() == ErrorCode::InternalError {
        tracing::error!(request_id = %request_id, error = %error, "internal error");
    }
    let mut response = HttpResponse::build(status(error.code()));
    // The header and the body field say the same (docs/api/rate-limits-and-cors.md); the SDK reads
    // the body.
    if let Some(seconds) = error.retry_after() {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response.json(ErrorBody {
        error: error.message(),
        code: error.code().as_str(),
        request_id,
        issues: error.issues(),
        retry_after: error.retry_after(),
    })
}

/// An error that actix itself raised (routing, payload, middleware) rather than a handler.
/// A client error keeps actix's text, which describes the request; any other status (a server
/// error) is internal: its text goes to the log only.
pub fn from_framework(err: &actix_web::Error) -> ApiError {
    let status = err.as_response_error().status_code();
    if !status.is_client_error() {
        return ApiError::internal_from("actix", format!("{status}: {err}"));
    }
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::ResourceNotFound,
        _ => ErrorCode::BadRequest,
    };
    ApiError::new(code, err.to_string())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(self.code())
    }

    fn error_response(&self) -> HttpResponse {
        render(self, request_id::current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: HttpResponse) -> serde_json::Value {
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("an in-memory body");
        serde_json::from_slice(&bytes).expect("a JSON body")
    }

    #[actix_web::test]
    async fn an_internal_error_renders_without_its_cause() {
        let err = ApiError::internal_from("storage", std::io::Error::other("secret page 7"));
        let response = render(&err, "req_test".into());
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert_eq!(
            body,
            serde_json::json!({
                "error": "Internal server error",
                "code": "INTERNAL_ERROR",
                "request_id": "req_test",
            })
        );
    }

    #[actix_web::test]
    async fn a_validation_error_renders_its_issues() {
        let err = ApiError::invalid(vec![Issue::new("email", "Required")]);
        let response = render(&err, "req_test".into());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_of(response).await;
        assert_eq!(body["code"], "BAD_REQUEST");
        assert_eq!(
            body["issues"],
            serde_json::json!([{"path": "email", "message": "Required"}])
        );
    }

    #[actix_web::test]
    async fn a_rate_limit_renders_its_wait_in_header_and_body() {
        let response = render(&ApiError::rate_limited(42), "req_test".into());
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "42");
        let body = body_of(response).await;
        assert_eq!(body["code"], "RATE_LIMITED");
        assert_eq!(body["retry_after"], 42);
    }

    #[actix_web::test]
    async fn storage_unavailable_renders_503_with_its_wait_and_without_its_cause() {
        let err = ApiError::storage_unavailable_from(std::io::Error::other("disk /dev/sda1"));
        let response = render(&err, "req_test".into());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
        let body = body_of(response).await;
        assert_eq!(body["code"], "STORAGE_UNAVAILABLE");
        assert_eq!(body["retry_after"], 5);
        assert!(!body.to_string().contains("sda1"), "{body}");
    }

    #[test]
    fn framework_errors_map_by_status() {
        let server = from_framework(&actix_web::error::ErrorServiceUnavailable("pool gone"));
        assert_eq!(server.code(), ErrorCode::InternalError);
        assert_eq!(server.message(), "Internal server error");
        assert!(server.to_string().contains("pool gone"));

        let missing = from_framework(&actix_web::error::ErrorNotFound("no route"));
        assert_eq!(missing.code(), ErrorCode::ResourceNotFound);
        assert_eq!(missing.message(), "no route");

        let bad = from_framework(&actix_web::error::ErrorPayloadTooLarge("too big"));
        assert_eq!(bad.code(), ErrorCode::BadRequest);
        assert_eq!(bad.message(), "too big");
    }
}
