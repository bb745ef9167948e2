//! The MCP server of both transports (rmcp's `ServerHandler`): the tools of the table, and
//! projects, conversations and knowledge-base articles as resources (`rogeriq://…`), each read
//! through the same API request its `*_get` tool makes. Over stdio the caller is fixed (the
//! CLI's key); over HTTP each request brings its own, put into the request's extensions by the
//! `/mcp` handler.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

use crate::mcp::call::{Api, Caller, Failure};
use crate::mcp::tools::{Tool, ToolTable};

const INSTRUCTIONS: &str = "The RogerIQ customer-support API as tools, under the scopes of \
    one API key. Project tools take a project_id (prj_…): list projects first. Lists return \
    `cursor` and `has_more`; pass `cursor` to get the next page. Creates take an optional \
    idempotency_key, so a retry with the same key does not create twice.";

/// The resources: a URI pattern, its `*_get` tool, and what it names.
const RESOURCES: &[(&str, &str, &str)] = &[
    (
        "rogeriq://projects/{project_id}",
        "projects_get",
        "A project",
    ),
    (
        "rogeriq://projects/{project_id}/conversations/{conversation_id}",
        "conversations_get",
        "A conversation",
    ),
    (
        "rogeriq://projects/{project_id}/kb/articles/{kb_article_id}",
        "kb_get",
        "A knowledge-base article",
    ),
];

/// The server: cheap to clone, one per session or request.
#[derive(Clone)]
pub struct McpServer {
    shared: Arc<Shared>,
}

struct Shared {
    table: ToolTable,
    /// The tools as `tools/list` shows them.
    listed: Vec<rmcp::model::Tool>,
    api: Api,
    /// The fixed caller (stdio); `None` where each request brings its own (HTTP).
    caller: Option<Arc<Caller>>,
}

impl McpServer {
    pub fn new(table: ToolTable, api: Api, caller: Option<Arc<Caller>>) -> McpServer {
        let listed = table.tools.iter().map(listed).collect();
        McpServer {
            shared: Arc::new(Shared {
                table,
                listed,
                api,
                caller,
            }),
        }
    }

    fn caller(&self, extensions: &rmcp::model::Extensions) -> Result<Arc<Caller>, ErrorData> {
        if let Some(caller) = &self.shared.caller {
            return Ok(Arc::clone(caller));
        }
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Caller>>())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("the request carries no caller", None))
    }

    fn tool(&self, name: &str) -> Option<&Tool> {
        self.shared.table.get(name)
    }
}

/// A tool as listed, with annotations from its effect.
fn listed(tool: &Tool) -> rmcp::model::Tool {
    let effect = tool.def.effect;
    let annotations = ToolAnnotations::new()
        .read_only(effect.read_only())
        .destructive(effect.destructive())
        .idempotent(effect.idempotent())
        .open_world(effect.open_world());
    rmcp::model::Tool::new(
        tool.name(),
        tool.def.description,
        Arc::new(tool.input_schema.clone()),
    )
    .annotate(annotations)
}

/// The tool arguments a resource URI names, matched against the patterns of `RESOURCES`.
fn resource_arguments(uri: &str) -> Option<(&'static str, Map<String, Value>)> {
    let segments: Vec<&str> = uri.strip_prefix("rogeriq://")?.split('/').collect();
    RESOURCES.iter().find_map(|(pattern, tool, _)| {
        let parts: Vec<&str> = pattern.strip_prefix("rogeriq://")?.split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut arguments = Map::new();
        for (part, segment) in parts.iter().zip(&segments) {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !segment.is_empty() => {
                    arguments.insert(name.to_string(), json!(segment));
                }
                None if part == segment => {}
                _ => return None,
            }
        }
        Some((*tool, arguments))
    })
}

fn failure_to_error(failure: Failure) -> ErrorData {
    let message = format!(
        "{}: {}",
        failure.body["code"].as_str().unwrap_or_default(),
        failure.body["error"].as_str().unwrap_or_default()
    );
    if failure.status == Some(404) {
        ErrorData::resource_not_found(message, Some(failure.body))
    } else {
        ErrorData::invalid_request(message, Some(failure.body))
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("rogeriq", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    /// The current revision and the two before it.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        let known = ProtocolVersion::KNOWN_VERSIONS;
        Cow::Borrowed(&known[known.len().saturating_sub(3)..])
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.shared.listed.clone()))
    }

    /// An unknown tool is a protocol error (-32602); everything else a tool answers.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = self.tool(&request.name).ok_or_else(|| {
            ErrorData::invalid_params(format!("unknown tool: {}", request.name), None)
        })?;
        let caller = self.caller(&context.extensions)?;
        let result = self
            .shared
            .api
            .call_tool(tool, request.arguments, &caller)
            .await;
        Ok(result.into())
    }

    /// The organisation's projects; conversations and articles are read by template.
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context.extensions)?;
        let tool = self
            .tool("projects_list")
            .ok_or_else(|| ErrorData::internal_error("no projects_list tool", None))?;
        let body = self
            .shared
            .api
            .call(tool, Map::new(), &caller)
            .await
            .map_err(failure_to_error)?;
        let resources = body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|project| {
                let id = project["id"].as_str()?;
                let name = project["name"].as_str().unwrap_or(id);
                Some(
                    Resource::new(format!("rogeriq://projects/{id}"), name)
                        .with_mime_type("application/json"),
                )
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let templates = RESOURCES
            .iter()
            .map(|(pattern, _, description)| {
                ResourceTemplate::new(*pattern, *description)
                    .with_description(*description)
                    .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (tool, arguments) = resource_arguments(&request.uri).ok_or_else(|| {
            ErrorData::resource_not_found(format!("no such resource: {}", request.uri), None)
        })?;
        let caller = self.caller(&context.extensions)?;
        let tool = self
            .tool(tool)
            .ok_or_else(|| ErrorData::internal_error("a resource without its tool", None))?;
        let body = self
            .shared
            .api
            .call(tool, arguments, &caller)
            .await
            .map_err(failure_to_error)?;
        let contents = ResourceContents::text(body["data"].to_string(), request.uri)
            .with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_name_their_tool_and_arguments() {
        let (tool, args) =
            resource_arguments("rogeriq://projects/prj_1/conversations/conv_2").unwrap();
        assert_eq!(tool, "conversations_get");
        assert_eq!(args["project_id"], "prj_1");
        assert_eq!(args["conversation_id"], "conv_2");
        assert_eq!(
            resource_arguments("rogeriq://projects/prj_1").unwrap().0,
            "projects_get"
        );
        for bad in [
            "rogeriq://projects/",
            "rogeriq://projects/prj_1/kb/x/y",
            "https://projects/prj_1",
            "rogeriq://projects/prj_1/conversations",
        ] {
            assert!(resource_arguments(bad).is_none(), "{bad}");
        }
    }
}
