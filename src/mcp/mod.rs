//! The Model Context Protocol: the API as tools for LLM agents, over stdio (`rogeriq mcp`,
//! `stdio.rs`) and over streamable HTTP (`/mcp` on `rogeriq serve`, `http.rs`). Both serve
//! one `McpServer` (rmcp) over one tool table, and both make each tool call as an API request
//! over HTTP with the caller's key, so scopes, rate limits and the audit log apply as to any
//! API call. This module knows neither the HTTP framework nor the route table: `api::mcp`
//! builds the table from the OpenAPI document and mounts `/mcp`.

pub mod call;
pub mod catalog;
pub mod http;
pub mod server;
pub mod stdio;
pub mod tools;
