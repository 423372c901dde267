//! Browser sessions and cookies: the `persql_session` cookie carries a random id (only its
//! SHA-256 is stored); `persql_csrf` is the double-submit token every form echoes.

use axum::http::{HeaderMap, header};
use persql_events::{ControlPlane, now_ms};
use rand::RngCore;
use sqlx::Row;

use super::{Account, Accounts};
use crate::{error::ApiError, tokens};

pub const SESSION_COOKIE: &str = "persql_session";
pub const CSRF_COOKIE: &str = "persql_csrf";
/// How long a session lasts.
pub const SESSION_SECS: i64 = 14 * 24 * 3600;

/// 256 random bits in hex.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, and Secure when the service is
/// served over HTTPS. `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// Starts a session for `account_id` (dropping expired sessions); returns the cookie value.
pub async fn create(cp: &ControlPlane, account_id: &str) -> Result<String, ApiError> {
    let id = random_id();
    let now = now_ms();
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(now)
        .execute(cp.pool())
        .await?;
    sqlx::query(
        "INSERT INTO sessions (hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tokens::hash(&id))
    .bind(account_id)
    .bind(now)
    .bind(now + SESSION_SECS * 1000)
    .execute(cp.pool())
    .await?;
    Ok(id)
}

/// Ends the session carried by `headers`, if any.
pub async fn delete(cp: &ControlPlane, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(tokens::hash(id))
            .execute(cp.pool())
            .await?;
    }
    Ok(())
}

/// The signed-in account of the request's session cookie, if the session is live.
pub async fn current(cp: &ControlPlane, headers: &HeaderMap) -> Result<Option<Account>, ApiError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if id.len() != 64 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT account_id FROM sessions WHERE hash = $1 AND expires_at > $2")
        .bind(tokens::hash(id))
        .bind(now_ms())
        .fetch_optional(cp.pool())
        .await?;
    match row {
        Some(r) => Ok(Accounts::get(cp, &r.try_get::<String, _>(0)?).await?),
        None => Ok(None),
    }
}

/// True when the form's `csrf` field equals the request's CSRF cookie.
pub fn csrf_ok(headers: &HeaderMap, presented: &str) -> bool {
    matches!(cookie(headers, CSRF_COOKIE), Some(c) if c.len() == 64 && c == presented)
}

/// The request's CSRF cookie value, or a fresh one (with the `Set-Cookie` to send).
pub fn csrf_token(headers: &HeaderMap, secure: bool) -> (String, Option<String>) {
    match cookie(headers, CSRF_COOKIE) {
        Some(c) if c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (c.to_owned(), None)
        }
        _ => {
            let t = random_id();
            let set = set_cookie(CSRF_COOKIE, &t, SESSION_SECS, secure);
            (t, Some(set))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; persql_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn cookies_are_secure_only_over_https() {
        assert!(set_cookie("s", "v", 10, true).contains("; Secure"));
        let plain = set_cookie("s", "v", 10, false);
        assert!(
            !plain.contains("Secure")
                && plain.contains("HttpOnly")
                && plain.contains("SameSite=Lax")
        );
    }

    #[test]
    fn csrf_must_match_the_cookie() {
        let t = random_id();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("{CSRF_COOKIE}={t}").parse().unwrap(),
        );
        assert!(csrf_ok(&h, &t));
        assert!(!csrf_ok(&h, "x"));
        assert!(!csrf_ok(&HeaderMap::new(), ""));
    }
}
