//! The one error type of the service. Every failure, from any layer, becomes an `ApiError`: a
//! stable code, a message for the client, validation issues, and for unexpected failures the
//! underlying cause, kept for the log only. This module knows nothing of HTTP; `api::error` maps
//! statuses from the code table below and renders the contract's error body (docs/api/errors.md).

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

use serde::Serialize;

/// The one table of error codes: each code's variant, its text in the error body, and the HTTP
/// status it is answered with (docs/api/errors.md). `api::error` and the OpenAPI document read
/// the status from here.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($text:literal, $status:literal),)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            #[cfg(test)]
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            /// The HTTP status of an answer with this code.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }
        }
    };
}

error_codes! {
    BadJson = ("BAD_JSON", 400),
    BadRequest = ("BAD_REQUEST", 400),
    NoUpdates = ("NO_UPDATES", 400),
    Unauthorized = ("UNAUTHORIZED", 401),
    Forbidden = ("FORBIDDEN", 403),
    InsufficientScope = ("INSUFFICIENT_SCOPE", 403),
    ApiKeyOrgMismatch = ("API_KEY_ORG_MISMATCH", 403),
    ApiKeyProjectMismatch = ("API_KEY_PROJECT_MISMATCH", 403),
    ProjectNotFound = ("PROJECT_NOT_FOUND", 404),
    ConversationNotFound = ("CONVERSATION_NOT_FOUND", 404),
    ContactNotFound = ("CONTACT_NOT_FOUND", 404),
    ResourceNotFound = ("RESOURCE_NOT_FOUND", 404),
    SlugConflict = ("SLUG_CONFLICT", 409),
    /// A project already holds as many objects of a plainly listed kind as it may.
    LimitReached = ("LIMIT_REACHED", 409),
    /// An `Idempotency-Key` used for another request, or whose first request is still in
    /// progress (docs/api/idempotency.md).
    IdempotencyConflict = ("IDEMPOTENCY_CONFLICT", 409),
    /// A public form that its project archived (docs/api/forms-and-beacons.md).
    FormArchived = ("FORM_ARCHIVED", 410),
    /// A beacon that its project archived, asked for its public config.
    BeaconArchived = ("BEACON_ARCHIVED", 410),
    RateLimited = ("RATE_LIMITED", 429),
    InternalError = ("INTERNAL_ERROR", 500),
    /// The store cannot commit writes (a full or failing disk, a lost database), or cannot
    /// read what was asked: retry after `retry_after` seconds. 503 for a full disk too (not
    /// 507, a WebDAV status): one status for every "retry later" of the store, which clients
    /// and load balancers already know.
    StorageUnavailable = ("STORAGE_UNAVAILABLE", 503),
    /// A write kept conflicting with concurrent writes on a shared database (PostgreSQL): it
    /// was tried about ten times and nothing of it was written; retry after `retry_after`.
    ServiceUnavailable = ("SERVICE_UNAVAILABLE", 503),
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

/// An error's text followed by its sources', one after the other: the whole chain on one line,
/// for a log line or an operator's message (never a client's).
pub fn with_sources(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An underlying error, boxed so that any layer's error type fits.
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    issues: Vec<Issue>,
    /// For `RATE_LIMITED`, `STORAGE_UNAVAILABLE` and `SERVICE_UNAVAILABLE`: whole seconds
    /// until a retry can succeed (docs/api/errors.md and docs/api/rate-limits-and-cors.md).
    retry_after: Option<u64>,
    /// What went wrong inside, for the log only; never rendered to the client.
    internal: Option<Internal>,
}

#[derive(Debug)]
struct Internal {
    /// The layer that failed ("storage", "codec"), when the cause's own text does not say.
    layer: Option<&'static str>,
    cause: Cause,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The `Retry-After` of `STORAGE_UNAVAILABLE`: short, since a refusal costs the server nothing
/// and the store retries on its own (its reopen backoff is capped at 30 s).
pub const STORAGE_RETRY_AFTER_SECS: u64 = 5;

/// The `Retry-After` of `SERVICE_UNAVAILABLE`: conflicts pass within milliseconds.
pub const CONFLICT_RETRY_AFTER_SECS: u64 = 1;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            code,
            message: message.into(),
            issues: Vec::new(),
            retry_after: None,
            internal: None,
        }
    }

    /// 429 `RATE_LIMITED`: a retry can succeed after `retry_after` whole seconds.
    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(ErrorCode::RateLimited, "Too many requests")
        }
    }

    /// 503 `STORAGE_UNAVAILABLE`: the store cannot write (or read) now; a retry after
    /// `STORAGE_RETRY_AFTER_SECS` may succeed.
    pub fn storage_unavailable() -> Self {
        ApiError {
            retry_after: Some(STORAGE_RETRY_AFTER_SECS),
            ..ApiError::new(
                ErrorCode::StorageUnavailable,
                "The server cannot store data right now; retry later",
            )
        }
    }

    /// 503 `SERVICE_UNAVAILABLE`: a write kept conflicting with concurrent ones and was given
    /// up; nothing of it was written.
    pub fn service_unavailable() -> Self {
        ApiError {
            retry_after: Some(CONFLICT_RETRY_AFTER_SECS),
            ..ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The service is unavailable for a moment; retry shortly",
            )
        }
    }

    /// `storage_unavailable` caused by `cause`, which stays reachable for the log (never
    /// rendered to the client).
    pub fn storage_unavailable_from(cause: impl Into<Cause>) -> Self {
        ApiError {
            internal: Some(Internal {
                layer: Some("storage"),
                cause: cause.into(),
            }),
            ..ApiError::storage_unavailable()
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

    /// This error with `issues`: a validation failure of something other than the body (a
    /// header), under its own message.
    pub fn with_issues(self, issues: Vec<Issue>) -> Self {
        ApiError { issues, ..self }
    }

    /// An unexpected failure described by `detail`: the client sees a generic message, the log
    /// sees `detail`.
    pub fn internal(detail: impl fmt::Display) -> Self {
        ApiError::with_internal(None, detail.to_string().into())
    }

    /// An unexpected failure of `layer` caused by `cause`, which stays reachable through
    /// `Error::source` for the log; the client sees a generic message.
    pub fn internal_from(layer: &'static str, cause: impl Into<Cause>) -> Self {
        ApiError::with_internal(Some(layer), cause.into())
    }

    fn with_internal(layer: Option<&'static str>, cause: Cause) -> Self {
        ApiError {
            internal: Some(Internal { layer, cause }),
            ..ApiError::new(ErrorCode::InternalError, "Internal server error")
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message for the client; never contains an internal cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

/// `CODE: message`, then for an internal failure its layer and cause: this is the text for logs
/// and for the operator, never for the client.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(internal) = &self.internal {
            if let Some(layer) = internal.layer {
                write!(f, ": {layer}")?;
            }
            write!(f, ": {}", internal.cause)?;
        }
        Ok(())
    }
}

impl Error for ApiError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        let internal = self.internal.as_ref()?;
        Some(internal.cause.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_table_holds_unique_codes_with_error_statuses() {
        let mut texts = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(texts.insert(text), "{text} appears twice");
            assert!(
                text.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{text}"
            );
            assert!(
                (400..600).contains(&code.status()),
                "{text}: {}",
                code.status()
            );
        }
    }

    #[test]
    fn a_described_internal_error_shows_its_detail() {
        let err = ApiError::internal("writer dropped a job");
        assert_eq!(
            err.to_string(),
            "INTERNAL_ERROR: Internal server error: writer dropped a job"
        );
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("writer dropped a job")
        );
    }

    #[test]
    fn client_errors_have_no_cause() {
        let err = ApiError::bad_request("limit must be a number");
        assert_eq!(err.to_string(), "BAD_REQUEST: limit must be a number");
        assert!(err.source().is_none());
    }
}
