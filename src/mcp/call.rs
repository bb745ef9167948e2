//! A tool call, made as an API request: the arguments are checked and placed (path, query,
//! body, `Idempotency-Key`), the request goes to the API over HTTP with the caller's key, and
//! the answer becomes the tool's result: the API's JSON as structured content with a short
//! summary, or a tool error carrying the API's code, message and request id.

use std::time::Duration;

use reqwest::Method;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;
use url::Url;

use crate::mcp::catalog::{Effect, ORG_PARAMETER};
use crate::mcp::tools::{IDEMPOTENCY_KEY, Place, Tool};

/// Longer than the agent's default provider timeout (30 s), so `agent_respond` can wait for a
/// slow model.
const TIMEOUT: Duration = Duration::from_secs(90);
/// The largest answer read; an answer of this API is far smaller.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The API the tools call: a server root (`http://127.0.0.1:8080`; a path after the host, a
/// reverse proxy's prefix, is kept) and one HTTP client.
pub struct Api {
    http: reqwest::Client,
    base: Url,
}

/// Who calls: an org API key, sent as a bearer token, and its organisation once known.
pub struct Caller {
    key: String,
    org: OnceCell<String>,
}

impl Caller {
    /// `org`: the key's organisation when already known; else it is asked of the server on
    /// first need (`GET /api/v1/auth/whoami`).
    pub fn new(key: String, org: Option<String>) -> Caller {
        Caller {
            key,
            org: OnceCell::new_with(org),
        }
    }
}

/// A failed call: the API's error body, or one made here in the same shape.
pub struct Failure {
    pub status: Option<u16>,
    pub body: Value,
}

impl Failure {
    fn local(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            status: None,
            body: json!({ "error": message.into(), "code": code }),
        }
    }

    /// A bad argument: the call never left.
    fn argument(message: impl Into<String>) -> Failure {
        Failure::local("INVALID_ARGUMENT", message)
    }

    /// The tool error: `isError`, the error body as structured content, and one line of text
    /// with the code, the message and the request id.
    pub fn into_result(self) -> CallToolResult {
        let mut body = self.body;
        if let (Some(status), Some(object)) = (self.status, body.as_object_mut()) {
            object.insert("status".into(), json!(status));
        }
        let field = |name: &str| body[name].as_str().unwrap_or_default().to_string();
        let mut text = format!("{}: {}", field("code"), field("error"));
        if let Some(issues) = body["issues"].as_array() {
            for issue in issues {
                text.push_str(&format!(
                    "\n- {}: {}",
                    issue["path"].as_str().unwrap_or("body"),
                    issue["message"].as_str().unwrap_or_default()
                ));
            }
        }
        if let Some(request_id) = body["request_id"].as_str() {
            text.push_str(&format!(" (request {request_id})"));
        }
        let mut result = CallToolResult::structured_error(body);
        result.content = vec![ContentBlock::text(text)];
        result
    }
}

/// One API request, as a tool's arguments make it.
pub struct Request {
    pub method: Method,
    /// The path's segments after the server root, each still to be encoded.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub idempotency_key: Option<String>,
}

