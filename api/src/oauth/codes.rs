//! Authorization codes: random, stored hashed, single use, valid for 60 s, bound to the
//! client, the redirect URI and the PKCE (S256) challenge.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use persql_events::{ControlPlane, Tx, now_ms};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{accounts::sessions::random_id, tokens};

/// How long a code can be exchanged.
pub const CODE_TTL_MS: i64 = 60_000;

/// A code to issue after consent.
#[derive(Debug)]
pub struct NewCode<'a> {
    pub client_id: &'a str,
    pub account_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
}

/// Codes are kept this long past expiry, so a late replay still revokes its token.
const KEEP_EXPIRED_MS: i64 = 24 * 3600 * 1000;

/// Stores a fresh code; returns it (to put in the redirect, once). Codes expired for a day
/// are deleted on the way.
pub async fn issue(cp: &ControlPlane, new: &NewCode<'_>) -> Result<String, sqlx::Error> {
    let code = random_id();
    let now = now_ms();
    sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
        .bind(now - KEEP_EXPIRED_MS)
        .execute(cp.pool())
        .await?;
    sqlx::query(
        "INSERT INTO oauth_codes (hash, client_id, account_id, redirect_uri, code_challenge, scope, nonce, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tokens::hash(&code))
    .bind(new.client_id)
    .bind(new.account_id)
    .bind(new.redirect_uri)
    .bind(new.code_challenge)
    .bind(new.scope)
    .bind(new.nonce)
    .bind(now + CODE_TTL_MS)
    .bind(now)
    .execute(cp.pool())
    .await?;
    Ok(code)
}

/// A stored code.
#[derive(Debug)]
pub struct CodeRow {
    pub hash: String,
    pub client_id: String,
    pub account_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The token this code was exchanged for.
    pub token_id: Option<String>,
}

/// The code `presented`, if it was ever issued.
pub async fn find(cp: &ControlPlane, presented: &str) -> Result<Option<CodeRow>, sqlx::Error> {
    if presented.len() != 64 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT hash, client_id, account_id, redirect_uri, code_challenge, scope, nonce, expires_at, used_at, token_id \
         FROM oauth_codes WHERE hash = $1",
    )
    .bind(tokens::hash(presented))
    .fetch_optional(cp.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(CodeRow {
        hash: r.try_get(0)?,
        client_id: r.try_get(1)?,
        account_id: r.try_get(2)?,
        redirect_uri: r.try_get(3)?,
        code_challenge: r.try_get(4)?,
        scope: r.try_get(5)?,
        nonce: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        used_at: r.try_get(8)?,
        token_id: r.try_get(9)?,
    }))
}

/// Marks the code used by the token `token_id`, in `tx`. False when another exchange won
/// the race (the code was used meanwhile).
pub async fn consume(tx: &mut Tx, hash: &str, token_id: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE oauth_codes SET used_at = $1, token_id = $2 WHERE hash = $3 AND used_at IS NULL",
    )
    .bind(now_ms())
    .bind(token_id)
    .bind(hash)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A PKCE code challenge as sent to `/oauth/authorize`: 43–128 base64url characters.
pub fn valid_challenge(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 S256: BASE64URL(SHA-256(verifier)) == challenge, with the verifier's own
/// syntax checked (43–128 unreserved characters).
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let syntax = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    syntax && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
        assert!(!valid_challenge("not base64url!"));
    }
}
