//! Who a token belongs to ([`Principal`]), and token lookups by hash with a cache in front
//! ([`Auth`]): revocation drops cache entries at once, on this process directly and on others
//! through `token.revoked` events.

use std::{sync::Arc, time::Duration};

use persql_events::{ControlPlane, now_ms};
use persql_storage::Role;
use sqlx::Row;

use crate::{
    error::ApiError,
    refreshing::Refreshing,
    tokens::{self, TokenKind},
};

/// A namespace as a token names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceRef {
    pub id: String,
    pub slug: String,
}

/// Who is calling, as stored with their token.
#[derive(Clone, Debug)]
pub enum Principal {
    /// `psql_admin_`: the operator, who reaches every namespace.
    Operator { token_id: String },
    /// `psql_ws_`: every database of one namespace, which it is billed to.
    Workspace {
        token_id: String,
        namespace: NamespaceRef,
        expires_at: Option<i64>,
    },
    /// `psql_live_`: exactly one database, with a role.
    Database(DatabaseGrant),
}

/// What a database token reaches and who pays for its calls.
#[derive(Clone, Debug)]
pub struct DatabaseGrant {
    pub token_id: String,
    /// The namespace the database lives in.
    pub namespace: NamespaceRef,
    pub database_id: String,
    pub role: Role,
    /// Namespace billed for the calls (an OAuth app's, for an app's token); `None` bills the
    /// database's own namespace.
    pub billed: Option<NamespaceRef>,
    /// For an OAuth app's token: the (account, app) grant it was issued under.
    pub grant_id: Option<String>,
    pub expires_at: Option<i64>,
}

impl Principal {
    /// The token's id (never its secret).
    pub fn token_id(&self) -> &str {
        match self {
            Self::Operator { token_id } | Self::Workspace { token_id, .. } => token_id,
            Self::Database(g) => &g.token_id,
        }
    }

    pub fn kind(&self) -> TokenKind {
        match self {
            Self::Operator { .. } => TokenKind::Operator,
            Self::Workspace { .. } => TokenKind::Workspace,
            Self::Database(_) => TokenKind::Database,
        }
    }

    /// The namespace a workspace or database token belongs to (none for the operator).
    pub fn namespace(&self) -> Option<&NamespaceRef> {
        match self {
            Self::Operator { .. } => None,
            Self::Workspace { namespace, .. } => Some(namespace),
            Self::Database(g) => Some(&g.namespace),
        }
    }

    /// When the token stops working, in Unix milliseconds (none: never).
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Self::Operator { .. } => None,
            Self::Workspace { expires_at, .. } => *expires_at,
            Self::Database(g) => g.expires_at,
        }
    }

    /// True for the operator and for a workspace token of namespace `slug`: who may manage
    /// the namespace's databases and read its balance.
    pub fn manages_namespace(&self, slug: &str) -> bool {
        match self {
            Self::Operator { .. } => true,
            Self::Workspace { namespace, .. } => namespace.slug == slug,
            Self::Database(_) => false,
        }
    }
}

/// Token lookups with a cache in front.
#[derive(Clone)]
pub struct Auth {
    cp: ControlPlane,
    cache: Refreshing<Principal>,
}

/// A cached token is dropped this long after it was read (a safety net only: revocations
/// invalidate entries directly) ...
const TOKEN_TTL: Duration = Duration::from_secs(60);
/// ... and read again in the background by the first request after this long, so that a
/// busy token's requests never wait on the control plane.
const TOKEN_REFRESH: Duration = Duration::from_secs(45);

impl Auth {
    pub fn new(cp: ControlPlane) -> Self {
        Self {
            cp,
            cache: Refreshing::new(100_000, TOKEN_TTL, TOKEN_REFRESH),
        }
    }

    /// Resolves a presented token, or 401.
    pub async fn authenticate(&self, presented: &str) -> Result<Arc<Principal>, ApiError> {
        let invalid = || ApiError::Unauthorized {
            code: "invalid_token",
            detail: "unknown or revoked token".into(),
        };
        if !presented.starts_with("psql_") || presented.len() > 200 {
            return Err(invalid());
        }
        let hash = tokens::hash(presented);
        // The loader runs only on a miss or a background re-read: a hit clones nothing.
        let loader = || {
            let (cp, key) = (self.cp.clone(), hash.clone());
            async move { load(&cp, &key).await }
        };
        let principal = self.cache.get(&hash, loader).await?.ok_or_else(invalid)?;
        if principal.expires_at().is_some_and(|t| t <= now_ms()) {
            return Err(ApiError::Unauthorized {
                code: "token_expired",
                detail: "the token has expired".into(),
            });
        }
        Ok(principal)
    }

