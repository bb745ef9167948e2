//! `/mcp` without its HTTP framework: rmcp's streamable HTTP service over the tool table,
//! stateless (each POST is answered on its own, as JSON), so that any worker of the server can
//! answer any request and no session outlives it. The caller of each request rides in its
//! extensions as an `Arc<Caller>`; the `/mcp` handler (`api::mcp`) puts it there after it has
//! checked the key and the `Origin`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::mcp::call::Api;
use crate::mcp::server::McpServer;
use crate::mcp::tools::ToolTable;

pub use crate::mcp::call::Caller;

pub type Response = http::Response<BoxBody<Bytes, Infallible>>;

/// The streamable HTTP endpoint, shared by every worker.
#[derive(Clone)]
pub struct HttpEndpoint {
    service: StreamableHttpService<McpServer, NeverSessionManager>,
}

impl HttpEndpoint {
    /// Tool calls go to `api` (this server, on loopback); bodies are capped at `max_body_bytes`.
    pub fn new(table: ToolTable, api: Api, max_body_bytes: usize) -> HttpEndpoint {
        let server = McpServer::new(table, api, None);
        // The handler checks `Origin` and the key before rmcp sees a request; rmcp's own `Host`
        // check allows only loopback names by default, which would refuse every deployment.
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .disable_allowed_hosts()
            .with_max_request_body_bytes(max_body_bytes);
        HttpEndpoint {
            service: StreamableHttpService::new(
                move || Ok(server.clone()),
                Arc::new(NeverSessionManager::default()),
                config,
            ),
        }
    }

    /// Answers one request, made as `caller`.
    pub async fn handle(
        &self,
        mut request: http::Request<Full<Bytes>>,
        caller: Caller,
    ) -> Response {
        request.extensions_mut().insert(Arc::new(caller));
        self.service.handle(request).await
    }
}
