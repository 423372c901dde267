//! `/v1/tokens`: a workspace's tokens — mint (database or workspace), list without secrets,
//! revoke by id.

use axum::{Json, extract::State, http::StatusCode};
use persql_storage::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::Workspace,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    state::AppState,
    telemetry::rfc3339,
    tokens::{self, TokenKind, TokenRecord},
};

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// `database` (the default): one database with a role; `workspace`: every database of
    /// the namespace, like the token that mints it.
    #[schema(value_type = Option<String>, pattern = "^(database|workspace)$")]
    pub kind: Option<String>,
    /// Database tokens: `<db>` or `<ns>/<db>` (the namespace must be the workspace's).
    pub database: Option<String>,
    /// Database tokens: `read`, `write` or `admin`.
    #[schema(value_type = Option<String>, pattern = "^(read|write|admin)$")]
    pub role: Option<String>,
    /// Lifetime in seconds, 1 up to the server's maximum (`PERSQL_MAX_TOKEN_TTL`, default 30
    /// days). Required for database tokens; a workspace token without it never expires.
    #[schema(minimum = 1)]
    pub ttl_seconds: Option<u64>,
}

/// A minted token (its secret is shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenResponse {
    /// `psql_live_…` or `psql_ws_…`
    pub token: String,
    /// The token's id (for listing and revocation).
    pub id: String,
    /// `database` or `workspace`.
    pub kind: String,
    /// RFC 3339; absent: never expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Database tokens: `<ns>/<db>`.
    pub database: Option<String>,
    /// Database tokens: the role.
    pub role: Option<String>,
}

/// Mint a token: for one database of the workspace's namespace, or a workspace token.
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
    let max = state.config.http.max_token_ttl_secs;
    let expires_at = match req.ttl_seconds {
        Some(ttl) if ttl == 0 || ttl > max => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("ttlSeconds must be between 1 and {max}"),
            ));
        }
        Some(ttl) => Some(persql_events::now_ms() + (ttl as i64) * 1000),
        None => None,
    };
    let namespace = (ws.namespace_id.as_str(), ws.namespace_slug.as_str());
    match req.kind.as_deref().unwrap_or("database") {
        "workspace" => {
            if req.database.is_some() || req.role.is_some() {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "a workspace token takes no database or role",
                ));
            }
            let (token, id) =
                tokens::mint_workspace_token(&state.cp, namespace, expires_at).await?;
            Ok((
                StatusCode::CREATED,
                Json(CreateTokenResponse {
                    token: token.expose().to_owned(),
                    id,
                    kind: TokenKind::Workspace.as_str().into(),
                    expires_at: expires_at.map(rfc3339),
                    database: None,
                    role: None,
                }),
            ))
        }
        "database" => {
            let (Some(database), Some(role), Some(expires_at)) =
                (req.database, req.role, expires_at)
            else {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "a database token needs database, role and ttlSeconds",
                ));
            };
            let role: Role = role.parse().map_err(|_| {
                ApiError::bad_request("invalid_request", "role must be read, write or admin")
            })?;
            let db_slug = match database.split_once('/') {
                Some((ns, db)) if ns == ws.namespace_slug => db,
                Some(_) => return Err(ApiError::database_not_found()),
                None => database.as_str(),
            };
            let entry = state
                .databases
                .lookup(&ws.namespace_slug, db_slug)
                .await?
                .ok_or_else(ApiError::database_not_found)?;
            let (token, id) =
                tokens::mint_database_token(&state.cp, namespace, &entry.id, role, expires_at)
                    .await?;
            Ok((
                StatusCode::CREATED,
                Json(CreateTokenResponse {
                    token: token.expose().to_owned(),
                    id,
                    kind: TokenKind::Database.as_str().into(),
                    expires_at: Some(rfc3339(expires_at)),
                    database: Some(format!("{}/{}", ws.namespace_slug, entry.slug)),
                    role: Some(role.as_str().into()),
                }),
            ))
        }
        _ => Err(ApiError::bad_request(
            "invalid_request",
            "kind must be database or workspace",
        )),
    }
}

/// A token as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    /// `workspace` or `database`.
    pub kind: String,
    /// Database tokens: `<ns>/<db>`.
    pub database: Option<String>,
    /// Database tokens: `read`, `write` or `admin`.
    pub role: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339, to within a minute; absent: never used.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// RFC 3339; absent: never expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl TokenInfo {
    fn new(namespace_slug: &str, t: TokenRecord) -> Self {
        Self {
            id: t.id,
            kind: t.kind.as_str().into(),
            database: t.database_slug.map(|db| format!("{namespace_slug}/{db}")),
            role: t.role.map(|r| r.as_str().into()),
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
            expires_at: t.expires_at.map(rfc3339),
        }
    }
}

/// A page of tokens, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Paging for `GET /v1/tokens`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTokensParams {
    /// Return tokens older than the token with this id.
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// List the namespace's tokens that are not revoked (workspace and database tokens), without
/// their secrets.
#[utoipa::path(get, path = "/v1/tokens", tag = "workspace", params(ListTokensParams),
    responses(
        (status = 200, body = TokenList),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ws: Workspace,
    ApiQuery(params): ApiQuery<ListTokensParams>,
) -> Result<Json<TokenList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be between 1 and 1000",
        ));
    }
    let records = tokens::list(&state.cp, &ws.namespace_id, params.after.as_deref(), limit).await?;
    let next_after = (records.len() as i64 == limit)
        .then(|| records.last().map(|t| t.id.clone()))
        .flatten();
    Ok(Json(TokenList {
        tokens: records
            .into_iter()
            .map(|t| TokenInfo::new(&ws.namespace_slug, t))
            .collect(),
        next_after,
    }))
}

/// Revoke one of the namespace's tokens: it stops working at once on this server and, through
/// the `token.revoked` event, on every other API process.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "workspace",
    params(("id" = String, Path, description = "The token's id, as listed or minted")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ws: Workspace,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let namespace = (ws.namespace_id.as_str(), ws.namespace_slug.as_str());
    if !tokens::revoke(&state.cp, namespace, &id, "revoked by the workspace").await? {
        return Err(ApiError::not_found(
            "token_not_found",
            "no such token in this namespace",
        ));
    }
    state.auth.forget(&[id]);
    Ok(StatusCode::NO_CONTENT)
}
