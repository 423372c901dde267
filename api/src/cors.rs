//! CORS for browsers calling PerSQL from an app's own origin with Bearer tokens: the
//! configured origins (or any), never credentials (cookies stay same-origin).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Why `PERSQL_CORS_ORIGINS` was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid CORS origin {0:?}: write scheme://host[:port], e.g. https://app.example.com")]
pub struct InvalidOrigin(String);

/// The layer for `origins`: `*` (alone) allows any origin; otherwise each entry is an exact
/// `scheme://host[:port]` origin.
pub fn layer(origins: &[String]) -> Result<CorsLayer, InvalidOrigin> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    let allow = if origins.is_empty() || origins == ["*"] {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(3600)))
}

fn parse_origin(o: &str) -> Result<HeaderValue, InvalidOrigin> {
    let bad = || InvalidOrigin(o.to_owned());
    let o = o.trim_end_matches('/');
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(bad)?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
        return Err(bad());
    }
    HeaderValue::from_str(&o.to_ascii_lowercase()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_or_are_refused() {
        assert_eq!(
            parse_origin("https://App.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "app.example.com",
            "https://",
            "https://a.com/path",
            "ftp://a.com",
            "https://*.a.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        assert!(layer(&["*".into()]).is_ok());
        assert!(layer(&[]).is_ok());
        assert!(layer(&["https://a.com".into(), " http://b.com:8080 ".into()]).is_ok());
        assert!(layer(&["https://a.com".into(), "*".into()]).is_err());
    }
}
