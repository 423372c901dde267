//! `POST /oauth/token`: exchanges an authorization code (with its PKCE verifier, and the
//! secret of a confidential client) for the app's database token and, with `openid`, an
//! ID token.

use axum::{
    Json,
    extract::{Form, State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::token_error::OAuthError;
use crate::{
    oauth::{
        apps::{self, ClientType, OAuthApp},
        exchange::{self, Presented},
    },
    state::AppState,
};

/// Form fields of `POST /oauth/token` (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`.
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    /// Required unless sent with HTTP Basic.
    pub client_id: Option<String>,
    /// The PKCE verifier (S256).
    pub code_verifier: Option<String>,
    /// Confidential clients: the secret, unless sent with HTTP Basic.
    pub client_secret: Option<String>,
}

/// The app's token for its database in the person's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// `psql_live_…`: admin on that one database and nothing else.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    pub scope: String,
    /// `<person's namespace>/<app database>`.
    pub database: String,
    /// With scope `openid`: a JWT (ES256) verifiable with `/oauth/jwks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client();
    let v = v.to_str().map_err(|_| bad())?;
    let Some((scheme, b64)) = v.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let raw =
        String::from_utf8(STANDARD.decode(b64.trim()).map_err(|_| bad())?).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded first.
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok(Some((
        decode(id).ok_or_else(bad)?,
        decode(secret).ok_or_else(bad)?,
    )))
}

/// Authenticates the client: confidential clients need their secret.
async fn client(
    state: &AppState,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<OAuthApp, OAuthError> {
    let (client_id, secret) = match basic_credentials(headers)? {
        Some((id, secret)) => {
            if req.client_id.as_deref().is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret))
        }
        None => match &req.client_id {
            Some(id) => (id.clone(), req.client_secret.clone()),
            None => return Err(OAuthError::invalid_request("client_id is required")),
        },
    };
    let app = apps::find(&state.cp, &client_id)
        .await?
        .ok_or_else(OAuthError::invalid_client)?;
    if app.client_type == ClientType::Confidential && !app.secret_matches(secret.as_deref()) {
        return Err(OAuthError::invalid_client());
    }
    Ok(app)
}

/// Exchange an authorization code for the app's database token (RFC 6749 §4.1.3, PKCE).
#[utoipa::path(post, path = "/oauth/token", tag = "oauth", security(),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "RFC 6749 error: invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type"),
        (status = 401, description = "RFC 6749 error: invalid_client"),
    ))]
pub async fn exchange_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(req) = form.map_err(|_| {
        OAuthError::invalid_request("send a form-encoded body (each parameter once)")
    })?;
    let app = client(&state, &headers, &req).await?;
    match req.grant_type.as_deref() {
        Some("authorization_code") => {}
        Some("refresh_token" | "client_credentials" | "password") => {
            return Err(OAuthError::new(
                "unauthorized_client",
                "apps may only use authorization_code",
            ));
        }
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code",
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    }
    let (Some(code), Some(redirect_uri)) = (&req.code, &req.redirect_uri) else {
        return Err(OAuthError::invalid_request(
            "code and redirect_uri are required",
        ));
    };
    let Some(verifier) = &req.code_verifier else {
        return Err(OAuthError::invalid_request(
            "code_verifier is required (PKCE)",
        ));
    };
    let issued = exchange::redeem(
        &state,
        &app,
        &Presented {
            code,
            redirect_uri,
            verifier,
        },
    )
    .await?;
    let body = TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        scope: issued.scope,
        database: issued.database,
        id_token: issued.id_token,
    };
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(res)
}
