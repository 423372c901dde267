//! Rollout progress: `GET …/migrations` (counts per version), `GET …/migrations/{version}`
//! (the databases it failed on, with SQLite's error), `POST …/migrations/{version}/retry`.

use axum::{Json, extract::State, http::StatusCode};
use persql_provisioner::template_migrations::{FailedDatabase, status};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{MigrationInfo, template, template_of};
use crate::{
    auth::Workspace,
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
    state::AppState,
    telemetry::rfc3339,
};

/// The template's migrations, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationList {
    pub migrations: Vec<MigrationInfo>,
    /// The latest recorded version (0 without migrations).
    pub latest_version: i64,
}

/// A database a migration failed on: it stays at `currentVersion` and keeps serving.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedDatabaseInfo {
    pub database: String,
    pub database_id: String,
    pub current_version: i64,
    /// SQLite's message.
    pub error: String,
    pub attempts: i64,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<FailedDatabase> for FailedDatabaseInfo {
    fn from(f: FailedDatabase) -> Self {
        Self {
            database: f.slug,
            database_id: f.database_id,
            current_version: f.current_version,
            error: f.error,
            attempts: f.attempts,
            updated_at: rfc3339(f.updated_at),
        }
    }
}

/// One migration, its counts and a page of the databases it failed on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationDetail {
    pub migration: MigrationInfo,
    pub failed: Vec<FailedDatabaseInfo>,
    /// Pass as `after` for the next page of failures; absent on the last page.
    pub next_after: Option<String>,
}

/// Paging of failed databases.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailedParams {
    /// Return failed databases whose id sorts after this one.
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// What a retry queued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryResponse {
    pub version: i64,
    /// Failed databases queued for another attempt by the rollout.
    pub queued: u64,
}

/// List the template's migrations with rollout counts.
#[utoipa::path(get, path = "/v1/databases/{ns}/{template}/migrations", tag = "template-migrations",
    params(("ns" = String, Path), ("template" = String, Path)),
    responses(
        (status = 200, body = MigrationList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn list_migrations(
    State(state): State<AppState>,
    ws: Workspace,
    ApiPath((ns, tpl)): ApiPath<(String, String)>,
) -> Result<Json<MigrationList>, ApiError> {
    let rec = template_of(&state, &ws, &ns, &tpl).await?;
    let all = status::statuses(&state.cp, &rec.id).await?;
    let latest_version = all.last().map_or(0, |s| s.migration.version);
    Ok(Json(MigrationList {
        migrations: all.into_iter().map(MigrationInfo::from).collect(),
        latest_version,
    }))
}

/// One migration with its counts and the databases it failed on.
#[utoipa::path(get, path = "/v1/databases/{ns}/{template}/migrations/{version}", tag = "template-migrations",
    params(("ns" = String, Path), ("template" = String, Path), ("version" = i64, Path), FailedParams),
    responses(
        (status = 200, body = MigrationDetail),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    ))]
pub async fn get_migration(
    State(state): State<AppState>,
    ws: Workspace,
    ApiPath((ns, tpl, version)): ApiPath<(String, String, i64)>,
    ApiQuery(params): ApiQuery<FailedParams>,
) -> Result<Json<MigrationDetail>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be between 1 and 1000",
        ));
    }
    let rec = template_of(&state, &ws, &ns, &tpl).await?;
    let migration = status::status(&state.cp, &rec.id, version).await?;
    let failed = status::failures(
        &state.cp,
        &rec.id,
        version,
        params.after.as_deref().unwrap_or(""),
        limit,
    )
    .await?;
    let next_after = (failed.len() as i64 == limit)
        .then(|| failed.last().map(|f| f.database_id.clone()))
        .flatten();
    Ok(Json(MigrationDetail {
        migration: migration.into(),
        failed: failed.into_iter().map(FailedDatabaseInfo::from).collect(),
        next_after,
    }))
}

/// Retry a migration on the databases it failed on (202: the rollout does it).
#[utoipa::path(post, path = "/v1/databases/{ns}/{template}/migrations/{version}/retry", tag = "template-migrations",
    params(("ns" = String, Path), ("template" = String, Path), ("version" = i64, Path)),
    responses(
        (status = 202, body = RetryResponse),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn retry_migration(
    State(state): State<AppState>,
    ws: Workspace,
    ApiPath((ns, tpl, version)): ApiPath<(String, String, i64)>,
) -> Result<(StatusCode, Json<RetryResponse>), ApiError> {
    let rec = template_of(&state, &ws, &ns, &tpl).await?;
    let queued = status::retry(&state.cp, &template(&rec, &ws), version).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RetryResponse { version, queued }),
    ))
}
