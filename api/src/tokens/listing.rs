//! A namespace's tokens without their secrets: listing (paged), revocation by id (at once on
//! this process, on others through `token.revoked`), and debounced "last used" times.

use std::{sync::Arc, time::Duration};

use moka::sync::Cache;
use persql_events::{ControlPlane, Envelope, StoreError, TokensRevoked, now_ms, outbox};
use persql_storage::Role;
use sqlx::Row;

use super::TokenKind;

/// A token as listed: never its secret or hash.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub kind: TokenKind,
    /// For database tokens: the database's slug and the role there.
    pub database_slug: Option<String>,
    pub role: Option<Role>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// The unrevoked tokens of namespace `namespace_id`, newest first, after token id `before`
/// (exclusive; `None` starts at the newest), at most `limit`.
pub async fn list(
    cp: &ControlPlane,
    namespace_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<TokenRecord>, StoreError> {
    // Ids are UUIDv7 in hex: their order is creation order.
    let rows = sqlx::query(
        "SELECT t.id, t.kind, d.slug, t.role, t.created_at, t.last_used_at, t.expires_at \
         FROM tokens t LEFT JOIN databases d ON d.id = t.database_id \
         WHERE t.namespace_id = $1 AND t.revoked_at IS NULL AND t.id < $2 \
         ORDER BY t.id DESC LIMIT $3",
    )
    .bind(namespace_id)
    // Greater than every id: hex digits sort below "g".
    .bind(before.unwrap_or("g"))
    .bind(limit)
    .fetch_all(cp.pool())
    .await
    .map_err(StoreError::from)?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get(1)?;
            let role: Option<String> = r.try_get(3)?;
            Ok(TokenRecord {
                id: r.try_get(0)?,
                kind: TokenKind::parse(&kind).unwrap_or(TokenKind::Database),
                database_slug: r.try_get(2)?,
                role: role.and_then(|r| r.parse().ok()),
                created_at: r.try_get(4)?,
                last_used_at: r.try_get(5)?,
                expires_at: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Revokes token `id` of namespace `namespace` (id, slug) and appends `token.revoked`, in one
/// transaction. False when the namespace has no such unrevoked token. The caller drops it
/// from its own cache; other processes drop it when the event reaches them.
pub async fn revoke(
    cp: &ControlPlane,
    namespace: (&str, &str),
    id: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let (namespace_id, namespace_slug) = namespace;
    let mut tx = cp.begin().await?;
    let revoked = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND namespace_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .bind(namespace_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !revoked {
        return Ok(false);
    }
    let event = Envelope::new(
        "/persql/api",
        namespace_slug,
        &format!("tokens/{id}"),
        &TokensRevoked {
            token_ids: vec![id.to_owned()],
            reason: reason.into(),
        },
    );
    outbox::append(&mut tx, cp.backend(), &[event]).await?;
    cp.commit(tx).await?;
    Ok(true)
}

/// Debounced `last_used_at` of tokens: written at most once a minute per token per process,
/// so requests do not each cost a control-plane write.
#[derive(Clone)]
pub struct TokenUsage {
    cp: ControlPlane,
    recent: Arc<Cache<String, ()>>,
}

impl TokenUsage {
    pub fn new(cp: ControlPlane) -> Self {
        let recent = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(60))
            .build();
        Self {
            cp,
            recent: Arc::new(recent),
        }
    }

    /// Records a use of token `id` (in the background; failures are only logged).
    pub fn touch(&self, id: &str) {
        if self.recent.contains_key(id) {
            return;
        }
        self.recent.insert(id.to_owned(), ());
        let (cp, id) = (self.cp.clone(), id.to_owned());
        tokio::spawn(async move {
            let r = sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now_ms())
                .bind(&id)
                .execute(cp.pool())
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, token = %id, "recording token use failed");
            }
        });
    }
}