impl Api {
    /// `base` must be an http(s) URL with a host.
    pub fn new(base: &str) -> Result<Api, String> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| format!("the API base {base:?} is not an http:// or https:// URL"))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rogeriq-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api { http, base })
    }

    /// Calls `tool` with `arguments` as `caller`.
    pub async fn call_tool(
        &self,
        tool: &Tool,
        arguments: Option<Map<String, Value>>,
        caller: &Caller,
    ) -> CallToolResult {
        match self.call(tool, arguments.unwrap_or_default(), caller).await {
            Ok(body) => success(tool, body),
            Err(failure) => failure.into_result(),
        }
    }

    /// Makes the request `tool` maps `arguments` to; returns the API's JSON.
    pub async fn call(
        &self,
        tool: &Tool,
        arguments: Map<String, Value>,
        caller: &Caller,
    ) -> Result<Value, Failure> {
        let request = self.request(tool, arguments, caller).await?;
        self.send(&caller.key, request).await
    }

    /// Places each argument where the tool's route takes it.
    async fn request(
        &self,
        tool: &Tool,
        mut arguments: Map<String, Value>,
        caller: &Caller,
    ) -> Result<Request, Failure> {
        let mut segments = Vec::new();
        for part in tool.def.path.split('/').filter(|s| !s.is_empty()) {
            let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
                segments.push(part.to_string());
                continue;
            };
            let value = if name == ORG_PARAMETER {
                self.org(caller).await?
            } else {
                match arguments.remove(name) {
                    Some(Value::String(id)) if !matches!(id.as_str(), "" | "." | "..") => id,
                    Some(Value::String(id)) => {
                        return Err(Failure::argument(format!("{id:?} is not a valid {name}")));
                    }
                    Some(_) => return Err(Failure::argument(format!("{name} must be a string"))),
                    None => return Err(Failure::argument(format!("missing argument {name}"))),
                }
            };
            segments.push(value);
        }
        let idempotency_key = match arguments.remove(IDEMPOTENCY_KEY) {
            Some(Value::String(key)) if tool.takes_idempotency_key() => Some(key),
            Some(_) if tool.takes_idempotency_key() => {
                return Err(Failure::argument(format!(
                    "{IDEMPOTENCY_KEY} must be a string"
                )));
            }
            Some(value) => {
                arguments.insert(IDEMPOTENCY_KEY.into(), value);
                None
            }
            None => None,
        };
        let mut query = Vec::new();
        let mut body = Map::new();
        for (name, value) in arguments {
            match tool.place(&name) {
                Some(Place::Query) => match value {
                    Value::Null => {}
                    Value::String(text) => query.push((name, text)),
                    Value::Number(_) | Value::Bool(_) => query.push((name, value.to_string())),
                    _ => {
                        return Err(Failure::argument(format!(
                            "{name} must be a string, a number or a boolean"
                        )));
                    }
                },
                Some(Place::Body) => {
                    body.insert(name, value);
                }
                // Path parameters were taken above; a second one of a name cannot be.
                Some(Place::Path) | None => {
                    return Err(Failure::argument(format!(
                        "{} takes no argument {name}",
                        tool.name()
                    )));
                }
            }
        }
        for (name, value) in tool.def.fixed {
            body.insert((*name).to_string(), json!(value));
        }
        Ok(Request {
            method: Method::from_bytes(tool.def.method.as_bytes())
                .map_err(|_| Failure::local("INTERNAL_ERROR", "a tool with a bad method"))?,
            segments,
            query,
            body: tool.has_body.then_some(Value::Object(body)),
            idempotency_key,
        })
    }

    /// The caller's organisation: known, or asked of the server once.
    async fn org(&self, caller: &Caller) -> Result<String, Failure> {
        caller
            .org
            .get_or_try_init(|| async {
                let whoami = Request {
                    method: Method::GET,
                    segments: ["api", "v1", "auth", "whoami"].map(String::from).to_vec(),
                    query: Vec::new(),
                    body: None,
                    idempotency_key: None,
                };
                match self.send(&caller.key, whoami).await {
                    Ok(body) => body["data"]["org_id"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Failure::local("INTERNAL_ERROR", "whoami names no org_id")),
                    Err(failure) if failure.status == Some(404) => Err(Failure::local(
                        "NO_ORGANISATION",
                        "this server cannot tell the key's organisation: set RIQ_ORG_ID or \
                         pass --org to `rogeriq mcp`",
                    )),
                    Err(failure) => Err(failure),
                }
            })
            .await
            .cloned()
    }

    /// Sends one request with `key`; a 2xx answer returns its JSON (`null` when empty).
    pub async fn send(&self, key: &str, request: Request) -> Result<Value, Failure> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&request.segments);
        }
        let mut builder = self
            .http
            .request(request.method, url)
            .bearer_auth(key)
            .header(reqwest::header::ACCEPT, "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        if let Some(key) = &request.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| Failure::local("NETWORK_ERROR", describe(&e)))?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read(response).await?;
        if (200..300).contains(&status) {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::local(
                    "INVALID_ANSWER",
                    format!("the server's answer is not JSON ({e})"),
                )
            });
        }
        let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !body["code"].is_string() {
            let text = String::from_utf8_lossy(&bytes);
            let snippet: String = text.trim().chars().take(200).collect();
            body = json!({
                "error": if snippet.is_empty() { format!("HTTP {status}") } else { snippet },
                "code": format!("HTTP_{status}"),
            });
        }
        if let (Some(id), Some(object)) = (request_id, body.as_object_mut()) {
            object.entry("request_id").or_insert(json!(id));
        }
        Err(Failure {
            status: Some(status),
            body,
        })
    }
}

async fn read(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(Failure::local(
                        "INVALID_ANSWER",
                        format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => return Err(Failure::local("NETWORK_ERROR", describe(&e))),
        }
    }
}

/// Why no answer came, in the words of the innermost cause ("Connection refused").
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("cannot reach the server: {cause}")
}

/// The API's JSON as structured content; the text holds a one-line summary, then the JSON
/// itself for clients that read only text.
fn success(tool: &Tool, body: Value) -> CallToolResult {
    let text = summary(tool, &body);
    let json = body.to_string();
    let mut result = CallToolResult::structured(body);
    result.content = vec![ContentBlock::text(text), ContentBlock::text(json)];
    result
}

/// "3 items; more after cursor …", "created conv_… (Refund)", and the like.
pub fn summary(tool: &Tool, body: &Value) -> String {
    let data = &body["data"];
    match data {
        Value::Array(items) => {
            let mut text = format!(
                "{}: {} item{}",
                tool.name(),
                items.len(),
                if items.len() == 1 { "" } else { "s" }
            );
            if body["has_more"] == true
                && let Some(cursor) = body["cursor"].as_str()
            {
                text.push_str(&format!("; more: pass cursor {cursor:?}"));
            }
            text
        }
        Value::Object(object) => {
            let verb = match tool.def.effect {
                Effect::Read | Effect::External => "",
                Effect::Create => "created ",
                Effect::Update => "updated ",
                Effect::Delete => "deleted ",
                Effect::Replace => "replaced the secret of ",
            };
            let id = object
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("answered");
            let label = ["name", "title", "subject", "email"]
                .iter()
                .find_map(|field| object.get(*field).and_then(Value::as_str));
            match label {
                Some(label) => format!("{}: {verb}{id} ({label})", tool.name()),
                None => format!("{}: {verb}{id}", tool.name()),
            }
        }
        Value::Null => format!("{}: no result", tool.name()),
        other => format!("{}: {other}", tool.name()),
    }
}
