//! Running SQL for a caller (REST and agent tools alike): the funds check, the bounds on work
//! in flight, execution under the caller's role, the `query.executed` usage event; and
//! exports, bounded likewise.

use std::time::Duration;

use persql_events::{Envelope, QueryExecuted};
use persql_metering::Unfunded;
use persql_storage::{BatchError, QueryResult, Statement, StorageError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    access::DatabaseAccess,
    admission::{RateLimited, Ticket},
    principal::Principal,
    state::{AppState, DbEntry},
};

/// Why SQL was not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The namespace billed for the call has no funds left (402).
    #[error(transparent)]
    Unfunded(#[from] Unfunded),
    /// Too much work in flight for the database, namespace or token (429).
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Statement `index` of a batch failed; the batch was rolled back.
    #[error("statement {index} failed: {error}")]
    Batch { index: usize, error: StorageError },
    #[error("encoding the result: {0}")]
    Encode(#[from] serde_json::Error),
}

impl QueryError {
    /// The problem code recorded with the usage event; `None` when the request never reached
    /// SQLite (no usage).
    fn usage_code(&self) -> Option<&'static str> {
        let storage = match self {
            Self::Unfunded(_) => return Some("insufficient_funds"),
            Self::RateLimited(_) | Self::Encode(_) => return None,
            // A batch reached SQLite: whatever stopped it, the statements before it ran.
            Self::Batch { error, .. } => return Some(error.code()),
            Self::Storage(e) => e,
        };
        match storage {
            StorageError::NotFound
            | StorageError::InvalidLocation
            | StorageError::Io(_)
            | StorageError::Internal(_) => None,
            e => Some(e.code()),
        }
    }
}

impl From<BatchError> for QueryError {
    fn from(e: BatchError) -> Self {
        Self::Batch {
            index: e.index,
            error: e.error,
        }
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

/// One result per statement, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<QueryResponse>,
}

/// What a request used: (rows read, rows written, SQLite time).
type Usage = (u64, u64, Duration);

/// Runs one statement for `access`. Returns the JSON body of a [`QueryResponse`].
pub async fn execute(
    state: &AppState,
    access: &DatabaseAccess,
    stmt: Statement,
) -> Result<Vec<u8>, QueryError> {
    check_funds(state, access)?;
    let _in_flight = admit(state, access)?;
    let outcome = state
        .storage
        .query(access.location(), access.role, stmt)
        .await;
    let (body, usage) = match outcome {
        Ok(r) => {
            let usage = (r.rows_read, r.rows_written, r.duration);
            (json(&QueryResponse::from(r)), Some(usage))
        }
        Err(e) => (Err(e.into()), None),
    };
    record(state, access, 1, usage, &body).await;
    body
}

/// Runs statements in one transaction for `access`: all succeed or none has effect.
/// Returns the JSON body of a [`BatchResponse`].
pub async fn batch(
    state: &AppState,
    access: &DatabaseAccess,
    stmts: Vec<Statement>,
) -> Result<Vec<u8>, QueryError> {
    check_funds(state, access)?;
    let _in_flight = admit(state, access)?;
    let n = stmts.len() as u32;
    let outcome = state
        .storage
        .batch(access.location(), access.role, stmts)
        .await;
    let (body, usage) = match outcome {
        Ok(results) => {
            let read = results.iter().map(|r| r.rows_read).sum();
            let written = results.iter().map(|r| r.rows_written).sum();
            let duration = results.iter().map(|r| r.duration).sum();
            let body = json(&BatchResponse {
                results: results.into_iter().map(QueryResponse::from).collect(),
            });
            (body, Some((read, written, duration)))
        }
        Err(e) => (Err(e.into()), None),
    };
    record(state, access, n, usage, &body).await;
    body
}

/// Refuses the call when the namespace billed for it has no funds left. The operator's own
/// calls are never refused (they are how a depleted namespace gets inspected).
fn check_funds(state: &AppState, access: &DatabaseAccess) -> Result<(), Unfunded> {
    if matches!(*access.principal, Principal::Operator { .. }) {
        return Ok(());
    }
    state
        .funding
        .check(&access.billed_namespace_id, &access.billed_namespace_slug)
}

/// Counts the call in flight on its database, billed namespace and token, or refuses it
/// when one of them has as much as its bound allows.
fn admit(state: &AppState, access: &DatabaseAccess) -> Result<Ticket, RateLimited> {
    state.admission.query(
        &access.db.id,
        &access.billed_namespace_id,
        access.principal.token_id(),
    )
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, QueryError> {
    Ok(serde_json::to_vec(v)?)
}

/// Queues the `query.executed` event (group-committed off the hot path). Requests that
/// never reached SQLite (not found, internal errors) are not usage.
async fn record(
    state: &AppState,
    access: &DatabaseAccess,
    statements: u32,
    usage: Option<Usage>,
    body: &Result<Vec<u8>, QueryError>,
) {
    let error = match body {
        Ok(_) => None,
        Err(e) => match e.usage_code() {
            Some(code) => Some(code.to_owned()),
            None => return,
        },
    };
    let (rows_read, rows_written, duration) = usage.unwrap_or_default();
    // Filed under the billed namespace: an app's calls show up on the app's subject.
    let event = Envelope::new(
        "/persql/api",
        &access.billed_namespace_slug,
        &format!("databases/{}", access.db.id),
        &QueryExecuted {
            database_id: access.db.id.clone(),
            namespace_id: access.db.namespace_id.clone(),
            billed_namespace_id: access.billed_namespace_id.clone(),
            token_id: access.principal.token_id().to_owned(),
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

/// A consistent copy of a database, open for streaming.
#[derive(Debug)]
pub struct Export {
    /// Open before the temporary file was unlinked: the handle keeps the data readable.
    pub file: tokio::fs::File,
    pub len: u64,
    /// `<namespace>-<database>.sqlite3`.
    pub filename: String,
    /// Counts the export in flight until the download ends (the copy takes disk till then).
    pub in_flight: Ticket,
}

/// A consistent copy of database `db` (the export endpoint and the account page's link),
/// counted against the bounds on exports of `namespace_id` (the caller's) and of the process.
pub async fn export(
    state: &AppState,
    db: &DbEntry,
    namespace_id: &str,
) -> Result<Export, QueryError> {
    let in_flight = state.admission.export(namespace_id)?;
    let snapshot = state.storage.export(&db.location).await?;
    // Open before the temporary file is dropped (and unlinked).
    let file = tokio::fs::File::open(snapshot.path())
        .await
        .map_err(StorageError::from)?;
    let len = file.metadata().await.map_err(StorageError::from)?.len();
    drop(snapshot);
    Ok(Export {
        file,
        len,
        filename: format!("{}-{}.sqlite3", db.namespace_slug, db.slug),
        in_flight,
    })
}
