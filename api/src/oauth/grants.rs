//! Grants: the durable (account, app) link. Approval creates (or finds) the app's database
//! in the account's namespace and makes the app pay for its storage; the code exchange
//! mints the app's token and revokes its previous one; disconnect revokes the token, keeps
//! the data and hands storage billing back to the owner (`connections`).

use persql_events::{Envelope, GrantCreated, TokensRevoked, Tx, now_ms, outbox};
use persql_provisioner::subject_slug;
use persql_storage::Role;
use sqlx::Row;

pub use super::connections::{ConnectedApp, disconnect, list};
use super::{GrantError, apps::OAuthApp};
use crate::{
    accounts::Account,
    databases::{self, Owner},
    state::AppState,
    tokens::{self, NewToken, TokenKind},
};

/// The slug of an app's database in an account's namespace (stable per pair).
pub fn database_slug(account_namespace_id: &str, client_id: &str) -> String {
    subject_slug(account_namespace_id, &format!("oauth:{client_id}"))
}

/// Records the account's approval of `app`: creates the database on first approval (paid
/// by the app), (re)activates the grant and emits `grant.created`. Returns the database id.
pub async fn approve(
    state: &AppState,
    account: &Account,
    app: &OAuthApp,
) -> Result<String, GrantError> {
    let slug = database_slug(&account.namespace_id, &app.client_id);
    let owner = Owner {
        namespace_id: &account.namespace_id,
        namespace_slug: &account.namespace_slug,
        billed_namespace_id: &app.namespace_id,
    };
    if state
        .registry
        .find(&account.namespace_id, &slug)
        .await?
        .is_none()
    {
        state
            .funding
            .check(&app.namespace_id, &app.namespace_slug)?;
    }
    let (db, _) = databases::ensure(state, &owner, &slug, None, None).await?;
    let now = now_ms();
    let mut tx = state.cp.begin().await?;
    // Insert-or-reactivate, safe against two approvals of the same pair at once.
    sqlx::query(
        "INSERT INTO oauth_grants (id, account_id, namespace_id, client_id, database_id, connected_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, client_id) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().simple().to_string())
    .bind(&account.id)
    .bind(&account.namespace_id)
    .bind(&app.client_id)
    .bind(&db.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE oauth_grants SET database_id = $1, \
         connected_at = CASE WHEN revoked_at IS NULL THEN connected_at ELSE $2 END, \
         revoked_at = NULL WHERE account_id = $3 AND client_id = $4",
    )
    .bind(&db.id)
    .bind(now)
    .bind(&account.id)
    .bind(&app.client_id)
    .execute(&mut *tx)
    .await?;
    let grant_id: String =
        sqlx::query("SELECT id FROM oauth_grants WHERE account_id = $1 AND client_id = $2")
            .bind(&account.id)
            .bind(&app.client_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
    set_payer(&mut tx, &db.id, Some(&app.namespace_id)).await?;
    let event = Envelope::new(
        "/persql/api",
        &account.namespace_slug,
        &format!("grants/{grant_id}"),
        &GrantCreated {
            grant_id,
            namespace_id: account.namespace_id.clone(),
            client_id: app.client_id.clone(),
            app_namespace_id: app.namespace_id.clone(),
            database_id: db.id.clone(),
        },
    );
    outbox::append(&mut tx, state.cp.backend(), &[event]).await?;
    state.cp.commit(tx).await?;
    Ok(db.id)
}

pub(super) async fn set_payer(
    tx: &mut Tx,
    database_id: &str,
    payer: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE databases SET payer_namespace_id = $1 WHERE id = $2")
        .bind(payer)
        .bind(database_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The active grant of (account, app): its id and database id.
pub(super) async fn active(
    tx: &mut Tx,
    account_id: &str,
    client_id: &str,
) -> Result<Option<(String, String, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, database_id, token_id FROM oauth_grants \
         WHERE account_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    )
    .bind(account_id)
    .bind(client_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

/// Marks `ids` revoked and appends `token.revoked`, in `tx`.
pub(super) async fn revoke(
    state: &AppState,
    tx: &mut Tx,
    namespace_slug: &str,
    ids: &[String],
    reason: &str,
) -> Result<(), GrantError> {
    if ids.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    for id in ids {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    let event = Envelope::new(
        "/persql/api",
        namespace_slug,
        "tokens",
        &TokensRevoked {
            token_ids: ids.to_vec(),
            reason: reason.into(),
        },
    );
    outbox::append(tx, state.cp.backend(), &[event]).await?;
    Ok(())
}

/// The app's new token for the account's database (admin there, billed to the app), minted
/// for code `code_hash`; the grant's previous token is revoked. `None` when the grant is no
/// longer active or the code was exchanged concurrently.
pub async fn exchange(
    state: &AppState,
    account: &Account,
    app: &OAuthApp,
    code_hash: &str,
) -> Result<Option<(String, String)>, GrantError> {
    let mut tx = state.cp.begin().await?;
    let Some((grant_id, database_id, old)) = active(&mut tx, &account.id, &app.client_id).await?
    else {
        return Ok(None);
    };
    let (token_id, secret) = tokens::mint(
        &mut tx,
        state.cp.backend(),
        &NewToken {
            kind: TokenKind::Database,
            namespace_id: Some(&account.namespace_id),
            namespace_slug: &account.namespace_slug,
            database_id: Some(&database_id),
            role: Some(Role::Admin),
            billed_namespace_id: Some(&app.namespace_id),
            expires_at: None,
        },
    )
    .await?;
    if !super::codes::consume(&mut tx, code_hash, &token_id).await? {
        return Ok(None);
    }
    sqlx::query("UPDATE oauth_grants SET token_id = $1 WHERE id = $2")
        .bind(&token_id)
        .bind(&grant_id)
        .execute(&mut *tx)
        .await?;
    let old: Vec<String> = old.into_iter().collect();
    revoke(
        state,
        &mut tx,
        &account.namespace_slug,
        &old,
        "re-authorised",
    )
    .await?;
    state.cp.commit(tx).await?;
    state.auth.forget(&old);
    Ok(Some((secret.expose().to_owned(), database_id)))
}

/// A code was presented again: the token it was exchanged for is revoked (RFC 6749 §4.1.2).
pub async fn revoke_reused(
    state: &AppState,
    namespace_slug: &str,
    token_id: &str,
) -> Result<(), GrantError> {
    let mut tx = state.cp.begin().await?;
    sqlx::query("UPDATE oauth_grants SET token_id = NULL WHERE token_id = $1")
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
    let ids = vec![token_id.to_owned()];
    revoke(
        state,
        &mut tx,
        namespace_slug,
        &ids,
        "authorization code reused",
    )
    .await?;
    state.cp.commit(tx).await?;
    state.auth.forget(&ids);
    Ok(())
}
