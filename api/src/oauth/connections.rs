//! The account's side of grants: which apps hold a database in it, and disconnecting one.

use persql_events::{Envelope, GrantRevoked, now_ms, outbox};
use sqlx::Row;

use super::{
    GrantError,
    grants::{active, revoke, set_payer},
};
use crate::{accounts::Account, state::AppState};

/// An active grant as the account sees it.
#[derive(Debug)]
pub struct ConnectedApp {
    pub client_id: String,
    pub name: String,
    pub database_id: String,
    pub database_slug: String,
    pub connected_at: i64,
    pub last_used_at: Option<i64>,
}

/// Disconnects `client_id` from the account: every token of the app on that database stops
/// working (here at once, elsewhere through `token.revoked`), `grant.revoked` is emitted,
/// the data stays and its storage bills the owner again. 404 when not connected.
pub async fn disconnect(
    state: &AppState,
    account: &Account,
    client_id: &str,
) -> Result<(), GrantError> {
    let app = super::apps::find(&state.cp, client_id)
        .await?
        .ok_or(GrantError::NotConnected)?;
    let mut tx = state.cp.begin().await?;
    let Some((grant_id, database_id, _)) = active(&mut tx, &account.id, client_id).await? else {
        return Err(GrantError::NotConnected);
    };
    let token_ids: Vec<String> = sqlx::query(
        "SELECT id FROM tokens WHERE database_id = $1 AND billed_namespace_id = $2 \
         AND kind = 'database' AND revoked_at IS NULL",
    )
    .bind(&database_id)
    .bind(&app.namespace_id)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    sqlx::query("UPDATE oauth_grants SET revoked_at = $1, token_id = NULL WHERE id = $2")
        .bind(now_ms())
        .bind(&grant_id)
        .execute(&mut *tx)
        .await?;
    set_payer(&mut tx, &database_id, None).await?;
    revoke(
        state,
        &mut tx,
        &account.namespace_slug,
        &token_ids,
        "app disconnected",
    )
    .await?;
    let event = Envelope::new(
        "/persql/api",
        &account.namespace_slug,
        &format!("grants/{grant_id}"),
        &GrantRevoked {
            grant_id,
            namespace_id: account.namespace_id.clone(),
            client_id: client_id.to_owned(),
            app_namespace_id: app.namespace_id.clone(),
            database_id,
            token_ids: token_ids.clone(),
        },
    );
    outbox::append(&mut tx, state.cp.backend(), &[event]).await?;
    state.cp.commit(tx).await?;
    state.auth.forget(&token_ids);
    Ok(())
}

/// The apps holding a database in the account, most recently connected first.
pub async fn list(state: &AppState, account: &Account) -> Result<Vec<ConnectedApp>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT g.client_id, a.name, g.database_id, d.slug, g.connected_at, g.last_used_at \
         FROM oauth_grants g JOIN oauth_apps a ON a.client_id = g.client_id \
         JOIN databases d ON d.id = g.database_id \
         WHERE g.account_id = $1 AND g.revoked_at IS NULL ORDER BY g.connected_at DESC, g.client_id",
    )
    .bind(&account.id)
    .fetch_all(state.cp.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ConnectedApp {
                client_id: r.try_get(0)?,
                name: r.try_get(1)?,
                database_id: r.try_get(2)?,
                database_slug: r.try_get(3)?,
                connected_at: r.try_get(4)?,
                last_used_at: r.try_get(5)?,
            })
        })
        .collect()
}
