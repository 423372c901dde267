//! `POST /v1/users/provision`: a database per signed-in user, from a template.

use std::time::Duration;

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::databases::DatabaseInfo;
use crate::{
    auth::Workspace,
    databases,
    error::{ApiError, Problem},
    extract::ApiJson,
    slug::Subject,
    state::AppState,
    telemetry::rfc3339,
};

/// Body of `POST /v1/users/provision`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// The app's id for the user, 1–256 characters.
    pub subject: String,
    /// Slug of the template database to copy the schema of (first call only).
    pub template: Option<String>,
}

/// The user's database and a fresh token scoped to it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionResponse {
    /// `psql_live_…`, role `write`, short-lived.
    pub token: String,
    pub namespace_slug: String,
    pub database: DatabaseInfo,
    /// RFC 3339.
    pub expires_at: String,
}

/// Provision (or find) the user's database and mint a fresh write token for it.
/// Idempotent on `subject`; answers once the database is query-ready.
#[utoipa::path(post, path = "/v1/users/provision", tag = "workspace",
    request_body = ProvisionRequest,
    responses(
        (status = 200, body = ProvisionResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 402, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem),
    ))]
pub async fn provision_user(
    State(state): State<AppState>,
    ws: Workspace,
    ApiJson(req): ApiJson<ProvisionRequest>,
) -> Result<Json<ProvisionResponse>, ApiError> {
    let subject = Subject::parse(&req.subject)?;
    let template = req
        .template
        .as_deref()
        .map(databases::template_slug)
        .transpose()?;
    let ttl = Duration::from_secs(state.config.http.token_ttl_secs);
    let namespace = (ws.namespace_id.as_str(), ws.namespace_slug.as_str());
    let p = databases::provision(&state, namespace, &subject, template, ttl).await?;
    Ok(Json(ProvisionResponse {
        token: p.token.expose().to_owned(),
        namespace_slug: ws.namespace_slug.clone(),
        database: DatabaseInfo::from(&p.database),
        expires_at: rfc3339(p.expires_at),
    }))
}
