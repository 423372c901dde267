//! Token-endpoint errors as RFC 6749 §5.2 JSON: `{error, error_description}`, 400, or 401
//! for client authentication failures.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{error::ApiError, oauth::exchange::RedeemError};

/// An OAuth error answer of `/oauth/token`.
#[derive(Debug)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
    pub fn invalid_request(description: &str) -> Self {
        Self::new("invalid_request", description)
    }
    pub fn invalid_client() -> Self {
        Self::new("invalid_client", "client authentication failed")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut res = (
            status,
            Json(Body {
                error: self.error,
                error_description: &self.description,
            }),
        )
            .into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"persql\""),
            );
        }
        res
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(m) = &e {
            tracing::error!(error = %m, "token endpoint failed");
        }
        Self::new("server_error", "the server could not complete the request")
    }
}

impl From<RedeemError> for OAuthError {
    fn from(e: RedeemError) -> Self {
        match e {
            RedeemError::Grant(e) => ApiError::from(e).into(),
            e @ (RedeemError::UnknownCode
            | RedeemError::OtherClient
            | RedeemError::Reused
            | RedeemError::Expired
            | RedeemError::RedirectMismatch
            | RedeemError::VerifierMismatch
            | RedeemError::NoLongerValid) => Self::new("invalid_grant", e.to_string()),
        }
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(e).into()
    }
}