    /// Drops cached entries of these tokens (after revocation or deletion).
    pub fn forget(&self, token_ids: &[String]) {
        let ids: Vec<String> = token_ids.to_vec();
        self.cache
            .invalidate_if(move |p| ids.iter().any(|id| id == p.token_id()));
    }
}

/// The principal of an unrevoked token, by hash.
async fn load(cp: &ControlPlane, hash: &str) -> Result<Option<Principal>, ApiError> {
    let row = sqlx::query(
            "SELECT t.id, t.kind, t.namespace_id, n.slug, t.database_id, t.role, t.billed_namespace_id, t.expires_at, \
             b.slug, g.id \
             FROM tokens t LEFT JOIN namespaces n ON n.id = t.namespace_id \
             LEFT JOIN namespaces b ON b.id = t.billed_namespace_id \
             LEFT JOIN oauth_grants g ON g.token_id = t.id AND g.revoked_at IS NULL \
             WHERE t.hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(cp.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    let token_id: String = r.try_get(0)?;
    let kind: String = r.try_get(1)?;
    let corrupt = |what: &str| ApiError::Internal(format!("token {token_id}: {what}"));
    let namespace = match (r.try_get::<Option<String>, _>(2)?, r.try_get(3)?) {
        (Some(id), Some(slug)) => Some(NamespaceRef { id, slug }),
        _ => None,
    };
    let billed = match (r.try_get::<Option<String>, _>(6)?, r.try_get(8)?) {
        (Some(id), Some(slug)) => Some(NamespaceRef { id, slug }),
        _ => None,
    };
    let expires_at: Option<i64> = r.try_get(7)?;
    let principal = match TokenKind::parse(&kind).ok_or_else(|| corrupt("unknown kind"))? {
        TokenKind::Operator => Principal::Operator { token_id },
        TokenKind::Workspace => Principal::Workspace {
            namespace: namespace.ok_or_else(|| corrupt("workspace token without namespace"))?,
            token_id,
            expires_at,
        },
        TokenKind::Database => {
            let role: Option<String> = r.try_get(5)?;
            Principal::Database(DatabaseGrant {
                namespace: namespace.ok_or_else(|| corrupt("database token without namespace"))?,
                database_id: r
                    .try_get::<Option<String>, _>(4)?
                    .ok_or_else(|| corrupt("database token without database"))?,
                role: match role {
                    Some(r) => r.parse().map_err(|_| corrupt("unknown role"))?,
                    None => Role::Read,
                },
                billed,
                grant_id: r.try_get(9)?,
                expires_at,
                token_id,
            })
        }
    };
    Ok(Some(principal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(slug: &str) -> NamespaceRef {
        NamespaceRef {
            id: format!("id-{slug}"),
            slug: slug.into(),
        }
    }

    #[test]
    fn only_the_operator_and_the_namespaces_own_workspace_manage_it() {
        let op = Principal::Operator {
            token_id: "t".into(),
        };
        let ws = Principal::Workspace {
            token_id: "t".into(),
            namespace: ns("acme"),
            expires_at: None,
        };
        let db = Principal::Database(DatabaseGrant {
            token_id: "t".into(),
            namespace: ns("acme"),
            database_id: "d".into(),
            role: Role::Admin,
            billed: None,
            grant_id: None,
            expires_at: Some(1),
        });
        assert!(op.manages_namespace("acme") && op.manages_namespace("other"));
        assert!(ws.manages_namespace("acme") && !ws.manages_namespace("other"));
        assert!(!db.manages_namespace("acme"));
        assert_eq!(db.expires_at(), Some(1));
        assert_eq!(op.namespace(), None);
        assert_eq!(db.namespace(), Some(&ns("acme")));
        assert_eq!(
            [op.kind(), ws.kind(), db.kind()],
            [
                TokenKind::Operator,
                TokenKind::Workspace,
                TokenKind::Database
            ]
        );
    }
}
