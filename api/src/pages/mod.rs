//! Server-rendered HTML pages (sign-in, sign-up, consent, errors, the account): plain HTML
//! forms with inline CSS, no JavaScript, no CDN. Markup is written in maud's `html!`
//! templates, which escape every interpolated value; `PreEscaped` appears only around
//! compile-time constants.

pub mod account;
pub mod auth;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// A hidden form field.
fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}\
label{display:block;margin:.6rem 0}input[type=email],input[type=password],input[type=text]{width:100%;padding:.4rem}\
button{padding:.4rem 1rem;margin:.4rem .4rem 0 0}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
.error{color:#a00}.muted{color:#666}code{background:#f3f3f3;padding:0 .2rem}";

/// The layout every page shares: `body` inside the document, titled `title`.
fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · PerSQL" }
                // A constant of this file: CSS must not be entity-escaped inside <style>.
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// A full page around `body`, with `status` and optional `Set-Cookie`s.
/// Pages are never cached and never framed.
fn page(status: StatusCode, title: &str, body: Markup, cookies: &[String]) -> Response {
    let mut res = (status, Html(document(title, body).into_string())).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'"),
    );
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

fn error_body(title: &str, message: &str) -> Markup {
    html! {
        h1 { (title) }
        p.error { (message) }
        p { a href="/account" { "Your account" } }
    }
}

/// An error shown to the person (never a redirect to the client).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, title, error_body(title, message), &[])
}

/// An `ApiError` as an HTML page (500s stay opaque and are logged).
pub fn api_error(e: crate::error::ApiError) -> Response {
    let res = axum::response::IntoResponse::into_response(e);
    let status = res.status();
    let message = if status.is_server_error() {
        "Something went wrong on our side. Please try again.".to_owned()
    } else {
        match status {
            StatusCode::PAYMENT_REQUIRED => {
                "This app cannot create databases right now (its balance is used up).".into()
            }
            _ => format!("The request could not be completed ({status})."),
        }
    };
    error(status, "Cannot continue", &message)
}

/// A 303 redirect to `location`, with optional `Set-Cookie`s.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn when(ms: i64) -> String {
    let t = crate::telemetry::rfc3339(ms);
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => t,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Markup, a quote of each kind and an ampersand: harmless only when escaped.
    pub(crate) const EVIL: &str = r#"<script>alert(1)</script>"'&"#;
    /// [`EVIL`] as it must appear in text and in double-quoted attributes.
    pub(crate) const EVIL_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";

    /// `html` holds `EVIL` only escaped, `times` times, and no raw markup from it.
    pub(crate) fn assert_escaped(html: &str, times: usize) {
        assert!(!html.contains("<script"), "raw markup in {html}");
        assert_eq!(html.matches(EVIL_ESCAPED).count(), times, "{html}");
    }

    #[test]
    fn hidden_fields_escape_their_value() {
        let field = hidden("csrf", EVIL).into_string();
        assert_eq!(
            field,
            format!(r#"<input type="hidden" name="csrf" value="{EVIL_ESCAPED}">"#)
        );
    }

    #[test]
    fn error_pages_escape_title_and_message() {
        assert_escaped(&document(EVIL, error_body(EVIL, EVIL)).into_string(), 3);
    }

    #[test]
    fn the_layout_carries_the_style_unescaped() {
        let html = document("Sign in", html! { p { "hi" } }).into_string();
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{html}"
        );
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        assert!(html.contains("<title>Sign in · PerSQL</title>"));
        assert!(html.contains("<body><p>hi</p></body>"));
    }
}
