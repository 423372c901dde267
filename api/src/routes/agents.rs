//! A database as AI agents meet it: its schema (JSON or prompt-sized text), tool
//! definitions for the caller's role, and the MCP server.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::header,
    response::{IntoResponse, Response},
};
use persql_storage::Schema;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use utoipa::{IntoParams, ToSchema};

use crate::{
    agents::{
        mcp::McpCaller,
        tools::{self, ToolFormat},
    },
    auth::DatabaseAccess,
    error::{ApiError, Problem},
    extract::ApiQuery,
    state::AppState,
};

/// Layouts of the schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaFormat {
    /// The [`Schema`] document.
    #[default]
    Json,
    /// Compact `text/plain`, at most 16,000 bytes, for an LLM prompt.
    Text,
}

/// Query of `/schema`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SchemaParams {
    /// `json` (default) or `text`.
    #[param(inline)]
    pub format: Option<SchemaFormat>,
}

/// Describe the schema: tables (columns, indexes, foreign keys, DDL, row estimates), views,
/// triggers and the schema version; `?format=text` for a compact form to put in a prompt.
#[utoipa::path(get, path = "/v1/databases/{ns}/{db}/schema", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path), SchemaParams),
    responses(
        (status = 200, content((Schema = "application/json"), (String = "text/plain"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn describe_database(
    State(state): State<AppState>,
    access: DatabaseAccess,
    ApiQuery(params): ApiQuery<SchemaParams>,
) -> Result<Response, ApiError> {
    let schema = state.storage.describe(access.location()).await?;
    Ok(match params.format.unwrap_or_default() {
        SchemaFormat::Json => Json(schema).into_response(),
        SchemaFormat::Text => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            schema.to_text(),
        )
            .into_response(),
    })
}

/// Query of `/tools`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ToolsParams {
    /// `openai`, `anthropic` or `mcp` (default).
    #[param(inline)]
    pub format: Option<ToolFormat>,
}

/// Tool definitions for one database.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolsResponse {
    /// `ns/db`.
    pub database: String,
    /// The caller's role: a `read` token gets a read-only `query` tool.
    pub role: String,
    /// The layout of `tools`.
    #[schema(inline)]
    pub format: ToolFormat,
    /// `query` and `describe`, in the requested layout.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<serde_json::Value>,
}

/// Tool definitions (`query`, `describe`) for an assistant, with the schema in the `query`
/// description and the caller's role respected (the server enforces it whatever is called).
#[utoipa::path(get, path = "/v1/databases/{ns}/{db}/tools", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path), ToolsParams),
    responses(
        (status = 200, body = ToolsResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn list_tools(
    State(state): State<AppState>,
    access: DatabaseAccess,
    ApiQuery(params): ApiQuery<ToolsParams>,
) -> Result<Json<ToolsResponse>, ApiError> {
    let schema = state.storage.describe(access.location()).await?;
    let format = params.format.unwrap_or_default();
    let database = format!("{}/{}", access.db.namespace_slug, access.db.slug);
    let tools = tools::definitions(&database, access.role, &schema.to_text())
        .iter()
        .map(|d| tools::render(d, format))
        .collect();
    Ok(Json(ToolsResponse {
        database,
        role: access.role.as_str().to_owned(),
        format,
        tools,
    }))
}

/// The database's MCP server (Streamable HTTP, stateless, JSON-RPC over POST): tools
/// `query` and `describe`. Authenticated like every database endpoint.
#[utoipa::path(post, path = "/v1/databases/{ns}/{db}/mcp", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path)),
    request_body(content = Object, description = "A JSON-RPC 2.0 message (MCP)", content_type = "application/json"),
    responses(
        (status = 200, description = "JSON-RPC response (application/json or text/event-stream)"),
        (status = 202, description = "Notification accepted"),
        (status = 401, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn serve_mcp(
    State(state): State<AppState>,
    access: DatabaseAccess,
    mut req: Request,
) -> Response {
    let service = state.mcp.clone();
    req.extensions_mut().insert(McpCaller {
        state,
        access: Arc::new(access),
    });
    match service.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}
