//! `/mcp`: the MCP tools over streamable HTTP (`mcp::http`), mounted beside the API's routes
//! when `mcp.enabled`. This handler is the thin bridge between actix and rmcp's tower service:
//! it checks the caller's key (401 with `WWW-Authenticate` without a usable one), reads the
//! body within the server's limits, hands rmcp an `http` request with the caller in its
//! extensions, and streams rmcp's answer back. A foreign `Origin` is refused with 403 by
//! [`refuse_foreign_origins`], before the CORS layer sees the request.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use url::{Host, Url};

use crate::api::error;
use crate::api::extract::{self, JsonBody};
use crate::api::openapi;
use crate::api::request_id;
use crate::api::response::State;
use crate::api::routes;
use crate::auth;
use crate::config::AllowedOrigin;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::mcp::http::Caller;
use crate::mcp::tools::ToolTable;

/// Where the endpoint is mounted.
pub const PATH: &str = "/mcp";

/// The tools of this server: the catalog, with the schemas of this server's OpenAPI document.
pub fn tool_table() -> Result<ToolTable, String> {
    let document = openapi::document(&routes::table())
        .to_json()
        .map_err(|e| format!("the OpenAPI document: {e}"))?;
    let document: Value =
        serde_json::from_str(&document).map_err(|e| format!("the OpenAPI document: {e}"))?;
    ToolTable::from_openapi(&document)
}

/// Mounts `/mcp` when the server has an endpoint (`mcp.enabled`); otherwise the path stays
/// unknown (404).
pub fn configure(cfg: &mut web::ServiceConfig, enabled: bool) {
    if enabled {
        cfg.service(web::resource(PATH).to(handle));
    }
}

/// Refuses a request to `/mcp` whose `Origin` is foreign (the MCP transport's defence against
/// DNS rebinding): allowed are the origins `cors.allowed_origins` names one by one, and the
/// request's own origin when its host is a loopback name, which no other site can rebind.
/// `*`, the default, lets any page call the API, which needs a key anyway, but names no origin
/// for `/mcp`. A request without `Origin` (any client but a browser) passes.
pub async fn refuse_foreign_origins(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.path() == PATH
        && let Some(state) = req.app_data::<State>()
        && state.mcp.is_some()
        && let Some(origin) = req.headers().get(header::ORIGIN)
        && !allowed_origin(
            &state.cors.allowed_origins,
            origin,
            req.headers().get(header::HOST),
        )
    {
        let refusal = ApiError::new(
            ErrorCode::Forbidden,
            "This Origin may not use /mcp: name it in cors.allowed_origins",
        );
        return Ok(req.error_response(refusal));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

fn allowed_origin(
    allowed: &[AllowedOrigin],
    origin: &HeaderValue,
    host: Option<&HeaderValue>,
) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a.as_str() != AllowedOrigin::ANY && a.as_str() == origin)
    {
        return true;
    }
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let own = ["http://", "https://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme) == Some(host));
    let loopback = Url::parse(origin).is_ok_and(|url| match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    });
    own && loopback
}

/// 401 `UNAUTHORIZED` with the challenge of RFC 6750.
fn unauthorized(message: &'static str, presented: bool) -> HttpResponse {
    let mut response = error::render(
        &ApiError::new(ErrorCode::Unauthorized, message),
        request_id::current(),
    );
    let challenge = if presented {
        r#"Bearer realm="rogeriq", error="invalid_token""#
    } else {
        r#"Bearer realm="rogeriq""#
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

async fn handle(req: HttpRequest, body: JsonBody, state: State) -> ApiResult<HttpResponse> {
    let endpoint = state
        .mcp
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "Not found"))?;
    let header = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let presented = auth::presented_credential(
        req.headers().get("x-api-key").and_then(|v| v.to_str().ok()),
        header(header::AUTHORIZATION),
    );
    let Some(token) = presented else {
        return Ok(unauthorized(
            "Missing API key: send Authorization: Bearer riq_…",
            false,
        ));
    };
    let Some(key) = extract::usable_key(&state, token).await? else {
        return Ok(unauthorized("Invalid API key", true));
    };
    let caller = Caller::new(token.to_string(), Some(key.org_id.to_string()));
    let bytes = body.bytes().await?.freeze();
    let request = http_request(&req, bytes)?;
    Ok(actix_response(endpoint.handle(request, caller).await))
}

