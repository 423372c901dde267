//! The account: HTML sign-in/sign-up and account pages, and the JSON connected-apps API.

pub mod api;
pub mod forms;
pub mod pages;

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

use crate::{client_ip::client_ip, state::AppState};

/// The client's IP address: the socket's, or behind a trusted proxy
/// (`PERSQL_TRUSTED_PROXIES`) the one it forwarded; `unknown` when the server runs without
/// connection info.
#[derive(Debug)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| {
                    client_ip(c.0.ip(), &parts.headers, &state.config.http.trusted_proxies)
                        .to_string()
                })
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// `return_to` if it is one of our own pages, else the account home: never an open
/// redirect.
pub fn safe_return(return_to: &str) -> &str {
    let local = return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.contains('\\')
        && return_to.bytes().all(|b| b.is_ascii_graphic());
    let ours = return_to.starts_with("/oauth/authorize?")
        || return_to == "/account"
        || return_to.starts_with("/account/");
    if local && ours { return_to } else { "/account" }
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn return_to_never_leaves_the_site() {
        assert_eq!(
            safe_return("/oauth/authorize?client_id=x"),
            "/oauth/authorize?client_id=x"
        );
        assert_eq!(safe_return("/account"), "/account");
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "/docs",
            "javascript:x",
            "",
            "/account/\u{e9}",
            "/account x",
        ] {
            assert_eq!(safe_return(bad), "/account", "{bad}");
        }
    }
}
