//! The CLI's HTTP client: reqwest in blocking mode with rustls (the crate the server uses for
//! its own outgoing calls), so `https://` servers work too. It builds `/api/v1` URLs from path
//! segments, sends the key, unwraps error bodies, and retries once on a short 429
//! (docs/api/rate-limits-and-cors.md, docs/cli.md). Every write carries a fresh `Idempotency-Key`,
//! so that a request whose answer was lost (a dropped connection, a 502/503/504 from a proxy) is
//! sent again, with the same key, up to `RETRIES` times: the server runs it at most once
//! (docs/api/idempotency.md).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;
use url::Url;

use crate::cli::error::{ApiFailure, CliError, CliResult};

/// The longest `retry_after` the CLI waits for before its one retry
/// (docs/api/rate-limits-and-cors.md).
const MAX_RETRY_AFTER_SECS: u64 = 30;
/// Longer than the server's default agent provider timeout (30 s), so `agent respond` can wait
/// for a slow model.
pub const TIMEOUT: Duration = Duration::from_secs(90);
/// The largest response body read; an answer of this API is far smaller.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// How often a request whose answer was lost is sent again, at most.
const RETRIES: u32 = 3;
/// The wait before the first of those retries; each further one waits twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// An org API key, as `X-API-Key` (what the SDK sends).
    Key(&'a str),
    /// The master key of the admin API, as a bearer token.
    Master(&'a str),
    /// None: a server's admin socket, where the file system already checked the caller.
    Socket,
}

pub struct Api {
    http: Client,
    base: Url,
    timeout: Duration,
    /// Retries of a request whose answer was lost (`--no-retry`: none).
    retries: u32,
    /// Whether each request is described on stderr (`--verbose`).
    verbose: bool,
}

/// A request's query string: only the parameters that were given.
pub type Query = Vec<(&'static str, String)>;

impl Api {
    /// `base` is the server root (`https://api.rogeriq.com`, `http://127.0.0.1:8080`); a path
    /// after the host (a reverse proxy's prefix) is kept. Each answer is waited for up to
    /// `timeout` (`TIMEOUT` unless `--timeout` says otherwise).
    pub fn with_timeout(base: &str, timeout: Duration) -> CliResult<Api> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                CliError::usage(format!(
                    "the API base {base:?} is not an http:// or https:// URL"
                ))
            })?;
        let http = Client::builder()
            .timeout(timeout)
            .user_agent(concat!("rogeriq-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Network(format!("cannot start the HTTP client: {e}")))?;
        Ok(Api {
            http,
            base,
            timeout,
            retries: RETRIES,
            verbose: false,
        })
    }

    /// A server reached over its admin socket at `socket` (a path short enough for a socket
    /// address), waiting up to `timeout` for each answer. Nothing is sent twice: no gateway
    /// stands between, and the socket's routes keep no `Idempotency-Key` that would make a
    /// resent backup a replay.
    pub fn over_socket(socket: &Path, timeout: Duration) -> CliResult<Api> {
        let http = Client::builder()
            .timeout(timeout)
            .user_agent(concat!("rogeriq-cli/", env!("CARGO_PKG_VERSION")))
            .unix_socket(socket.to_path_buf())
            .build()
            .map_err(|e| CliError::Network(format!("cannot start the HTTP client: {e}")))?;
        let base = Url::parse("http://localhost/")
            .map_err(|e| CliError::usage(format!("the socket's base URL: {e}")))?;
        Ok(Api {
            http,
            base,
            timeout,
            retries: 0,
            verbose: false,
        })
    }

    /// Sends each request once, whatever becomes of its answer (`--no-retry`).
    pub fn without_retries(mut self) -> Api {
        self.retries = 0;
        self
    }

    /// With `on`, each request prints one line to stderr: method, URL, status, request id and
    /// time taken. The key travels in a header and is never printed; a password in the URL is
    /// left out.
    pub fn verbose(mut self, on: bool) -> Api {
        self.verbose = on;
        self
    }

    /// `<base>/api/v1/<segments…>`, each segment percent-encoded, so an id typed by the user
    /// can never reach another route (`/`, `?`); an empty, `.` or `..` segment is refused.
    pub fn url(&self, segments: &[&str]) -> CliResult<Url> {
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            return Err(CliError::usage(format!("{bad:?} is not a valid id")));
        }
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        Ok(url)
    }

    /// Sends one request; 2xx answers return their JSON body (`Value::Null` when empty). A
    /// write carries a fresh `Idempotency-Key`, kept for its retries.
    pub fn call(
        &self,
        method: Method,
        url: Url,
        credential: Credential<'_>,
        query: &Query,
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let idempotency_key = match method {
            Method::GET | Method::HEAD => None,
            _ => Some(new_idempotency_key()?),
        };
        let build = || {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("Accept", "application/json");
            if let Some(key) = &idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            request = match credential {
                Credential::Key(key) => request.header("X-API-Key", key),
                Credential::Master(key) => request.bearer_auth(key),
                Credential::Socket => request,
            };
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            request
        };
        let trace = self.verbose.then(|| {
            let mut shown = url.clone();
            let _ = shown.set_password(None);
            if !query.is_empty() {
                shown.query_pairs_mut().extend_pairs(query);
            }
            format!("{method} {shown}")
        });
        let mut retried = false;
        let mut resent = 0;
        loop {
            match send(build(), self.timeout, trace.as_deref()) {
                Outcome::Done(value) => return Ok(value),
                Outcome::Failed {
                    retry_in: Some(seconds),
                    ..
                } if !retried => {
                    retried = true;
                    std::thread::sleep(Duration::from_secs(seconds));
                }
                Outcome::Failed { failure, .. }
                    if matches!(failure.status, 502..=504) && resent < self.retries =>
                {
                    std::thread::sleep(FIRST_BACKOFF * 2u32.pow(resent));
                    resent += 1;
                }
                Outcome::Lost(_) if resent < self.retries => {
                    std::thread::sleep(FIRST_BACKOFF * 2u32.pow(resent));
                    resent += 1;
                }
                Outcome::Failed { failure, .. } => return Err(CliError::Api(failure)),
                Outcome::Lost(err) | Outcome::Error(err) => return Err(err),
            }
        }
    }
}

