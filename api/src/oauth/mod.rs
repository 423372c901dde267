//! The OAuth 2.1 authorization server: registered apps, redirect-URI rules, codes with
//! PKCE, the (account, app) grants, the ID-token signing key.

pub mod apps;
pub mod codes;
pub mod connections;
pub mod exchange;
pub mod grants;
pub mod keys;
pub mod redirect;
pub mod usage;

use persql_events::StoreError;
use persql_metering::Unfunded;
use persql_provisioner::RegistryError;

use crate::databases::DatabaseError;

/// Why a grant could not be made, exchanged or revoked.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The app holds no database in the account (404 `app_not_connected`).
    #[error("this app holds no database in the account")]
    NotConnected,
    /// The ID token could not be signed.
    #[error("signing the ID token: {0}")]
    Signing(String),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Unfunded(#[from] Unfunded),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for GrantError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Scopes an app may ask for: `openid` (an ID token) and `database` (its private database,
/// always granted).
pub const SCOPES: [&str; 2] = ["openid", "database"];

/// The granted scope string for a requested one, or `None` when it names an unknown scope.
/// `database` is always part of the grant.
pub fn parse_scope(requested: Option<&str>) -> Option<String> {
    let mut openid = false;
    for s in requested.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        match s {
            "openid" => openid = true,
            "database" => {}
            _ => return None,
        }
    }
    Some(
        if openid {
            "openid database"
        } else {
            "database"
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_openid_and_database_only() {
        assert_eq!(parse_scope(None).as_deref(), Some("database"));
        assert_eq!(
            parse_scope(Some("openid")).as_deref(),
            Some("openid database")
        );
        assert_eq!(
            parse_scope(Some("database  openid")).as_deref(),
            Some("openid database")
        );
        assert_eq!(parse_scope(Some("openid email")), None);
    }
}
