//! Redirect URIs as OAuth 2.1 allows them here: HTTPS, or plain HTTP on a loopback host
//! (`localhost`, `127.0.0.1`, `[::1]`) with any port. Matched exactly, byte for byte.

use std::fmt;

use url::{Host, Url};

/// A registered (or presented) redirect URI that passed the rules.
#[derive(Clone, PartialEq, Eq)]
pub struct RedirectUri(Url);

impl fmt::Debug for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Why a redirect URI is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("not an absolute URL")]
    NotAUrl,
    #[error("must be https, or http on localhost, 127.0.0.1 or [::1]")]
    Scheme,
    #[error("must not carry a fragment")]
    Fragment,
    #[error("must not carry user information")]
    UserInfo,
    #[error("longer than 2000 characters")]
    TooLong,
}

impl RedirectUri {
    /// Parses `s`. The stored form is exactly `s` (no normalisation), so matching at
    /// authorize time is an exact string comparison.
    pub fn parse(s: &str) -> Result<Self, RedirectUriError> {
        if s.len() > 2000 {
            return Err(RedirectUriError::TooLong);
        }
        let url = Url::parse(s).map_err(|_| RedirectUriError::NotAUrl)?;
        let allowed = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => match url.host() {
                Some(Host::Domain(d)) => d == "localhost",
                Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
                Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
                None => false,
            },
            _ => false,
        };
        if !allowed {
            return Err(RedirectUriError::Scheme);
        }
        if url.fragment().is_some() {
            return Err(RedirectUriError::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo);
        }
        // `Url` normalises (adds a trailing `/`, lower-cases the host); only accept what
        // round-trips, so the registered string is the one that gets compared.
        if url.as_str() != s {
            return Err(RedirectUriError::NotAUrl);
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// This URI with `params` appended to its query.
    pub fn with_params(&self, params: &[(&str, &str)]) -> String {
        let mut url = self.0.clone();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_allowed() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://localhost/cb",
            "http://localhost:49152/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:3000/cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn custom_schemes_and_other_plain_http_hosts_are_refused() {
        for (bad, why) in [
            ("myapp://callback", RedirectUriError::Scheme),
            ("http://app.example/cb", RedirectUriError::Scheme),
            ("http://127.0.0.2/cb", RedirectUriError::Scheme),
            ("http://localhost.evil.example/cb", RedirectUriError::Scheme),
            ("javascript:alert(1)", RedirectUriError::Scheme),
            ("https://app.example/cb#frag", RedirectUriError::Fragment),
            ("https://user:pw@app.example/cb", RedirectUriError::UserInfo),
            ("/relative", RedirectUriError::NotAUrl),
            ("https://APP.example/cb", RedirectUriError::NotAUrl),
        ] {
            assert_eq!(RedirectUri::parse(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn params_are_appended_encoded() {
        let r = RedirectUri::parse("https://app.example/cb?x=1").unwrap();
        assert_eq!(
            r.with_params(&[("code", "a b"), ("state", "s&t")]),
            "https://app.example/cb?x=1&code=a+b&state=s%26t"
        );
    }
}
