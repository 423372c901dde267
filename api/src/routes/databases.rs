//! Workspace database management: create (e.g. a template), list, delete.

use axum::{Json, extract::State, http::StatusCode};
use persql_provisioner::DatabaseRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{Caller, Workspace},
    databases::{self, Owner},
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    principal::Principal,
    slug::DatabaseSlug,
    state::{AppState, state_name},
    telemetry::rfc3339,
};

/// Body of `POST /v1/databases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabaseRequest {
    /// 1–63 of `[a-z0-9-]`, starting with a letter.
    pub slug: String,
    /// Slug of a database of the same namespace whose schema (not rows) to copy.
    pub template: Option<String>,
}

/// A database of a namespace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInfo {
    pub id: String,
    pub slug: String,
    /// Slug of the template it was created from.
    pub template: Option<String>,
    /// `pending`, `ready` or `failed`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&DatabaseRecord> for DatabaseInfo {
    fn from(r: &DatabaseRecord) -> Self {
        Self {
            id: r.id.clone(),
            slug: r.slug.clone(),
            template: r.template_slug.clone(),
            state: state_name(r.state).into(),
            created_at: rfc3339(r.created_at),
        }
    }
}

/// A page of databases.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseList {
    pub databases: Vec<DatabaseInfo>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Paging for `GET /v1/databases`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Return databases whose slug sorts after this one.
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// Create a database in the workspace's namespace, empty or from a template.
#[utoipa::path(post, path = "/v1/databases", tag = "workspace",
    request_body = CreateDatabaseRequest,
    responses(
        (status = 201, body = DatabaseInfo),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem),
    ))]
pub async fn create_database(
    State(state): State<AppState>,
    ws: Workspace,
    ApiJson(req): ApiJson<CreateDatabaseRequest>,
) -> Result<(StatusCode, Json<DatabaseInfo>), ApiError> {
    let slug = DatabaseSlug::parse(&req.slug)?;
    let template = req
        .template
        .as_deref()
        .map(databases::template_slug)
        .transpose()?;
    let owner = Owner::namespace(&ws.namespace_id, &ws.namespace_slug);
    let rec = databases::create(&state, &owner, slug.as_str(), template).await?;
    Ok((StatusCode::CREATED, Json(DatabaseInfo::from(&rec))))
}

/// List the workspace's databases (templates and per-user ones), by slug.
#[utoipa::path(get, path = "/v1/databases", tag = "workspace", params(ListParams),
    responses((status = 200, body = DatabaseList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_databases(
    State(state): State<AppState>,
    ws: Workspace,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<DatabaseList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be between 1 and 1000",
        ));
    }
    let recs = state
        .registry
        .list(
            &ws.namespace_id,
            params.after.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    let next_after = (recs.len() as i64 == limit)
        .then(|| recs.last().map(|r| r.slug.clone()))
        .flatten();
    Ok(Json(DatabaseList {
        databases: recs.iter().map(DatabaseInfo::from).collect(),
        next_after,
    }))
}

/// Delete a database, its file and every token that reaches it.
#[utoipa::path(delete, path = "/v1/databases/{ns}/{db}", tag = "workspace",
    params(("ns" = String, Path), ("db" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_database(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((ns, db)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if matches!(*caller, Principal::Database(_)) {
        return Err(ApiError::forbidden(
            "database tokens cannot delete databases",
        ));
    }
    if !caller.manages_namespace(&ns) {
        return Err(ApiError::database_not_found());
    }
    let entry = state
        .databases
        .lookup(&ns, &db)
        .await?
        .ok_or_else(ApiError::database_not_found)?;
    databases::delete(&state, &entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
