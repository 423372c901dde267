//! The sign-in, sign-up and consent pages.

use axum::{http::StatusCode, response::Response};

use super::{escape, hidden, page};

/// Where a form came from and goes back to after signing in (a local path).
#[derive(Debug)]
pub struct FormContext<'a> {
    pub csrf: &'a str,
    pub return_to: &'a str,
    pub error: Option<&'a str>,
    pub cookies: &'a [String],
}

fn error_line(e: Option<&str>) -> String {
    e.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

fn with_return(path: &str, return_to: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    format!("{path}?{q}")
}

/// The sign-in form.
pub fn sign_in(status: StatusCode, ctx: &FormContext<'_>) -> Response {
    let body = format!(
        "<h1>Sign in to PerSQL</h1>{}\
         <form method=\"post\" action=\"/account/signin\">{}{}\
         <label>Email <input type=\"email\" name=\"email\" required autocomplete=\"username\"></label>\
         <label>Password <input type=\"password\" name=\"password\" required autocomplete=\"current-password\"></label>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"muted\">New here? <a href=\"{}\">Create an account</a></p>",
        error_line(ctx.error),
        hidden("csrf", ctx.csrf),
        hidden("return_to", ctx.return_to),
        escape(&with_return("/account/signup", ctx.return_to)),
    );
    page(status, "Sign in", &body, ctx.cookies)
}

/// The sign-up form.
pub fn sign_up(status: StatusCode, ctx: &FormContext<'_>) -> Response {
    let body = format!(
        "<h1>Create your PerSQL account</h1>\
         <p>Your account holds your own databases. Apps you approve get a private database in it; \
         you can look inside, export it and disconnect them at any time.</p>{}\
         <form method=\"post\" action=\"/account/signup\">{}{}\
         <label>Email <input type=\"email\" name=\"email\" required autocomplete=\"username\"></label>\
         <label>Password (at least 8 characters) <input type=\"password\" name=\"password\" required minlength=\"8\" autocomplete=\"new-password\"></label>\
         <button type=\"submit\">Create account</button></form>\
         <p class=\"muted\">Have an account? <a href=\"{}\">Sign in</a></p>",
        error_line(ctx.error),
        hidden("csrf", ctx.csrf),
        hidden("return_to", ctx.return_to),
        escape(&with_return("/account/signin", ctx.return_to)),
    );
    page(status, "Create account", &body, ctx.cookies)
}

/// What the consent page shows and carries.
#[derive(Debug)]
pub struct Consent<'a> {
    pub app_name: &'a str,
    pub redirect_host: &'a str,
    pub email: &'a str,
    pub csrf: &'a str,
    /// The authorize request's parameters, re-posted with the decision.
    pub params: &'a [(&'a str, &'a str)],
    pub cookies: &'a [String],
}

/// The consent page: names the app and says exactly what it gets.
pub fn consent(c: &Consent<'_>) -> Response {
    let fields: String = c
        .params
        .iter()
        .map(|(k, v)| hidden(k, v))
        .collect::<Vec<_>>()
        .join("");
    let body = format!(
        "<h1>{app} wants to store its data in your PerSQL account</h1>\
         <p>Signed in as <strong>{email}</strong>.</p>\
         <p>If you approve, <strong>{app}</strong> gets <strong>a private database in your account \
         and nothing else</strong>: it cannot see your other databases, your balance or your \
         email address. You can look at what it stores, export it, and disconnect it at any time \
         from <a href=\"/account\">your account</a>; disconnecting keeps the data.</p>\
         <p class=\"muted\">You will be sent back to <code>{host}</code>.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">{csrf}{fields}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        app = escape(c.app_name),
        email = escape(c.email),
        host = escape(c.redirect_host),
        csrf = hidden("csrf", c.csrf),
    );
    page(StatusCode::OK, "Approve app", &body, c.cookies)
}
