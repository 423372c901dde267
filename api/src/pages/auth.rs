//! The sign-in, sign-up and consent pages.

use axum::{http::StatusCode, response::Response};
use maud::{Markup, html};

use super::{hidden, page};
use crate::accounts::MIN_NEW_CHARS;

/// Where a form came from and goes back to after signing in (a local path).
#[derive(Debug)]
pub struct FormContext<'a> {
    pub csrf: &'a str,
    pub return_to: &'a str,
    pub error: Option<&'a str>,
    /// A neutral message above the form (after a sign-up).
    pub notice: Option<&'a str>,
    pub cookies: &'a [String],
}

fn with_return(path: &str, return_to: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    format!("{path}?{q}")
}

/// The form's error line, its hidden fields, and the link to the other form.
fn form_parts(ctx: &FormContext<'_>) -> (Markup, Markup) {
    let head = html! {
        @if let Some(n) = ctx.notice { p role="status" { (n) } }
        @if let Some(e) = ctx.error { p.error role="alert" { (e) } }
    };
    let fields = html! { (hidden("csrf", ctx.csrf)) (hidden("return_to", ctx.return_to)) };
    (head, fields)
}

fn sign_in_body(ctx: &FormContext<'_>) -> Markup {
    let (error, fields) = form_parts(ctx);
    html! {
        h1 { "Sign in to PerSQL" }
        (error)
        form method="post" action="/account/signin" {
            (fields)
            label { "Email " input type="email" name="email" required autocomplete="username"; }
            label { "Password " input type="password" name="password" required autocomplete="current-password"; }
            button type="submit" { "Sign in" }
        }
        p.muted {
            "New here? "
            a href=(with_return("/account/signup", ctx.return_to)) { "Create an account" }
        }
    }
}

/// The sign-in form.
pub fn sign_in(status: StatusCode, ctx: &FormContext<'_>) -> Response {
    page(status, "Sign in", sign_in_body(ctx), ctx.cookies)
}

fn sign_up_body(ctx: &FormContext<'_>) -> Markup {
    let (error, fields) = form_parts(ctx);
    html! {
        h1 { "Create your PerSQL account" }
        p {
            "Your account holds your own databases. Apps you approve get a private database in it; \
             you can look inside, export it and disconnect them at any time."
        }
        (error)
        form method="post" action="/account/signup" {
            (fields)
            label { "Email " input type="email" name="email" required autocomplete="username"; }
            label {
                "Password (at least " (MIN_NEW_CHARS) " characters, hard to guess: a few unrelated words work well) "
                input type="password" name="password" required minlength=(MIN_NEW_CHARS) autocomplete="new-password";
            }
            button type="submit" { "Create account" }
        }
        p.muted {
            "Have an account? "
            a href=(with_return("/account/signin", ctx.return_to)) { "Sign in" }
        }
    }
}

/// The sign-up form.
pub fn sign_up(status: StatusCode, ctx: &FormContext<'_>) -> Response {
    page(status, "Create account", sign_up_body(ctx), ctx.cookies)
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

fn consent_body(c: &Consent<'_>) -> Markup {
    html! {
        h1 { (c.app_name) " wants to store its data in your PerSQL account" }
        p { "Signed in as " strong { (c.email) } "." }
        p {
            "If you approve, " strong { (c.app_name) } " gets "
            strong { "a private database in your account and nothing else" }
            ": it cannot see your other databases, your balance or your email address. \
             You can look at what it stores, export it, and disconnect it at any time from "
            a href="/account" { "your account" }
            "; disconnecting keeps the data."
        }
        p.muted { "You will be sent back to " code { (c.redirect_host) } "." }
        form method="post" action="/oauth/authorize" {
            (hidden("csrf", c.csrf))
            @for (k, v) in c.params { (hidden(k, v)) }
            button type="submit" name="decision" value="approve" { "Approve" }
            button type="submit" name="decision" value="deny" { "Deny" }
        }
    }
}

/// The consent page: names the app and says exactly what it gets.
pub fn consent(c: &Consent<'_>) -> Response {
    page(StatusCode::OK, "Approve app", consent_body(c), c.cookies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::tests::{EVIL, EVIL_ESCAPED, assert_escaped};

    fn evil_form() -> FormContext<'static> {
        FormContext {
            csrf: EVIL,
            return_to: EVIL,
            error: Some(EVIL),
            notice: None,
            cookies: &[],
        }
    }

    #[test]
    fn sign_in_escapes_the_error_and_the_hidden_fields() {
        let html = sign_in_body(&evil_form()).into_string();
        // The error line, the csrf field and the return_to field; the link is URL-encoded.
        assert_escaped(&html, 3);
        assert!(html.contains(&format!(
            r#"<p class="error" role="alert">{EVIL_ESCAPED}</p>"#
        )));
        assert!(html.contains(&format!(r#"name="return_to" value="{EVIL_ESCAPED}""#)));
    }

    #[test]
    fn sign_up_escapes_the_error_and_the_hidden_fields() {
        let html = sign_up_body(&evil_form()).into_string();
        assert_escaped(&html, 3);
        assert!(html.contains(&format!(r#"name="csrf" value="{EVIL_ESCAPED}""#)));
    }

    #[test]
    fn the_other_forms_link_carries_return_to_url_encoded() {
        let ctx = FormContext {
            return_to: "/oauth/authorize?a=1&b=2",
            ..evil_form()
        };
        let html = sign_in_body(&ctx).into_string();
        assert!(html.contains(
            r#"<a href="/account/signup?return_to=%2Foauth%2Fauthorize%3Fa%3D1%26b%3D2">"#
        ));
        let html = sign_in_body(&FormContext {
            return_to: "/x y",
            ..ctx
        })
        .into_string();
        assert!(html.contains(r#"href="/account/signup?return_to=%2Fx+y""#));
    }

    #[test]
    fn consent_escapes_the_app_email_host_and_every_parameter() {
        let params = [("redirect_uri", EVIL), (EVIL, "v")];
        let html = consent_body(&Consent {
            app_name: EVIL,
            redirect_host: EVIL,
            email: EVIL,
            csrf: EVIL,
            params: &params,
            cookies: &[],
        })
        .into_string();
        // The app name twice, the email, the host, csrf, one parameter's value and one's name.
        assert_escaped(&html, 7);
        assert!(html.contains(&format!(r#"name="{EVIL_ESCAPED}" value="v""#)));
    }
}
