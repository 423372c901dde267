//! `/oauth/authorize`: GET shows sign-in (when needed) and then the consent page; POST
//! takes the person's decision and redirects to the app with a code or `access_denied`.

use axum::{
    extract::{
        Form, Query, RawQuery, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;

use super::params::{Authorize, AuthorizeParams, Refusal, validate};
use crate::{
    accounts::{Account, sessions},
    error::ApiError,
    oauth::{codes, grants},
    pages::{
        self,
        auth::{Consent, FormContext},
    },
    state::AppState,
};

/// Turns a refusal into the page or redirect it calls for.
fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Page(msg) => pages::error(StatusCode::BAD_REQUEST, "Cannot continue", &msg),
        Refusal::Redirect {
            redirect,
            error,
            description,
            state,
        } => pages::see_other(
            &Refusal::location(&redirect, error, &description, state.as_deref()),
            &[],
        ),
        Refusal::Internal(e) => pages::api_error(e),
    }
}

/// Shows the sign-in page, returning here afterwards.
fn sign_in_first(headers: &HeaderMap, state: &AppState, return_to: &str) -> Response {
    let (csrf, set) = sessions::csrf_token(headers, state.secure_cookies());
    let cookies: Vec<String> = set.into_iter().collect();
    pages::auth::sign_in(
        StatusCode::OK,
        &FormContext {
            csrf: &csrf,
            return_to,
            error: None,
            notice: None,
            cookies: &cookies,
        },
    )
}

fn consent_page(
    headers: &HeaderMap,
    state: &AppState,
    account: &Account,
    req: &Authorize,
    p: &AuthorizeParams,
) -> Response {
    let (csrf, set) = sessions::csrf_token(headers, state.secure_cookies());
    let cookies: Vec<String> = set.into_iter().collect();
    let host = url::Url::parse(req.redirect.as_str())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    pages::auth::consent(&Consent {
        app_name: &req.app.name,
        redirect_host: &host,
        email: &account.email,
        csrf: &csrf,
        params: &p.pairs(),
        cookies: &cookies,
    })
}

/// Start of the authorization code flow (HTML).
pub async fn authorize_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Response {
    let Ok(Query(p)) = query else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The authorization link is malformed (a parameter is repeated or not text).",
        );
    };
    let req = match validate(&state, &p).await {
        Ok(r) => r,
        Err(r) => return refused(r),
    };
    match sessions::current(&state.cp, &headers).await {
        Ok(Some(account)) => consent_page(&headers, &state, &account, &req, &p),
        Ok(None) => sign_in_first(
            &headers,
            &state,
            &format!("/oauth/authorize?{}", raw.unwrap_or_default()),
        ),
        Err(e) => pages::api_error(e.into()),
    }
}

/// The consent form's fields.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub decision: String,
    #[serde(flatten)]
    pub params: AuthorizeParams,
}

/// The person's decision on the consent page.
pub async fn decide_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The form was malformed.",
        );
    };
    if !sessions::csrf_ok(&headers, &form.csrf) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "Cannot continue",
            "The form expired or did not come from PerSQL. Go back and try again.",
        );
    }
    let req = match validate(&state, &form.params).await {
        Ok(r) => r,
        Err(r) => return refused(r),
    };
    let account = match sessions::current(&state.cp, &headers).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return pages::error(
                StatusCode::UNAUTHORIZED,
                "Cannot continue",
                "Your session ended. Start again from the app.",
            );
        }
        Err(e) => return pages::api_error(e.into()),
    };
    match form.decision.as_str() {
        "approve" => match approve(&state, &account, &req).await {
            Ok(location) => pages::see_other(&location, &[]),
            Err(e) => pages::api_error(e),
        },
        "deny" => pages::see_other(
            &Refusal::location(
                &req.redirect,
                "access_denied",
                "the person declined",
                req.state.as_deref(),
            ),
            &[],
        ),
        _ => pages::error(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "Choose Approve or Deny.",
        ),
    }
}

/// Records the grant and issues a code; returns the redirect location.
async fn approve(state: &AppState, account: &Account, req: &Authorize) -> Result<String, ApiError> {
    grants::approve(state, account, &req.app).await?;
    let code = codes::issue(
        &state.cp,
        &codes::NewCode {
            client_id: &req.app.client_id,
            account_id: &account.id,
            redirect_uri: req.redirect.as_str(),
            code_challenge: &req.code_challenge,
            scope: &req.scope,
            nonce: req.nonce.as_deref(),
        },
    )
    .await?;
    let mut p = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        p.push(("state", s));
    }
    Ok(req.redirect.with_params(&p))
}
