//! The one error type of the HTTP API. Every failure, from any layer, becomes an `ApiError`,
//! which renders the contract's error body (API.md §5).

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::api::context;

/// The stable error codes of API.md §5.2, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadJson,
    BadRequest,
    NoUpdates,
    Unauthorized,
    Forbidden,
    InsufficientScope,
    ApiKeyOrgMismatch,
    ApiKeyProjectMismatch,
    ProjectNotFound,
    ConversationNotFound,
    ContactNotFound,
    ResourceNotFound,
    SlugConflict,
    InternalError,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadJson | ErrorCode::BadRequest | ErrorCode::NoUpdates => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden
            | ErrorCode::InsufficientScope
            | ErrorCode::ApiKeyOrgMismatch
            | ErrorCode::ApiKeyProjectMismatch => StatusCode::FORBIDDEN,
            ErrorCode::ProjectNotFound
            | ErrorCode::ConversationNotFound
            | ErrorCode::ContactNotFound
            | ErrorCode::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorCode::SlugConflict => StatusCode::CONFLICT,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "BAD_JSON",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::NoUpdates => "NO_UPDATES",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::InsufficientScope => "INSUFFICIENT_SCOPE",
            ErrorCode::ApiKeyOrgMismatch => "API_KEY_ORG_MISMATCH",
            ErrorCode::ApiKeyProjectMismatch => "API_KEY_PROJECT_MISMATCH",
            ErrorCode::ProjectNotFound => "PROJECT_NOT_FOUND",
            ErrorCode::ConversationNotFound => "CONVERSATION_NOT_FOUND",
            ErrorCode::ContactNotFound => "CONTACT_NOT_FOUND",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::SlugConflict => "SLUG_CONFLICT",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

/// One invalid field of a request: `path` joins nested keys and indexes with dots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    issues: Vec<Issue>,
    /// What went wrong inside, for the log only; never rendered to the client.
    internal: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            code,
            message: message.into(),
            issues: Vec::new(),
            internal: None,
        }
    }

    /// A validation failure carrying one issue per bad field.
    pub fn invalid(issues: Vec<Issue>) -> Self {
        ApiError {
            issues,
            ..ApiError::new(ErrorCode::BadRequest, "Invalid body")
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// An unexpected failure: the client sees a generic message, the log sees `detail`.
    pub fn internal(detail: impl fmt::Display) -> Self {
        ApiError {
            internal: Some(detail.to_string()),
            ..ApiError::new(ErrorCode::InternalError, "Internal server error")
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'static str,
    request_id: String,
    #[serde(skip_serializing_if = "<[Issue]>::is_empty")]
    issues: &'a [Issue],
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.render(context::current_request_id())
    }
}

impl ApiError {
    /// The contract's error response for request `request_id`; internal detail goes to the log.
    pub fn render(&self, request_id: String) -> HttpResponse {
        if let Some(detail) = &self.internal {
            tracing::error!(request_id = %request_id, detail = %detail, "internal error");
        }
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: &self.message,
            code: self.code.as_str(),
            request_id,
            issues: &self.issues,
        })
    }
}

impl From<redb::Error> for ApiError {
    fn from(err: redb::Error) -> Self {
        ApiError::internal(format!("storage: {err}"))
    }
}

macro_rules! storage_error_into_api_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ApiError {
            fn from(err: $ty) -> Self {
                ApiError::from(redb::Error::from(err))
            }
        }
    )*};
}

storage_error_into_api_error!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);
