//! `POST /v1/apps`: a workspace registers an OAuth app ("Sign in with PerSQL").

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::Workspace,
    error::{ApiError, Problem},
    extract::ApiJson,
    oauth::{
        apps::{self, ClientType, NewApp},
        redirect::RedirectUri,
    },
    state::AppState,
};

/// Body of `POST /v1/apps`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAppRequest {
    /// Shown to people on the consent page: 1–100 characters.
    pub name: String,
    /// `public` (PKCE, no secret: browser and mobile apps) or `confidential` (a server
    /// holding a secret, plus PKCE).
    #[serde(rename = "type")]
    pub client_type: String,
    /// 1–10 exact redirect URIs: `https://…`, or `http://` on `localhost`, `127.0.0.1` or
    /// `[::1]` with any port. Custom schemes and other plain-HTTP hosts are refused.
    pub redirect_uris: Vec<String>,
}

/// A registered app. `clientSecret` is shown only here, once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAppResponse {
    /// `psqlrp_…`
    pub client_id: String,
    /// `psqlrs_…`, confidential apps only; stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
}

/// Register an OAuth app; its calls and its users' databases bill this workspace.
#[utoipa::path(post, path = "/v1/apps", tag = "workspace",
    request_body = CreateAppRequest,
    responses(
        (status = 201, body = CreateAppResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
pub async fn create_app(
    State(state): State<AppState>,
    ws: Workspace,
    ApiJson(req): ApiJson<CreateAppRequest>,
) -> Result<(StatusCode, Json<CreateAppResponse>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "name must be 1-100 characters without control characters",
        ));
    }
    let client_type = ClientType::parse(&req.client_type).ok_or_else(|| {
        ApiError::bad_request("invalid_request", "type must be public or confidential")
    })?;
    if req.redirect_uris.is_empty() || req.redirect_uris.len() > 10 {
        return Err(ApiError::bad_request(
            "invalid_redirect_uri",
            "give 1 to 10 redirect URIs",
        ));
    }
    let uris = req
        .redirect_uris
        .iter()
        .map(|u| {
            RedirectUri::parse(u).map_err(|e| {
                ApiError::bad_request("invalid_redirect_uri", format!("redirect URI {u:?}: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let new = NewApp {
        namespace_id: &ws.namespace_id,
        name,
        client_type,
        redirect_uris: &uris,
    };
    let (client_id, client_secret) = apps::register(&state.cp, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateAppResponse {
            client_id,
            client_secret,
            name: name.to_owned(),
            client_type: client_type.as_str().into(),
            redirect_uris: req.redirect_uris,
        }),
    ))
}
