//! `POST /v1/tokens`: database tokens minted by a workspace.

use axum::{Json, extract::State, http::StatusCode};
use persql_storage::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::Workspace,
    error::{ApiError, Problem},
    extract::ApiJson,
    state::AppState,
    telemetry::rfc3339,
    tokens,
};

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// `<db>` or `<ns>/<db>` (the namespace must be the workspace's).
    pub database: String,
    /// `read`, `write` or `admin`.
    pub role: String,
    /// Lifetime in seconds (1 up to the server's maximum, default 30 days).
    pub ttl_seconds: u64,
}

/// A minted database token (shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenResponse {
    /// `psql_live_…`
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    /// `<ns>/<db>`
    pub database: String,
    pub role: String,
}

/// Mint a token for one database of the workspace's namespace.
#[utoipa::path(post, path = "/v1/tokens", tag = "workspace",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreateTokenResponse),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    ws: Workspace,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreateTokenResponse>), ApiError> {
    let role: Role = req.role.parse().map_err(|_| {
        ApiError::bad_request("invalid_request", "role must be read, write or admin")
    })?;
    if req.ttl_seconds == 0 || req.ttl_seconds > state.config.http.max_token_ttl_secs {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "ttlSeconds must be between 1 and {}",
                state.config.http.max_token_ttl_secs
            ),
        ));
    }
    let db_slug = match req.database.split_once('/') {
        Some((ns, db)) if ns == ws.namespace_slug => db,
        Some(_) => return Err(ApiError::database_not_found()),
        None => req.database.as_str(),
    };
    let entry = state
        .databases
        .lookup(&ws.namespace_slug, db_slug)
        .await?
        .ok_or_else(ApiError::database_not_found)?;
    let expires_at = persql_events::now_ms() + (req.ttl_seconds as i64) * 1000;
    let namespace = (ws.namespace_id.as_str(), ws.namespace_slug.as_str());
    let (token, _) =
        tokens::mint_database_token(&state.cp, namespace, &entry.id, role, expires_at).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateTokenResponse {
            token: token.expose().to_owned(),
            expires_at: rfc3339(expires_at),
            database: format!("{}/{}", ws.namespace_slug, entry.slug),
            role: role.as_str().into(),
        }),
    ))
}
