//! `rogeriq mcp`: the MCP server over standard input and output, calling a RogerIQ server over
//! HTTP with the CLI's key. Nothing else may write to standard output.

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::mcp::call::{Api, Caller};
use crate::mcp::server::McpServer;
use crate::mcp::tools::ToolTable;

/// Where the tools' calls go, and as whom.
pub struct Endpoint {
    /// The server root (`http://127.0.0.1:8080`).
    pub api_base: String,
    pub api_key: String,
    /// The key's organisation when configured; else asked of the server on first need.
    pub org: Option<String>,
}

/// Serves until the client closes standard input.
pub fn serve(table: ToolTable, endpoint: Endpoint) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let api = Api::new(&endpoint.api_base)?;
        let caller = Arc::new(Caller::new(endpoint.api_key, endpoint.org));
        let running = McpServer::new(table, api, Some(caller))
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| format!("MCP session failed to start: {e}"))?;
        running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| format!("MCP session ended abnormally: {e}"))
    })
}
