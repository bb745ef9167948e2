//! What can go wrong in a CLI command, and the exit code and error output of each (docs/cli.md).

use serde_json::{Map, Value, json};

/// Exit codes of docs/cli.md.
pub const EXIT_USAGE: u8 = 1;
pub const EXIT_API: u8 = 2;
pub const EXIT_AUTH: u8 = 3;
pub const EXIT_RATE_LIMITED: u8 = 4;

#[derive(Debug)]
pub enum CliError {
    /// A mistake in the command line or the local setup (a missing project, an unreadable
    /// file): exit 1.
    Usage(String),
    /// No API key (or master key) to send: exit 3, like the server's 401.
    NoCredentials(String),
    /// The server answered with an error.
    Api(ApiFailure),
    /// No answer from the server (connection refused, timeout, an unreadable body): exit 2.
    Network(String),
}

/// A non-2xx answer, read from the error body of docs/api/errors.md.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// Validation issues (`[{path, message}]`), as sent.
    pub issues: Vec<Value>,
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// 401 and 403 are authentication errors (3), a 429 still there after the retry is 4,
    /// every other API error is 2.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::NoCredentials(_) => EXIT_AUTH,
            CliError::Network(_) => EXIT_API,
            CliError::Api(failure) => match failure.status {
                401 | 403 => EXIT_AUTH,
                429 => EXIT_RATE_LIMITED,
                _ => EXIT_API,
            },
        }
    }

    fn code(&self) -> &str {
        match self {
            CliError::Usage(_) => "USAGE_ERROR",
            CliError::NoCredentials(_) => "NO_CREDENTIALS",
            CliError::Network(_) => "NETWORK_ERROR",
            CliError::Api(failure) => &failure.code,
        }
    }

    fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::NoCredentials(m) | CliError::Network(m) => m,
            CliError::Api(failure) => &failure.message,
        }
    }

    /// The failure in one line, for a message that embeds it: the message, led by the HTTP
    /// status and code when the server answered.
    pub fn one_line(&self) -> String {
        match self {
            CliError::Api(failure) => format!(
                "HTTP {} {}: {}",
                failure.status, failure.code, failure.message
            ),
            _ => self.message().to_string(),
        }
    }

    /// `{"error", "code", "request_id", "status_code"}` (plus `issues` when the server sent
    /// some); `request_id` and `status_code` are `null` when no answer came.
    pub fn to_json(&self) -> Value {
        let (request_id, status) = match self {
            CliError::Api(failure) => (failure.request_id.clone(), Some(failure.status)),
            _ => (None, None),
        };
        let mut out = Map::new();
        out.insert("error".into(), json!(self.message()));
        out.insert("code".into(), json!(self.code()));
        out.insert("request_id".into(), json!(request_id));
        out.insert("status_code".into(), json!(status));
        if let CliError::Api(failure) = self
            && !failure.issues.is_empty()
        {
            out.insert("issues".into(), Value::Array(failure.issues.clone()));
        }
        Value::Object(out)
    }

    /// One line for people, then one line per validation issue.
    pub fn to_text(&self) -> String {
        let mut text = format!("error: {}", self.message());
        if let CliError::Api(failure) = self {
            text.push_str(&format!(" ({}, HTTP {}", failure.code, failure.status));
            if let Some(id) = &failure.request_id {
                text.push_str(&format!(", request {id}"));
            }
            text.push(')');
            for issue in &failure.issues {
                let path = issue["path"].as_str().unwrap_or("");
                let message = issue["message"].as_str().unwrap_or("");
                text.push_str(&format!("\n  {path}: {message}"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16) -> CliError {
        CliError::Api(ApiFailure {
            status,
            code: "X".into(),
            message: "m".into(),
            request_id: Some("req_1".into()),
            issues: vec![json!({"path": "name", "message": "Required"})],
        })
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(CliError::usage("x").exit_code(), 1);
        assert_eq!(CliError::Network("x".into()).exit_code(), 2);
        assert_eq!(CliError::NoCredentials("x".into()).exit_code(), 3);
        let codes: Vec<u8> = [400, 404, 409, 500, 401, 403, 429]
            .into_iter()
            .map(|s| failure(s).exit_code())
            .collect();
        assert_eq!(codes, [2, 2, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn error_output_in_both_forms() {
        assert_eq!(
            failure(400).to_json(),
            json!({"error": "m", "code": "X", "request_id": "req_1", "status_code": 400,
                   "issues": [{"path": "name", "message": "Required"}]})
        );
        assert_eq!(
            failure(400).to_text(),
            "error: m (X, HTTP 400, request req_1)\n  name: Required"
        );
        assert_eq!(
            CliError::Network("refused".into()).to_json(),
            json!({"error": "refused", "code": "NETWORK_ERROR", "request_id": null, "status_code": null})
        );
    }
}