/// A key no other request has: 128 random bits, in hex.
fn new_idempotency_key() -> CliResult<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::Network(format!("no random source for an Idempotency-Key: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

enum Outcome {
    Done(Value),
    Failed {
        failure: ApiFailure,
        /// For a 429 whose `retry_after` is short enough to wait for: how long.
        retry_in: Option<u64>,
    },
    /// No whole answer came, though the request may have reached the server: a connection
    /// refused, reset or closed, an answer cut short. Sent again with the same key.
    Lost(CliError),
    /// Any other failure, which sending again would not mend: a timeout (the server may still
    /// be working), an answer that is no JSON.
    Error(CliError),
}

/// Sends one request; with `trace` ("METHOD URL"), describes it on stderr.
fn send(request: RequestBuilder, timeout: Duration, trace: Option<&str>) -> Outcome {
    match receive(request, timeout, trace) {
        Ok(outcome) => outcome,
        Err(err) => Outcome::Error(err),
    }
}

fn receive(request: RequestBuilder, timeout: Duration, trace: Option<&str>) -> CliResult<Outcome> {
    let started = Instant::now();
    let sent = request.send();
    let took = started.elapsed().as_millis();
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            let why = describe(&e, timeout);
            if let Some(trace) = trace {
                eprintln!("{trace} -> no answer after {took} ms ({why})");
            }
            if e.is_timeout() {
                return Err(CliError::Network(why));
            }
            return Ok(Outcome::Lost(CliError::Network(why)));
        }
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request_id = header("x-request-id");
    if let Some(trace) = trace {
        let id = request_id.as_deref().unwrap_or("no request id");
        eprintln!("{trace} -> {status} {id} in {took} ms");
    }
    let retry_header = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    let text = match read_body(response) {
        Ok(text) => text,
        Err(err) => return Ok(Outcome::Lost(err)),
    };
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(Outcome::Done(Value::Null));
        }
        return serde_json::from_str(&text)
            .map(Outcome::Done)
            .map_err(|e| CliError::Network(format!("the server's answer is not JSON ({e})")));
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let field = |name: &str| body[name].as_str().map(str::to_string);
    // The SDK reads the body's `retry_after`; the header says the same
    // (docs/api/rate-limits-and-cors.md).
    let retry_after = body["retry_after"].as_u64().or(retry_header);
    let retry_in = retry_after.filter(|s| status == 429 && *s <= MAX_RETRY_AFTER_SECS);
    let message = field("error").unwrap_or_else(|| {
        let snippet: String = text.trim().chars().take(200).collect();
        if snippet.is_empty() {
            format!("HTTP {status}")
        } else {
            snippet
        }
    });
    let failure = ApiFailure {
        status,
        code: field("code").unwrap_or_else(|| format!("HTTP_{status}")),
        message: match (status, retry_after) {
            (429, Some(seconds)) => format!("{message} (retry after {seconds} s)"),
            _ => message,
        },
        request_id: field("request_id").or(request_id),
        issues: body["issues"].as_array().cloned().unwrap_or_default(),
    };
    Ok(Outcome::Failed { failure, retry_in })
}

fn read_body(response: Response) -> CliResult<String> {
    let mut bytes = Vec::new();
    response
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Network(format!("reading the answer failed: {e}")))?;
    if bytes.len() as u64 > MAX_BODY_BYTES {
        return Err(CliError::Network(format!(
            "the answer is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Why no answer came, in the words of the innermost cause ("Connection refused").
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    let server = err
        .url()
        .map(|u| u[..url::Position::BeforePath].to_string())
        .unwrap_or_else(|| "the server".into());
    if err.is_timeout() {
        return format!("no answer from {server} within {} s", timeout.as_secs());
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("cannot reach {server}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Api {
        fn new(base: &str) -> CliResult<Api> {
            Api::with_timeout(base, TIMEOUT)
        }
    }

    #[test]
    fn urls_are_built_from_encoded_segments() {
        let api = Api::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            api.url(&["orgs", "org_1", "projects"]).unwrap().as_str(),
            "http://127.0.0.1:8080/api/v1/orgs/org_1/projects"
        );
        assert_eq!(
            api.url(&["projects", "../admin", "a b?c"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/api/v1/projects/..%2Fadmin/a%20b%3Fc"
        );
        for bad in ["..", ".", ""] {
            assert!(matches!(
                api.url(&["projects", bad]),
                Err(CliError::Usage(_))
            ));
        }
        let proxied = Api::new("https://example.com/rogeriq").unwrap();
        assert_eq!(
            proxied.url(&["auth", "whoami"]).unwrap().as_str(),
            "https://example.com/rogeriq/api/v1/auth/whoami"
        );
    }

    #[test]
    fn only_http_bases_are_accepted() {
        for bad in ["ftp://x", "127.0.0.1:8080", "", "http://"] {
            assert!(matches!(Api::new(bad), Err(CliError::Usage(_))), "{bad:?}");
        }
    }
}
