//! Server-rendered HTML pages (sign-in, sign-up, consent, errors, the account): plain HTML
//! forms with inline CSS, no JavaScript, no CDN. Every interpolated value goes through
//! [`escape`].

pub mod account;
pub mod auth;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// `s` safe inside HTML text and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        escape(name),
        escape(value)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}\
label{display:block;margin:.6rem 0}input[type=email],input[type=password],input[type=text]{width:100%;padding:.4rem}\
button{padding:.4rem 1rem;margin:.4rem .4rem 0 0}table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
.error{color:#a00}.muted{color:#666}code{background:#f3f3f3;padding:0 .2rem}";

/// A full page around `body` (already HTML), with `status` and optional `Set-Cookie`s.
/// Pages are never cached and never framed.
pub fn page(status: StatusCode, title: &str, body: &str, cookies: &[String]) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · PerSQL</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut res = (status, Html(html)).into_response();
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

/// An error shown to the person (never a redirect to the client).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/account\">Your account</a></p>",
            escape(title),
            escape(message)
        ),
        &[],
    )
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
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#x27;y&#x27;)&lt;/script&gt;"
        );
        assert!(hidden("a", "\"><b>").contains("value=\"&quot;&gt;&lt;b&gt;\""));
    }
}
