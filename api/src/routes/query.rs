//! Database endpoints for any token that reaches the database: query, batch, export.

use axum::{
    body::Body,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use persql_storage::{Params, Statement};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    auth::DatabaseAccess,
    error::{ApiError, Problem},
    extract::ApiJson,
    queries::{self, BatchResponse, Export, QueryResponse},
    state::AppState,
};

/// One SQL statement with its parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// A single SQL statement.
    pub sql: String,
    /// Positional (`[..]`, for `?`) or named (`{..}`, for `:name`/`@name`/`$name`) values.
    /// BLOBs as `{"base64": "…"}`.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
}

impl QueryRequest {
    pub fn into_statement(self) -> Result<Statement, ApiError> {
        let params = match self.params {
            None | Some(serde_json::Value::Null) => Params::None,
            Some(serde_json::Value::Array(v)) => Params::Positional(v),
            Some(serde_json::Value::Object(m)) => Params::Named(m),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_params",
                    "params must be an array or an object",
                ));
            }
        };
        Ok(Statement {
            sql: self.sql,
            params,
        })
    }
}

/// Body of `/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub statements: Vec<QueryRequest>,
}

/// Run one SQL statement.
#[utoipa::path(post, path = "/v1/databases/{ns}/{db}/query", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path)),
    request_body = QueryRequest,
    responses(
        (status = 200, body = QueryResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 402, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 408, body = Problem),
        (status = 413, body = Problem), (status = 507, body = Problem),
        (status = 429, body = Problem, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ))]
pub async fn run_query(
    State(state): State<AppState>,
    access: DatabaseAccess,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let stmt = req.into_statement()?;
    Ok(json_response(
        queries::execute(&state, &access, stmt).await?,
    ))
}

/// Run statements in one transaction: all succeed or none has effect.
#[utoipa::path(post, path = "/v1/databases/{ns}/{db}/batch", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path)),
    request_body = BatchRequest,
    responses(
        (status = 200, body = BatchResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 402, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 408, body = Problem),
        (status = 413, body = Problem), (status = 507, body = Problem),
        (status = 429, body = Problem, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ))]
pub async fn run_batch(
    State(state): State<AppState>,
    access: DatabaseAccess,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<Response, ApiError> {
    if req.statements.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "statements must not be empty",
        ));
    }
    if req.statements.len() > 1000 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "at most 1000 statements per batch",
        ));
    }
    let stmts = req
        .statements
        .into_iter()
        .map(QueryRequest::into_statement)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(queries::batch(&state, &access, stmts).await?))
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Download a consistent copy of the database file.
#[utoipa::path(get, path = "/v1/databases/{ns}/{db}/export", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path)),
    responses(
        (status = 200, content_type = "application/vnd.sqlite3", body = Vec<u8>),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 429, body = Problem, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ))]
pub async fn export_database(
    State(state): State<AppState>,
    access: DatabaseAccess,
) -> Result<Response, ApiError> {
    let export = queries::export(&state, &access.db, &access.billed_namespace_id).await?;
    Ok(export.into_response())
}

/// The export as a download (here and on the account page).
impl IntoResponse for Export {
    fn into_response(self) -> Response {
        let ticket = self.in_flight;
        // The body owns the ticket: the export counts in flight until the download ends
        // or the client goes away, as long as the unlinked copy holds its disk space.
        let file = tokio_util::io::InspectReader::new(self.file, move |_| {
            let _ = &ticket;
        });
        (
            [
                (header::CONTENT_TYPE, "application/vnd.sqlite3".to_owned()),
                (header::CONTENT_LENGTH, self.len.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", self.filename),
                ),
            ],
            Body::from_stream(tokio_util::io::ReaderStream::new(file)),
        )
            .into_response()
    }
}