/// The request as the `http` crate spells it (actix uses an older major version of it).
fn http_request(req: &HttpRequest, body: web::Bytes) -> ApiResult<http::Request<Full<web::Bytes>>> {
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    builder
        .body(Full::new(body))
        .map_err(|e| ApiError::bad_request(format!("Malformed request: {e}")))
}

/// rmcp's answer as an actix response, its body streamed as it comes.
fn actix_response(response: crate::mcp::http::Response) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder.append_header((name, value));
        }
    }
    builder.streaming(body.into_data_stream())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::catalog::{CATALOG, Effect};
    use crate::mcp::tools::operation;

    fn document() -> Value {
        serde_json::from_str(&openapi::document(&routes::table()).to_json().unwrap()).unwrap()
    }

    #[test]
    fn every_tool_has_its_route_and_a_schema_without_references() {
        let table = tool_table().unwrap();
        assert_eq!(table.tools.len(), CATALOG.len());
        for tool in &table.tools {
            let schema = Value::Object(tool.input_schema.clone());
            assert!(!schema.to_string().contains("$ref"), "{}", tool.name());
        }
    }

    /// `conversations_close` sets the status itself, so it needs no field beside the ids: the
    /// PATCH's "at least one field" is met.
    #[test]
    fn a_tool_that_fixes_a_field_asks_only_for_the_rest() {
        let table = tool_table().unwrap();
        let close = &table.get("conversations_close").unwrap().input_schema;
        assert!(close["properties"].get("status").is_none());
        assert!(close.get("allOf").is_none(), "{close:?}");
        assert_eq!(
            close["required"],
            serde_json::json!(["project_id", "conversation_id"])
        );
        let update = &table.get("conversations_update").unwrap().input_schema;
        assert!(update.contains_key("allOf"));
    }

    /// A create is a route that answers 201; only creates take an idempotency key.
    #[test]
    fn creates_are_the_routes_that_answer_201() {
        let document = document();
        for def in CATALOG {
            let op = operation(&document, def.method, def.path).unwrap();
            assert_eq!(
                op["responses"].get("201").is_some(),
                def.effect == Effect::Create,
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn an_origin_is_allowed_when_named_or_this_servers_own_on_loopback() {
        let named = |list: &[&str]| -> Vec<AllowedOrigin> {
            list.iter()
                .map(|o| AllowedOrigin::try_from(o.to_string()).unwrap())
                .collect()
        };
        let check = |allowed: &[&str], origin: &str, host: &str| {
            allowed_origin(
                &named(allowed),
                &HeaderValue::from_str(origin).unwrap(),
                Some(&HeaderValue::from_str(host).unwrap()),
            )
        };
        assert!(check(
            &["https://app.example.com"],
            "https://app.example.com",
            "api.example.com"
        ));
        assert!(!check(&["*"], "https://app.example.com", "api.example.com"));
        assert!(check(&["*"], "http://localhost:8080", "localhost:8080"));
        assert!(check(&["*"], "http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(check(&["*"], "http://[::1]:8080", "[::1]:8080"));
        // Another port of the same machine is another site; a rebound name is not loopback.
        assert!(!check(&["*"], "http://localhost:6274", "localhost:8080"));
        assert!(!check(
            &["*"],
            "http://evil.example:8080",
            "evil.example:8080"
        ));
    }

    /// docs/mcp.md lists the tools as `rogeriq mcp --list-tools` prints them.
    #[test]
    fn the_tool_list_in_the_docs_is_current() {
        let doc = include_str!("../../docs/mcp.md");
        let listed = tool_table().unwrap().markdown();
        assert!(
            doc.contains(&listed),
            "docs/mcp.md is stale: replace its table with the output of \
             `cargo run -- mcp --list-tools`"
        );
    }
}
