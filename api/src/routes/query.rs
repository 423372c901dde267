//! Database endpoints for any token that reaches the database: query, batch, export.

use std::time::Duration;

use axum::{
    body::Body,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use persql_events::{Envelope, QueryExecuted};
use persql_storage::{Params, QueryResult, Statement, StorageError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::DatabaseAccess,
    error::{ApiError, Problem},
    extract::ApiJson,
    state::{AppState, DbEntry},
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
    fn into_statement(self) -> Result<Statement, ApiError> {
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

/// Execution figures of a statement.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryMeta {
    /// Rows returned plus rows stepped through by full scans.
    pub rows_read: u64,
    /// Rows inserted, updated or deleted, including by triggers.
    pub rows_written: u64,
    pub changes: u64,
    pub last_insert_rowid: i64,
    pub duration_ms: f64,
}

/// Result of one statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// One object per row. INTEGERs beyond ±2^53 are strings; BLOBs are `{"base64": "…"}`.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Map<String, serde_json::Value>>,
    pub columns: Vec<String>,
    pub meta: QueryMeta,
}

impl From<QueryResult> for QueryResponse {
    fn from(r: QueryResult) -> Self {
        Self {
            data: r.rows,
            columns: r.columns,
            meta: QueryMeta {
                rows_read: r.rows_read,
                rows_written: r.rows_written,
                changes: r.changes,
                last_insert_rowid: r.last_insert_rowid,
                duration_ms: r.duration.as_secs_f64() * 1000.0,
            },
        }
    }
}

/// Body of `/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub statements: Vec<QueryRequest>,
}

/// One result per statement, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<QueryResponse>,
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
    ))]
pub async fn run_query(
    State(state): State<AppState>,
    access: DatabaseAccess,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let stmt = req.into_statement()?;
    json_response(execute(&state, &access, stmt).await?)
}

/// Runs one statement for `access` (REST and agent tools alike): the funds check,
/// execution under the caller's role, the usage event. Returns the JSON body of a
/// [`QueryResponse`].
pub(crate) async fn execute(
    state: &AppState,
    access: &DatabaseAccess,
    stmt: Statement,
) -> Result<Vec<u8>, ApiError> {
    check_funds(state, access)?;
    let outcome = state
        .storage
        .query(access.location(), access.role, stmt)
        .await;
    let (body, result) = match outcome {
        Ok(r) => {
            let (rows_read, rows_written, duration) = (r.rows_read, r.rows_written, r.duration);
            let body = json_bytes(&QueryResponse::from(r))?;
            (Ok(body), Some((rows_read, rows_written, duration)))
        }
        Err(e) => (Err(ApiError::from(e)), None),
    };
    record(state, access, 1, result, &body).await;
    body
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
    check_funds(&state, &access)?;
    let n = req.statements.len() as u32;
    let stmts = req
        .statements
        .into_iter()
        .map(QueryRequest::into_statement)
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = state
        .storage
        .batch(access.location(), access.role, stmts)
        .await;
    let (body, result) = match outcome {
        Ok(results) => {
            let read = results.iter().map(|r| r.rows_read).sum();
            let written = results.iter().map(|r| r.rows_written).sum();
            let duration = results.iter().map(|r| r.duration).sum();
            let body = json_bytes(&BatchResponse {
                results: results.into_iter().map(QueryResponse::from).collect(),
            })?;
            (Ok(body), Some((read, written, duration)))
        }
        Err(e) => (
            Err(ApiError::Batch {
                index: e.index,
                source: Box::new(ApiError::from(e.error)),
            }),
            None,
        ),
    };
    record(&state, &access, n, result, &body).await;
    json_response(body?)
}

/// 402 when the namespace billed for this call has no funds left. The operator's own calls
/// are never refused (they are how a depleted namespace gets inspected).
fn check_funds(state: &AppState, access: &DatabaseAccess) -> Result<(), ApiError> {
    if access.principal.kind == crate::tokens::TokenKind::Operator {
        return Ok(());
    }
    state
        .funding
        .check(&access.billed_namespace_id, &access.billed_namespace_slug)
}

fn json_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::Internal(format!("encoding the result: {e}")))
}

fn json_response(body: Vec<u8>) -> Result<Response, ApiError> {
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Queues the `query.executed` event (group-committed off the hot path). Requests that
/// never reached SQLite (not found, internal errors) are not usage.
async fn record(
    state: &AppState,
    access: &DatabaseAccess,
    statements: u32,
    result: Option<(u64, u64, Duration)>,
    body: &Result<Vec<u8>, ApiError>,
) {
    let error = match body {
        Ok(_) => None,
        Err(ApiError::Internal(_)) => return,
        Err(ApiError::NotFound { .. }) => return,
        Err(e) => Some(e.code().to_owned()),
    };
    let (rows_read, rows_written, duration) = result.unwrap_or_default();
    // Filed under the billed namespace: an app's calls show up on the app's subject.
    let event = Envelope::new(
        "/persql/api",
        &access.billed_namespace_slug,
        &format!("databases/{}", access.db.id),
        &QueryExecuted {
            database_id: access.db.id.clone(),
            namespace_id: access.db.namespace_id.clone(),
            billed_namespace_id: access.billed_namespace_id.clone(),
            token_id: access.principal.token_id.clone(),
            role: access.role.as_str().into(),
            statements,
            rows_read,
            rows_written,
            bytes: body.as_ref().map(|b| b.len() as u64).unwrap_or(0),
            duration_us: duration.as_micros() as u64,
            error,
        },
    );
    let cost = state
        .funding
        .prices()
        .query_cost(statements as u64, rows_read, rows_written);
    state
        .funding
        .spend(&access.billed_namespace_id, event.time_ms(), cost);
    state.query_events.send(event).await;
}

/// Download a consistent copy of the database file.
#[utoipa::path(get, path = "/v1/databases/{ns}/{db}/export", tag = "database",
    params(("ns" = String, Path), ("db" = String, Path)),
    responses(
        (status = 200, content_type = "application/vnd.sqlite3", body = Vec<u8>),
        (status = 401, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn export_database(
    State(state): State<AppState>,
    access: DatabaseAccess,
) -> Result<Response, ApiError> {
    export_file(&state, &access.db).await
}

/// A streamed, consistent copy of database `db` (also the account page's export link).
pub async fn export_file(state: &AppState, db: &DbEntry) -> Result<Response, ApiError> {
    let snapshot = state.storage.export(&db.location).await?;
    // Open before the temporary file is dropped (and unlinked): the open handle keeps the
    // data readable while it streams.
    let file = tokio::fs::File::open(snapshot.path())
        .await
        .map_err(|e| ApiError::from(StorageError::Io(e)))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::from(StorageError::Io(e)))?
        .len();
    drop(snapshot);
    let filename = format!("{}-{}.sqlite3", db.namespace_slug, db.slug);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}
