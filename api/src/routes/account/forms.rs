//! Sign-in, sign-up and sign-out: HTML forms with CSRF tokens; sign-in is rate-limited
//! per (email, client IP). Sign-up answers the same whether or not the email has an account.

use axum::{
    extract::{
        Form, Query, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;

use super::{ClientIp, safe_return};
use crate::{
    accounts::{Account, AccountError, Email, Password, SignUp, sessions},
    pages::{self, auth::FormContext},
    state::AppState,
};

/// `?return_to=` of the form pages.
#[derive(Debug, Default, Deserialize)]
pub struct ReturnTo {
    pub return_to: Option<String>,
    /// Set on the sign-in page a sign-up sends the person to.
    pub signed_up: Option<String>,
}

/// What the sign-in page says after a sign-up, whether or not the email was new.
const AFTER_SIGN_UP: &str = "Now sign in with your email and the password you just chose. \
    If this email already had an account, nothing was changed: sign in with that account's password.";

/// Fields of the sign-in and sign-up forms.
#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub return_to: String,
}

type Render = fn(StatusCode, &FormContext<'_>) -> Response;

fn form(
    render: Render,
    status: StatusCode,
    headers: &HeaderMap,
    state: &AppState,
    return_to: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let (csrf, set) = sessions::csrf_token(headers, state.secure_cookies());
    let cookies: Vec<String> = set.into_iter().collect();
    render(
        status,
        &FormContext {
            csrf: &csrf,
            return_to: safe_return(return_to),
            error,
            notice,
            cookies: &cookies,
        },
    )
}

/// The sign-in page.
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ReturnTo>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let notice = q.signed_up.is_some().then_some(AFTER_SIGN_UP);
    let rt = q.return_to.unwrap_or_default();
    form(
        pages::auth::sign_in,
        StatusCode::OK,
        &headers,
        &state,
        &rt,
        None,
        notice,
    )
}

/// The sign-up page.
pub async fn sign_up_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ReturnTo>, QueryRejection>,
) -> Response {
    let rt = q.ok().and_then(|Query(q)| q.return_to).unwrap_or_default();
    form(
        pages::auth::sign_up,
        StatusCode::OK,
        &headers,
        &state,
        &rt,
        None,
        None,
    )
}

/// Starts a session and sends the person on.
async fn signed_in(state: &AppState, account: &Account, return_to: &str) -> Response {
    match sessions::create(&state.cp, &account.id).await {
        Ok(id) => {
            let cookie = sessions::set_cookie(
                sessions::SESSION_COOKIE,
                &id,
                sessions::SESSION_SECS,
                state.secure_cookies(),
            );
            pages::see_other(safe_return(return_to), &[cookie])
        }
        Err(e) => pages::api_error(e.into()),
    }
}

/// Checks the form's CSRF token; the failure page otherwise.
#[expect(
    clippy::result_large_err,
    reason = "the error is the page to answer with, built once per request"
)]
fn checked(
    headers: &HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
) -> Result<Credentials, Response> {
    let Ok(Form(c)) = form else {
        return Err(pages::error(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The form was malformed.",
        ));
    };
    if !sessions::csrf_ok(headers, &c.csrf) {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "Cannot continue",
            "The form expired or did not come from PerSQL. Go back, reload and try again.",
        ));
    }
    Ok(c)
}

/// Sign in with email and password.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    f: Result<Form<Credentials>, FormRejection>,
) -> Response {
    let c = match checked(&headers, f) {
        Ok(c) => c,
        Err(page) => return page,
    };
    let again = |status, msg: &str| {
        form(
            pages::auth::sign_in,
            status,
            &headers,
            &state,
            &c.return_to,
            Some(msg),
            None,
        )
    };
    let Ok(email) = Email::parse(&c.email) else {
        return again(
            StatusCode::BAD_REQUEST,
            "Enter an email address like name@example.com.",
        );
    };
    // Counted before the password is checked: concurrent attempts cannot all get past it.
    if !state.limiter.try_attempt(email.as_str(), &ip) {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Wait a few minutes and try again.",
        );
    }
    let account = match Password::parse(&c.password) {
        Ok(pw) => state.accounts.sign_in(&state.cp, &email, &pw).await,
        Err(_) => Ok(None),
    };
    match account {
        Ok(Some(a)) => {
            state.limiter.succeeded(email.as_str(), &ip);
            signed_in(&state, &a, &c.return_to).await
        }
        Ok(None) => again(StatusCode::UNAUTHORIZED, "Wrong email or password."),
        Err(e) => pages::api_error(e.into()),
    }
}

/// Create an account (with its own namespace), then sign in. A registered email gets the
/// same answer and changes nothing, so the form does not tell who has an account.
pub async fn sign_up(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    f: Result<Form<Credentials>, FormRejection>,
) -> Response {
    let c = match checked(&headers, f) {
        Ok(c) => c,
        Err(page) => return page,
    };
    let again = |status, msg: &str| {
        form(
            pages::auth::sign_up,
            status,
            &headers,
            &state,
            &c.return_to,
            Some(msg),
            None,
        )
    };
    let parsed = Email::parse(&c.email).and_then(|e| Ok((e, Password::parse(&c.password)?)));
    let (email, pw) = match parsed {
        Ok(p) => p,
        Err(e) => return again(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // Counted before the work, so concurrent sign-ups cannot all get past it.
    if !state.limiter.try_sign_up(&ip) {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many new accounts from this address. Wait a few minutes and try again.",
        );
    }
    match state.accounts.sign_up(&state.cp, &email, &pw).await {
        Ok(SignUp::Created(_) | SignUp::AlreadyRegistered) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", safe_return(&c.return_to))
                .append_pair("signed_up", "1")
                .finish();
            pages::see_other(&format!("/account/signin?{q}"), &[])
        }
        Err(e @ AccountError::WeakPassword(_)) => again(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => pages::api_error(e.into()),
    }
}

/// The CSRF field of forms that carry nothing else.
#[derive(Debug, Default, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// End the session.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    if !f.is_ok_and(|Form(c)| sessions::csrf_ok(&headers, &c.csrf)) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "Cannot continue",
            "The form expired. Go back, reload and try again.",
        );
    }
    if let Err(e) = sessions::delete(&state.cp, &headers).await {
        return pages::api_error(e.into());
    }
    let clear = sessions::set_cookie(sessions::SESSION_COOKIE, "", 0, state.secure_cookies());
    pages::see_other("/account/signin", &[clear])
}
