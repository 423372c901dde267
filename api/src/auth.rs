//! Authentication: Bearer tokens looked up by hash (cached; revocation drops cache entries
//! at once, on this process directly and on others through `token.revoked` events), and the
//! extractors handlers use: `Operator`, `Workspace`, `DatabaseAccess`.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRequestParts, Path},
    http::{header, request::Parts},
};
use persql_events::{ControlPlane, now_ms};
use persql_storage::{DbLocation, Role};
use sqlx::Row;

use crate::{
    error::ApiError,
    refreshing::Refreshing,
    slug::{NamespaceSlug, is_database_path_segment},
    state::{AppState, DbEntry},
    tokens::{self, TokenKind},
};

/// Who is calling, as stored with their token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: String,
    pub kind: TokenKind,
    /// The token's namespace (none for the operator).
    pub namespace_id: Option<String>,
    pub namespace_slug: Option<String>,
    /// For database tokens: the one database it reaches, with its role.
    pub database_id: Option<String>,
    pub role: Option<Role>,
    /// Namespace billed for the calls this token makes (the caller's).
    pub billed_namespace_id: Option<String>,
    pub billed_namespace_slug: Option<String>,
    /// For an OAuth app's token: the (account, app) grant it was issued under.
    pub grant_id: Option<String>,
    pub expires_at: Option<i64>,
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
        if principal.expires_at.is_some_and(|t| t <= now_ms()) {
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
        self.cache.invalidate_if(move |p| ids.contains(&p.token_id));
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
    let kind: String = r.try_get(1)?;
    let role: Option<String> = r.try_get(5)?;
    Ok(Some(Principal {
        token_id: r.try_get(0)?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| ApiError::Internal(format!("token kind {kind:?}")))?,
        namespace_id: r.try_get(2)?,
        namespace_slug: r.try_get(3)?,
        database_id: r.try_get(4)?,
        role: role
            .map(|r| r.parse())
            .transpose()
            .map_err(|_| ApiError::Internal("token role".into()))?,
        billed_namespace_id: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        billed_namespace_slug: r.try_get(8)?,
        grant_id: r.try_get(9)?,
    }))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized {
        code: "missing_token",
        detail: "send Authorization: Bearer <token>".into(),
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    Ok(token.trim())
}

/// Any authenticated caller.
pub struct Caller(pub Arc<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        Ok(Self(state.auth.authenticate(token).await?))
    }
}

/// The operator (`psql_admin_` token); others get 403.
pub struct Operator(pub Arc<Principal>);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        if p.kind != TokenKind::Operator {
            return Err(ApiError::forbidden(
                "this endpoint needs the operator token",
            ));
        }
        Ok(Self(p))
    }
}

/// A workspace (`psql_ws_` token) with its namespace; others get 403.
pub struct Workspace {
    pub principal: Arc<Principal>,
    pub namespace_id: String,
    pub namespace_slug: String,
}

impl FromRequestParts<AppState> for Workspace {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        match (p.kind, &p.namespace_id, &p.namespace_slug) {
            (TokenKind::Workspace, Some(id), Some(slug)) => Ok(Self {
                namespace_id: id.clone(),
                namespace_slug: slug.clone(),
                principal: p.clone(),
            }),
            _ => Err(ApiError::forbidden("this endpoint needs a workspace token")),
        }
    }
}

/// A caller allowed into the database named by the `{ns}/{db}` path, with the role it
/// holds there. Any mismatch is 404 `database_not_found`: never reveal whether another
/// tenant's database exists.
pub struct DatabaseAccess {
    pub principal: Arc<Principal>,
    pub db: Arc<DbEntry>,
    pub role: Role,
    /// Namespace billed for this call: the caller's.
    pub billed_namespace_id: String,
    /// Its slug (the NATS subject of the call's usage event).
    pub billed_namespace_slug: String,
}

impl DatabaseAccess {
    pub fn location(&self) -> &DbLocation {
        &self.db.location
    }
}

impl FromRequestParts<AppState> for DatabaseAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let Path((ns, db)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::database_not_found())?;
        if NamespaceSlug::parse(&ns).is_err() || !is_database_path_segment(&db) {
            return Err(ApiError::database_not_found());
        }
        let reaches_namespace = match principal.kind {
            TokenKind::Operator => true,
            _ => principal.namespace_slug.as_deref() == Some(ns.as_str()),
        };
        if !reaches_namespace {
            return Err(ApiError::database_not_found());
        }
        let entry = state
            .databases
            .lookup(&ns, &db)
            .await?
            .ok_or_else(ApiError::database_not_found)?;
        let role = match principal.kind {
            TokenKind::Database => {
                if principal.database_id.as_deref() != Some(entry.id.as_str()) {
                    return Err(ApiError::database_not_found());
                }
                principal.role.unwrap_or(Role::Read)
            }
            TokenKind::Workspace | TokenKind::Operator => Role::Admin,
        };
        let (billed_namespace_id, billed_namespace_slug) = match (
            &principal.billed_namespace_id,
            &principal.billed_namespace_slug,
        ) {
            (Some(id), Some(slug)) => (id.clone(), slug.clone()),
            _ => (entry.namespace_id.clone(), entry.namespace_slug.clone()),
        };
        if let Some(grant) = &principal.grant_id {
            state.grants_used.touch(grant);
        }
        // No request sees a schema older than the template's latest recorded migration.
        crate::catch_up::catch_up(state, &entry).await;
        Ok(Self {
            principal,
            db: entry,
            role,
            billed_namespace_id,
            billed_namespace_slug,
        })
    }
}
