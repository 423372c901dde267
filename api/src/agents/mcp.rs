//! The MCP server of each database (rmcp, Streamable HTTP, stateless): tools `query` and
//! `describe`. The HTTP handler authenticates every request with the same `DatabaseAccess`
//! extractor as the REST endpoints and hands the result to the tool calls in the request's
//! extensions, so one token reaches one database here too.

use std::sync::Arc;

use http::request::Parts;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
        ToolAnnotations,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

use super::tools;
use crate::{access::DatabaseAccess, error::ApiError, queries, state::AppState};

/// The tower service answering `/v1/databases/{ns}/{db}/mcp`.
pub type McpService = StreamableHttpService<DatabaseMcp, NeverSessionManager>;

/// The authenticated caller of one MCP request, put in the request's extensions by the
/// route handler before rmcp sees the request.
#[derive(Clone)]
pub struct McpCaller {
    pub state: AppState,
    pub access: Arc<DatabaseAccess>,
}

/// Builds the service: stateless (each POST carries its own token, checked each time) and
/// answering with plain JSON when a tool sends no notifications. Host and Origin checks are
/// left to the Bearer token and the CORS layer: the server is meant to be reached by name.
pub fn service(max_body_bytes: usize, shutdown: CancellationToken) -> McpService {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(shutdown)
        .disable_allowed_hosts()
        .disable_allowed_origins();
    StreamableHttpService::new(|| Ok(DatabaseMcp), Arc::default(), config)
}

/// The MCP handler; everything per request comes from its [`McpCaller`].
#[derive(Clone, Copy, Debug)]
pub struct DatabaseMcp;

fn caller(ctx: &RequestContext<RoleServer>) -> Result<McpCaller, ErrorData> {
    ctx.extensions
        .get::<Parts>()
        .and_then(|p| p.extensions.get::<McpCaller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("request was not authenticated", None))
}

fn label(access: &DatabaseAccess) -> String {
    format!("{}/{}", access.db.namespace_slug, access.db.slug)
}

/// The problem a tool call ran into, as the text a model reads.
fn tool_error(e: &ApiError) -> CallToolResult {
    let text = match e {
        ApiError::Internal(msg) => {
            tracing::error!(error = %msg, "internal error in an MCP tool call");
            "error internal: internal server error".to_owned()
        }
        e => format!("error {}: {e}", e.code()),
    };
    CallToolResult::error(vec![ContentBlock::text(text)])
}

impl ServerHandler for DatabaseMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("persql", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "One SQLite database. Call describe for its schema, query to run SQL on it.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let McpCaller { state, access } = caller(&ctx)?;
        let schema = state
            .storage
            .describe(access.location())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "describing the schema for MCP tools/list");
                ErrorData::internal_error("the schema could not be read", None)
            })?;
        let defs = tools::definitions(&label(&access), access.role, &schema.to_text());
        let tools = defs
            .into_iter()
            .map(|d| {
                Tool::new(d.name, d.description, d.input_schema)
                    .with_annotations(ToolAnnotations::new().read_only(d.read_only))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let McpCaller { state, access } = caller(&ctx)?;
        let result = match request.name.as_ref() {
            "query" => {
                let outcome = match tools::query_arguments(request.arguments.as_ref()) {
                    Ok(stmt) => queries::execute(&state, &access, stmt)
                        .await
                        .map_err(ApiError::from),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(body) => CallToolResult::success(vec![ContentBlock::text(
                        String::from_utf8_lossy(&body).into_owned(),
                    )]),
                    Err(e) => tool_error(&e),
                }
            }
            "describe" => match state.storage.describe(access.location()).await {
                Ok(schema) => CallToolResult::success(vec![ContentBlock::text(schema.to_text())]),
                Err(e) => tool_error(&ApiError::from(e)),
            },
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {other:?}: query or describe"),
                    None,
                ));
            }
        };
        Ok(result.into())
    }
}
