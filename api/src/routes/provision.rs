//! `POST /v1/users/provision`: a database per signed-in user, from a template.

use axum::{Json, extract::State};
use persql_provisioner::subject_slug;
use persql_storage::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{
    databases::{DatabaseInfo, ensure, template_slug},
    tokens::mint_database_token,
};
use crate::{
    auth::Workspace,
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
    let template = req.template.as_deref().map(template_slug).transpose()?;
    state.funding.check(&ws.namespace_id, &ws.namespace_slug)?;
    let slug = subject_slug(&ws.namespace_id, subject.as_str());
    let subject_hash = hex::encode(Sha256::digest(format!(
        "{}\0{}",
        ws.namespace_id,
        subject.as_str()
    )));
    let (rec, _) = ensure(&state, &ws, &slug, template, Some(subject_hash)).await?;
    let expires_at = persql_events::now_ms() + (state.config.http.token_ttl_secs as i64) * 1000;
    let (token, _) = mint_database_token(&state, &ws, &rec.id, Role::Write, expires_at).await?;
    Ok(Json(ProvisionResponse {
        token,
        namespace_slug: ws.namespace_slug.clone(),
        database: DatabaseInfo::from(&rec),
        expires_at: rfc3339(expires_at),
    }))
}
