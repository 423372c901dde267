//! Tokens: opaque random secrets with a kind prefix, stored only as SHA-256 hashes.

mod listing;

pub use listing::{TokenRecord, TokenUsage, list, revoke};

use std::fmt;

use persql_events::{
    Backend, ControlPlane, Envelope, StoreError, TokenCreated, Tx, now_ms, outbox,
};
use persql_storage::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a token reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `psql_admin_`: the operator; everything.
    Operator,
    /// `psql_ws_`: every database of one namespace, provision, apps.
    Workspace,
    /// `psql_live_`: exactly one database, with a role.
    Database,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Operator => "psql_admin_",
            Self::Workspace => "psql_ws_",
            Self::Database => "psql_live_",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Workspace => "workspace",
            Self::Database => "database",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Self::Operator),
            "workspace" => Some(Self::Workspace),
            "database" => Some(Self::Database),
            _ => None,
        }
    }
}

/// A token's secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// A fresh secret: the kind's prefix and 192 random bits in hex.
    pub fn generate(kind: TokenKind) -> Self {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{}{}", kind.prefix(), hex::encode(bytes)))
    }
    /// Wraps a secret given by configuration.
    pub fn from_config(s: String) -> Self {
        Self(s)
    }
    /// The secret, to hand to its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The stored form.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

/// Hex SHA-256 of a presented token. Tokens carry ≥128 random bits, so a fast hash is
/// enough (no password stretching needed) and keeps auth cheap.
pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

/// A token to mint.
#[derive(Clone, Debug)]
pub struct NewToken<'a> {
    pub kind: TokenKind,
    pub namespace_id: Option<&'a str>,
    /// Slug of the namespace the `token.created` event is filed under.
    pub namespace_slug: &'a str,
    pub database_id: Option<&'a str>,
    pub role: Option<Role>,
    /// Namespace billed for this token's calls.
    pub billed_namespace_id: Option<&'a str>,
    pub expires_at: Option<i64>,
}

/// Inserts a token (and, for workspace and database tokens, its `token.created` event)
/// inside `tx`. Returns the token id and the secret.
pub async fn mint(
    tx: &mut Tx,
    backend: Backend,
    new: &NewToken<'_>,
) -> Result<(String, Secret), StoreError> {
    let secret = Secret::generate(new.kind);
    let id = uuid::Uuid::now_v7().simple().to_string();
    insert(tx, &id, &secret, new).await?;
    if new.kind != TokenKind::Operator {
        let event = Envelope::new(
            "/persql/api",
            new.namespace_slug,
            &format!("tokens/{id}"),
            &TokenCreated {
                token_id: id.clone(),
                kind: new.kind.as_str().into(),
                namespace_id: new.namespace_id.unwrap_or_default().into(),
                database_id: new.database_id.map(Into::into),
                role: new.role.map(|r| r.as_str().into()),
                expires_at: new.expires_at,
            },
        );
        outbox::append(tx, backend, &[event]).await?;
    }
    Ok((id, secret))
}

/// Mints a workspace token of namespace `namespace` (id, slug), billed to it, expiring at
/// `expires_at` (none: never), in its own transaction. Returns the secret and the token's id.
pub async fn mint_workspace_token(
    cp: &ControlPlane,
    namespace: (&str, &str),
    expires_at: Option<i64>,
) -> Result<(Secret, String), StoreError> {
    let (namespace_id, namespace_slug) = namespace;
    let mut tx = cp.begin().await?;
    let (id, secret) = mint(
        &mut tx,
        cp.backend(),
        &NewToken {
            kind: TokenKind::Workspace,
            namespace_id: Some(namespace_id),
            namespace_slug,
            database_id: None,
            role: None,
            billed_namespace_id: Some(namespace_id),
            expires_at,
        },
    )
    .await?;
    cp.commit(tx).await?;
    Ok((secret, id))
}

/// Mints a token for database `database_id` of namespace `namespace` (id, slug), billed to
/// that namespace, in its own transaction. Returns the secret and the token's id.
pub async fn mint_database_token(
    cp: &ControlPlane,
    namespace: (&str, &str),
    database_id: &str,
    role: Role,
    expires_at: i64,
) -> Result<(Secret, String), StoreError> {
    let (namespace_id, namespace_slug) = namespace;
    let mut tx = cp.begin().await?;
    let (id, secret) = mint(
        &mut tx,
        cp.backend(),
        &NewToken {
            kind: TokenKind::Database,
            namespace_id: Some(namespace_id),
            namespace_slug,
            database_id: Some(database_id),
            role: Some(role),
            billed_namespace_id: Some(namespace_id),
            expires_at: Some(expires_at),
        },
    )
    .await?;
    cp.commit(tx).await?;
    Ok((secret, id))
}

/// Inserts a token row with a given secret.
pub async fn insert(
    tx: &mut Tx,
    id: &str,
    secret: &Secret,
    new: &NewToken<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tokens (id, hash, kind, namespace_id, database_id, role, billed_namespace_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(secret.hash())
    .bind(new.kind.as_str())
    .bind(new.namespace_id)
    .bind(new.database_id)
    .bind(new.role.map(Role::as_str))
    .bind(new.billed_namespace_id)
    .bind(new.expires_at)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_prefix_and_enough_entropy() {
        let s = Secret::generate(TokenKind::Database);
        assert!(s.expose().starts_with("psql_live_"));
        assert_eq!(s.expose().len(), "psql_live_".len() + 48);
        assert_ne!(s, Secret::generate(TokenKind::Database));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = Secret::generate(TokenKind::Workspace);
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
