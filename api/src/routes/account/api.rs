//! `GET /v1/account/apps`, `DELETE /v1/account/apps/{clientId}`: the connected apps as
//! JSON, for the session cookie or a personal workspace token of the account.

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::AccountCaller,
    error::{ApiError, Problem},
    extract::ApiPath,
    oauth::grants,
    state::AppState,
    telemetry::rfc3339,
};

/// An app holding a database in the account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedAppInfo {
    /// `psqlrp_…`
    pub client_id: String,
    pub name: String,
    /// `<namespace>/<db>`: open it with a personal token to inspect or export it.
    pub database: String,
    /// RFC 3339: since the last (re)connection.
    pub connected_at: String,
    /// RFC 3339; absent when never used. Updated at most once a minute.
    pub last_used_at: Option<String>,
}

/// The account's connected apps.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectedApps {
    pub apps: Vec<ConnectedAppInfo>,
}

/// List the apps holding a database in the account.
#[utoipa::path(get, path = "/v1/account/apps", tag = "account",
    responses((status = 200, body = ConnectedApps), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_connected_apps(
    State(state): State<AppState>,
    AccountCaller(account): AccountCaller,
) -> Result<Json<ConnectedApps>, ApiError> {
    let apps = grants::list(&state, &account).await?;
    Ok(Json(ConnectedApps {
        apps: apps
            .into_iter()
            .map(|a| ConnectedAppInfo {
                database: format!("{}/{}", account.namespace_slug, a.database_slug),
                client_id: a.client_id,
                name: a.name,
                connected_at: rfc3339(a.connected_at),
                last_used_at: a.last_used_at.map(rfc3339),
            })
            .collect(),
    }))
}

/// Disconnect an app: its token stops working at once (on every API process), the data
/// stays in the account, and approving the app again restores its access to it.
#[utoipa::path(delete, path = "/v1/account/apps/{clientId}", tag = "account",
    params(("clientId" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn disconnect_app(
    State(state): State<AppState>,
    AccountCaller(account): AccountCaller,
    ApiPath(client_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    grants::disconnect(&state, &account, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
