//! Redeeming an authorization code (RFC 6749 §4.1.3 with PKCE): every check on the code,
//! then the app's token for its database and, with `openid`, a signed ID token.

use persql_events::now_ms;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::GrantError;
use super::{apps::OAuthApp, codes, grants};
use crate::{accounts::Accounts, state::AppState};

/// Why a code is refused; all are `invalid_grant` on the wire, with this as description.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("unknown code")]
    UnknownCode,
    #[error("the code was issued to another client")]
    OtherClient,
    #[error("the code was already used; its token is revoked")]
    Reused,
    #[error("the code expired")]
    Expired,
    #[error("redirect_uri differs from the authorization request")]
    RedirectMismatch,
    #[error("code_verifier does not match the code_challenge")]
    VerifierMismatch,
    #[error("the code was already used, or the app was disconnected")]
    NoLongerValid,
    #[error(transparent)]
    Grant(#[from] GrantError),
}

impl From<sqlx::Error> for RedeemError {
    fn from(e: sqlx::Error) -> Self {
        Self::Grant(e.into())
    }
}

/// What the token endpoint hands back.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub scope: String,
    /// `<namespace>/<db>`.
    pub database: String,
    pub id_token: Option<String>,
}

/// A code presented by an authenticated client.
#[derive(Debug)]
pub struct Presented<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub verifier: &'a str,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

/// ID tokens are valid this long.
const ID_TOKEN_SECS: i64 = 3600;

/// The ID token's `sub`: stable per (account, app) and different across apps (OpenID
/// "pairwise"), so apps cannot correlate a person between them.
pub fn pairwise_subject(account_id: &str, client_id: &str) -> String {
    let digest = Sha256::digest(format!("persql-sub\0{account_id}\0{client_id}").as_bytes());
    hex::encode(&digest[..16])
}

/// Checks `p` against the stored code and, if all holds, issues the app's token. A code
/// presented again revokes the token it was first exchanged for. Failed checks do not
/// use the code up.
pub async fn redeem(
    state: &AppState,
    app: &OAuthApp,
    p: &Presented<'_>,
) -> Result<Issued, RedeemError> {
    let row = codes::find(&state.cp, p.code)
        .await?
        .ok_or(RedeemError::UnknownCode)?;
    if row.client_id != app.client_id {
        return Err(RedeemError::OtherClient);
    }
    let account = Accounts::get(&state.cp, &row.account_id)
        .await?
        .ok_or(RedeemError::NoLongerValid)?;
    if row.used_at.is_some() {
        if let Some(t) = &row.token_id {
            grants::revoke_reused(state, &account.namespace_slug, t).await?;
        }
        return Err(RedeemError::Reused);
    }
    if row.expires_at <= now_ms() {
        return Err(RedeemError::Expired);
    }
    if row.redirect_uri != p.redirect_uri {
        return Err(RedeemError::RedirectMismatch);
    }
    if !codes::verifier_matches(p.verifier, &row.code_challenge) {
        return Err(RedeemError::VerifierMismatch);
    }
    let (access_token, _) = grants::exchange(state, &account, app, &row.hash)
        .await?
        .ok_or(RedeemError::NoLongerValid)?;
    let id_token = if row.scope.split(' ').any(|s| s == "openid") {
        let iat = now_ms() / 1000;
        let issuer = state.issuer();
        let sub = pairwise_subject(&account.id, &app.client_id);
        let claims = IdClaims {
            iss: &issuer,
            sub: &sub,
            aud: &app.client_id,
            exp: iat + ID_TOKEN_SECS,
            iat,
            nonce: row.nonce.as_deref(),
        };
        let jwt = state
            .signing_key
            .sign(&claims)
            .map_err(|e| GrantError::Signing(e.to_string()))?;
        Some(jwt)
    } else {
        None
    };
    Ok(Issued {
        access_token,
        database: format!(
            "{}/{}",
            account.namespace_slug,
            grants::database_slug(&account.namespace_id, &app.client_id)
        ),
        scope: row.scope,
        id_token,
    })
}

#[cfg(test)]
mod tests {
    use super::pairwise_subject;

    #[test]
    fn subjects_are_stable_per_app_and_differ_across_apps() {
        let a = pairwise_subject("acct1", "psqlrp_a");
        assert_eq!(a, pairwise_subject("acct1", "psqlrp_a"));
        assert_ne!(a, pairwise_subject("acct1", "psqlrp_b"));
        assert_ne!(a, pairwise_subject("acct2", "psqlrp_a"));
        assert_eq!(a.len(), 32);
    }
}
