//! Validation of an authorization request, shared by the GET (show sign-in or consent) and
//! the POST (the person's decision). Client and redirect-URI problems are shown to the
//! person; everything after those is reported to the client through the redirect.

use serde::Deserialize;

use crate::{
    error::ApiError,
    oauth::{
        apps::{self, OAuthApp},
        codes::valid_challenge,
        parse_scope,
        redirect::RedirectUri,
    },
    state::AppState,
};

/// The query of `/oauth/authorize` (and the hidden fields of the consent form).
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
}

impl AuthorizeParams {
    /// The parameters as `(name, value)` pairs, to carry through the consent form.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("nonce", &self.nonce),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// A request that passed every check.
#[derive(Debug)]
pub struct Authorize {
    pub app: OAuthApp,
    pub redirect: RedirectUri,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// Unknown client or unregistered redirect URI: shown to the person, never redirected.
    Page(String),
    /// Reported to the client at its (verified) redirect URI.
    Redirect {
        redirect: RedirectUri,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
    /// The control plane failed.
    Internal(ApiError),
}

impl Refusal {
    /// The redirect URI with `error`, `error_description` and `state`.
    pub fn location(
        redirect: &RedirectUri,
        error: &str,
        description: &str,
        state: Option<&str>,
    ) -> String {
        let mut p = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            p.push(("state", s));
        }
        redirect.with_params(&p)
    }
}

/// Checks `p` in the order RFC 6749 §4.1.2.1 asks: client and redirect URI first.
pub async fn validate(state: &AppState, p: &AuthorizeParams) -> Result<Authorize, Refusal> {
    let client_id = p.client_id.as_deref().unwrap_or("");
    let app = apps::find(&state.cp, client_id)
        .await
        .map_err(|e| Refusal::Internal(e.into()))?
        .ok_or_else(|| {
            Refusal::Page("Unknown app: the link you followed names no registered app.".into())
        })?;
    let redirect = p
        .redirect_uri
        .as_deref()
        .and_then(|r| app.redirect_uri(r))
        .ok_or_else(|| {
            Refusal::Page(format!(
                "The redirect address is not one {} registered, so PerSQL will not send you there.",
                app.name
            ))
        })?;
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        redirect: redirect.clone(),
        error,
        description: description.into(),
        state: p.state.clone(),
    };
    if p.response_type.as_deref() != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    match p.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256",
            ));
        }
        _ => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method=S256 is required",
            ));
        }
    }
    let challenge = p.code_challenge.as_deref().unwrap_or("");
    if !valid_challenge(challenge) {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be 43-128 base64url characters",
        ));
    }
    let scope = parse_scope(p.scope.as_deref())
        .ok_or_else(|| refuse("invalid_scope", "scopes are openid and database"))?;
    if p.state.as_deref().is_some_and(|s| s.len() > 1024)
        || p.nonce.as_deref().is_some_and(|s| s.len() > 1024)
    {
        return Err(refuse(
            "invalid_request",
            "state and nonce are at most 1024 characters",
        ));
    }
    Ok(Authorize {
        redirect,
        scope,
        state: p.state.clone(),
        code_challenge: challenge.to_owned(),
        nonce: p.nonce.clone(),
        app,
    })
}
