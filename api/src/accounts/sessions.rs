//! Browser sessions and cookies: the `persql_session` cookie carries a random id (only its
//! SHA-256 is stored). Every form echoes a CSRF token derived from the session id, or before
//! sign-in from the random `persql_csrf` pre-session cookie: a cookie tossed in from a sibling
//! subdomain does not come with the matching token, and a token from another session does
//! not fit this one.

use axum::http::{HeaderMap, header};
use persql_events::{ControlPlane, now_ms};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Account, AccountError, Accounts};
use crate::tokens;

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
pub async fn create(cp: &ControlPlane, account_id: &str) -> Result<String, AccountError> {
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
pub async fn delete(cp: &ControlPlane, headers: &HeaderMap) -> Result<(), AccountError> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(tokens::hash(id))
            .execute(cp.pool())
            .await?;
    }
    Ok(())
}

/// The signed-in account of the request's session cookie, if the session is live.
pub async fn current(
    cp: &ControlPlane,
    headers: &HeaderMap,
) -> Result<Option<Account>, AccountError> {
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

fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The CSRF token of a session (or pre-session) id: not the id itself, which stays in its
/// HttpOnly cookie; nobody without the id can compute it.
fn csrf_of(id: &str) -> String {
    hex::encode(Sha256::digest(format!("persql-csrf\u{0}{id}")))
}

/// The id a request's CSRF token is bound to: its session cookie, else its pre-session one.
fn csrf_binding(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
        .filter(|id| well_formed(id))
        .or_else(|| cookie(headers, CSRF_COOKIE).filter(|id| well_formed(id)))
}

/// True when the form's `csrf` field is the token of the request's session (or, before
/// sign-in, of its pre-session cookie).
pub fn csrf_ok(headers: &HeaderMap, presented: &str) -> bool {
    let Some(id) = csrf_binding(headers) else {
        return false;
    };
    let expected = csrf_of(id);
    // Constant time: the comparison must not tell how much of a guess was right.
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The token forms of this request carry, with the `Set-Cookie` of a fresh pre-session
/// cookie when the request has neither a session nor a pre-session cookie.
pub fn csrf_token(headers: &HeaderMap, secure: bool) -> (String, Option<String>) {
    match csrf_binding(headers) {
        Some(id) => (csrf_of(id), None),
        None => {
            let id = random_id();
            let set = set_cookie(CSRF_COOKIE, &id, SESSION_SECS, secure);
            (csrf_of(&id), Some(set))
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

    fn with_cookies(cookies: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, cookies.parse().unwrap());
        h
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_pre_session_cookie() {
        let (token, set) = csrf_token(&HeaderMap::new(), false);
        let set = set.expect("a fresh pre-session cookie");
        let id = set
            .strip_prefix("persql_csrf=")
            .and_then(|s| s.split(';').next())
            .unwrap();
        assert_ne!(token, id, "the token is not the cookie (double submit)");
        let h = with_cookies(&format!("{CSRF_COOKIE}={id}"));
        assert_eq!(csrf_token(&h, false), (token.clone(), None));
        assert!(csrf_ok(&h, &token));
        assert!(!csrf_ok(&h, "x"));
        // A tossed cookie whose value is the token itself does not pass.
        assert!(!csrf_ok(
            &with_cookies(&format!("{CSRF_COOKIE}={token}")),
            &token
        ));
        assert!(!csrf_ok(&HeaderMap::new(), ""));
    }

    #[test]
    fn the_csrf_token_of_one_session_does_not_fit_another() {
        let (a, b, pre) = (random_id(), random_id(), random_id());
        let ha = with_cookies(&format!("{SESSION_COOKIE}={a}; {CSRF_COOKIE}={pre}"));
        let hb = with_cookies(&format!("{SESSION_COOKIE}={b}; {CSRF_COOKIE}={pre}"));
        let (ta, _) = csrf_token(&ha, false);
        assert!(csrf_ok(&ha, &ta));
        assert!(!csrf_ok(&hb, &ta));
        // Once signed in, the pre-session token no longer counts.
        let pre_token = csrf_token(&with_cookies(&format!("{CSRF_COOKIE}={pre}")), false).0;
        assert!(!csrf_ok(&ha, &pre_token));
    }
}
