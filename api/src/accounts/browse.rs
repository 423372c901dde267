//! What a signed-in person sees of an app's database in their account: the connected app and
//! its database, and a read-only page of one of its tables.

use std::sync::Arc;

use persql_storage::{Params, Role, Statement};
use serde_json::{Map, Value};

use super::{Account, AccountError};
use crate::{
    oauth::grants::{self, ConnectedApp},
    state::{AppState, DbEntry},
};

/// Rows per page of the browser.
pub const PAGE_ROWS: u64 = 50;

/// The connected app `client_id` of `account` and its ready database; 404
/// `app_not_connected` when the app holds no database in the account.
pub async fn connected(
    state: &AppState,
    account: &Account,
    client_id: &str,
) -> Result<(ConnectedApp, Arc<DbEntry>), AccountError> {
    let not_found = || AccountError::NotConnected;
    let app = grants::list(state, account)
        .await?
        .into_iter()
        .find(|a| a.client_id == client_id)
        .ok_or_else(not_found)?;
    let db = state
        .databases
        .lookup(&account.namespace_slug, &app.database_slug)
        .await
        .map_err(|e| AccountError::Lookup(e.to_string()))?
        .ok_or_else(not_found)?;
    Ok((app, db))
}

/// One page of the browser: the database's tables and, when one is chosen, its rows.
#[derive(Debug)]
pub struct TablePage {
    pub app: ConnectedApp,
    pub tables: Vec<String>,
    pub table: Option<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    pub page: u64,
    pub has_next: bool,
}

/// Page `page` of table `table` (none: just the list of tables) of the app's database, read
/// under the `read` role.
pub async fn table_page(
    state: &AppState,
    account: &Account,
    client_id: &str,
    table: Option<String>,
    page: u64,
) -> Result<TablePage, AccountError> {
    let (app, db) = connected(state, account, client_id).await?;
    let schema = state.storage.describe(&db.location).await?;
    let tables: Vec<String> = schema.tables.into_iter().map(|t| t.name).collect();
    let table = match table {
        Some(t) if tables.contains(&t) => Some(t),
        Some(_) => return Err(AccountError::NoSuchTable),
        None => None,
    };
    let page = page.min(1_000_000);
    let (mut columns, mut rows) = (Vec::new(), Vec::new());
    if let Some(t) = &table {
        // The name comes from the database's own schema, quoted as an identifier; the read
        // role keeps this a pure SELECT under the authorizer.
        let sql = format!(
            "SELECT * FROM \"{}\" LIMIT {} OFFSET {}",
            t.replace('"', "\"\""),
            PAGE_ROWS + 1,
            page * PAGE_ROWS
        );
        let statement = Statement {
            sql,
            params: Params::None,
        };
        let r = state
            .storage
            .query(&db.location, Role::Read, statement)
            .await?;
        columns = r.columns;
        rows = r.rows;
    }
    let has_next = rows.len() as u64 > PAGE_ROWS;
    rows.truncate(PAGE_ROWS as usize);
    Ok(TablePage {
        app,
        tables,
        table,
        columns,
        rows,
        page,
        has_next,
    })
}
