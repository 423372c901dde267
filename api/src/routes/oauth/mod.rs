//! The OAuth 2.1 / OpenID Connect endpoints: discovery, JWKS, authorize, token.

pub mod authorize;
pub mod params;
pub mod token;
pub mod token_error;

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{oauth::SCOPES, state::AppState};

/// The OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414).
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
}

/// Where everything is and what is supported.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth", security(),
    responses((status = 200, body = OpenIdConfiguration)))]
pub async fn get_openid_configuration(State(state): State<AppState>) -> Json<OpenIdConfiguration> {
    let issuer = state.issuer();
    Json(OpenIdConfiguration {
        authorization_endpoint: format!("{issuer}/oauth/authorize"),
        token_endpoint: format!("{issuer}/oauth/token"),
        jwks_uri: format!("{issuer}/oauth/jwks"),
        issuer,
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: vec!["authorization_code"],
        subject_types_supported: vec!["pairwise"],
        id_token_signing_alg_values_supported: vec!["ES256"],
        scopes_supported: SCOPES.to_vec(),
        token_endpoint_auth_methods_supported: vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        code_challenge_methods_supported: vec!["S256"],
        claims_supported: vec!["iss", "sub", "aud", "exp", "iat", "nonce"],
    })
}

/// The keys ID tokens are signed with (RFC 7517 JWK Set).
#[utoipa::path(get, path = "/oauth/jwks", tag = "oauth", security(),
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn get_jwks(State(state): State<AppState>) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(state.signing_key.jwks())
}
