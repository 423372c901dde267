//! Namespaces: creating one (with its `namespace.created` event and first workspace token)
//! and finding one by slug.

use persql_events::{
    Backend, ControlPlane, Envelope, NamespaceCreated, StoreError, Tx, now_ms, outbox,
};
use sqlx::Row;

use crate::{
    slug::NamespaceSlug,
    tokens::{self, NewToken, Secret, TokenKind},
};

/// Why a namespace was not created.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The slug is taken (409 `namespace_exists`).
    #[error("namespace {0:?} exists")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for NamespaceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A namespace as stored.
#[derive(Debug, Clone)]
pub struct NamespaceRecord {
    pub id: String,
    pub slug: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Creates namespace `slug`, its `namespace.created` event and a workspace token, atomically.
/// Returns the namespace and the token's secret.
pub async fn create(
    cp: &ControlPlane,
    slug: &NamespaceSlug,
) -> Result<(NamespaceRecord, Secret), NamespaceError> {
    let mut tx = cp.begin().await?;
    let namespace = insert(&mut tx, cp.backend(), slug).await?;
    let (_, secret) = tokens::mint(
        &mut tx,
        cp.backend(),
        &NewToken {
            kind: TokenKind::Workspace,
            namespace_id: Some(&namespace.id),
            namespace_slug: slug.as_str(),
            database_id: None,
            role: None,
            billed_namespace_id: Some(&namespace.id),
            expires_at: None,
        },
    )
    .await?;
    cp.commit(tx).await?;
    Ok((namespace, secret))
}

/// Inserts namespace `slug` and its `namespace.created` event in `tx`.
pub async fn insert(
    tx: &mut Tx,
    backend: Backend,
    slug: &NamespaceSlug,
) -> Result<NamespaceRecord, NamespaceError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let created_at = now_ms();
    let inserted = sqlx::query("INSERT INTO namespaces (id, slug, created_at) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING")
        .bind(&id)
        .bind(slug.as_str())
        .bind(created_at)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Err(NamespaceError::Exists(slug.as_str().to_owned()));
    }
    let event = Envelope::new(
        "/persql/api",
        slug.as_str(),
        &format!("namespaces/{id}"),
        &NamespaceCreated {
            namespace_id: id.clone(),
            slug: slug.as_str().into(),
        },
    );
    outbox::append(tx, backend, &[event]).await?;
    Ok(NamespaceRecord {
        id,
        slug: slug.as_str().to_owned(),
        created_at,
    })
}

/// The id of namespace `slug`; `None` when there is none (or the slug cannot be one).
pub async fn id_of(cp: &ControlPlane, slug: &str) -> Result<Option<String>, sqlx::Error> {
    if NamespaceSlug::parse(slug).is_err() {
        return Ok(None);
    }
    let row = sqlx::query("SELECT id FROM namespaces WHERE slug = $1")
        .bind(slug)
        .fetch_optional(cp.pool())
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}
