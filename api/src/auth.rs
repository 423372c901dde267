//! The extractors that authenticate a request (`Caller`, `Operator`, `Workspace`,
//! `DatabaseAccess`): the Bearer token resolved by [`crate::principal::Auth`], checked against
//! what the endpoint needs.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Path},
    http::{header, request::Parts},
};
use persql_storage::Role;

pub use crate::access::DatabaseAccess;
use crate::{
    accounts::{Account, Accounts, sessions},
    error::ApiError,
    principal::Principal,
    slug::{NamespaceSlug, is_database_path_segment},
    state::AppState,
};

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
        let principal = state.auth.authenticate(token).await?;
        state.tokens_used.touch(principal.token_id());
        Ok(Self(principal))
    }
}

/// The operator (`psql_admin_` token); others get 403.
pub struct Operator(pub Arc<Principal>);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        if !matches!(*p, Principal::Operator { .. }) {
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
        match &*p {
            Principal::Workspace { namespace, .. } => Ok(Self {
                namespace_id: namespace.id.clone(),
                namespace_slug: namespace.slug.clone(),
                principal: p.clone(),
            }),
            _ => Err(ApiError::forbidden("this endpoint needs a workspace token")),
        }
    }
}

/// [`DatabaseAccess`] for the database named by the `{ns}/{db}` path. Any mismatch is 404
/// `database_not_found`: never reveal whether another tenant's database exists.
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
        let reaches_namespace = match principal.namespace() {
            None => true,
            Some(namespace) => namespace.slug == ns,
        };
        if !reaches_namespace {
            return Err(ApiError::database_not_found());
        }
        let entry = state
            .databases
            .lookup(&ns, &db)
            .await?
            .ok_or_else(ApiError::database_not_found)?;
        let (role, billed) = match &*principal {
            Principal::Database(grant) => {
                if grant.database_id != entry.id {
                    return Err(ApiError::database_not_found());
                }
                if let Some(id) = &grant.grant_id {
                    state.grants_used.touch(id);
                }
                (grant.role, grant.billed.as_ref())
            }
            Principal::Workspace { namespace, .. } => (Role::Admin, Some(namespace)),
            Principal::Operator { .. } => (Role::Admin, None),
        };
        let (billed_namespace_id, billed_namespace_slug) = match billed {
            Some(b) => (b.id.clone(), b.slug.clone()),
            None => (entry.namespace_id.clone(), entry.namespace_slug.clone()),
        };
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

/// The account calling a JSON account endpoint: by session cookie, or by a workspace token
/// (`psql_ws_`) of the account's own namespace (e.g. the personal token minted on the
/// account page). Otherwise 401.
pub struct AccountCaller(pub Account);

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let Workspace { namespace_id, .. } =
                Workspace::from_request_parts(parts, state).await?;
            return Accounts::by_namespace(&state.cp, &namespace_id)
                .await?
                .map(Self)
                .ok_or_else(|| {
                    ApiError::forbidden("this workspace is not an account's namespace")
                });
        }
        sessions::current(&state.cp, &parts.headers)
            .await?
            .map(Self)
            .ok_or_else(|| ApiError::Unauthorized {
                code: "not_signed_in",
                detail: "sign in at /account/signin, or send a personal workspace token".into(),
            })
    }
}
