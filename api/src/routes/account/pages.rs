//! The signed-in account's pages: connected apps, the read-only browser of an app's
//! database, export, disconnect, personal tokens.

use axum::{
    extract::{
        Form, Path, Query, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use persql_storage::{Params, Role, Statement};
use serde::Deserialize;

use super::forms::CsrfOnly;
use crate::{
    accounts::{Account, sessions},
    error::ApiError,
    oauth::grants::{self, ConnectedApp},
    pages::{self, account::Browse},
    queries,
    state::{AppState, DbEntry},
    tokens::{self, NewToken, TokenKind},
};

/// Rows per page of the browser.
const PAGE_ROWS: u64 = 50;

/// The signed-in account, or the redirect to sign in first.
async fn signed_in(state: &AppState, headers: &HeaderMap, here: &str) -> Result<Account, Response> {
    match sessions::current(&state.cp, headers).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", here)
                .finish();
            Err(pages::see_other(&format!("/account/signin?{q}"), &[]))
        }
        Err(e) => Err(pages::api_error(e)),
    }
}

/// The account home.
pub async fn account_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let account = match signed_in(&state, &headers, "/account").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (csrf, set) = sessions::csrf_token(&headers, state.secure_cookies());
    let cookies: Vec<String> = set.into_iter().collect();
    match grants::list(&state, &account).await {
        Ok(apps) => pages::account::home(&account, &apps, &csrf, &cookies),
        Err(e) => pages::api_error(e),
    }
}

/// The connected app `client_id` of the account and its ready database.
async fn connected(
    state: &AppState,
    account: &Account,
    client_id: &str,
) -> Result<(ConnectedApp, std::sync::Arc<DbEntry>), ApiError> {
    let not_found = || {
        ApiError::not_found(
            "app_not_connected",
            "this app holds no database in the account",
        )
    };
    let app = grants::list(state, account)
        .await?
        .into_iter()
        .find(|a| a.client_id == client_id)
        .ok_or_else(not_found)?;
    let db = state
        .databases
        .lookup(&account.namespace_slug, &app.database_slug)
        .await?
        .ok_or_else(not_found)?;
    Ok((app, db))
}

/// `?table=&page=` of the browser.
#[derive(Debug, Default, Deserialize)]
pub struct BrowseQuery {
    pub table: Option<String>,
    pub page: Option<u64>,
}

/// Read-only view of what the app stored: its tables and their rows, paged.
pub async fn browse_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    q: Result<Query<BrowseQuery>, QueryRejection>,
) -> Response {
    let here = format!("/account/apps/{client_id}/browse");
    let account = match signed_in(&state, &headers, &here).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    match browse(&state, &account, &client_id, q).await {
        Ok(r) => r,
        Err(e) => pages::api_error(e),
    }
}

async fn browse(
    state: &AppState,
    account: &Account,
    client_id: &str,
    q: BrowseQuery,
) -> Result<Response, ApiError> {
    let (app, db) = connected(state, account, client_id).await?;
    let schema = state.storage.describe(&db.location).await?;
    let tables: Vec<String> = schema.tables.into_iter().map(|t| t.name).collect();
    let table = match q.table {
        Some(t) if tables.contains(&t) => Some(t),
        Some(_) => return Err(ApiError::not_found("not_found", "no such table")),
        None => None,
    };
    let page = q.page.unwrap_or(0).min(1_000_000);
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
        let r = state
            .storage
            .query(
                &db.location,
                Role::Read,
                Statement {
                    sql,
                    params: Params::None,
                },
            )
            .await?;
        columns = r.columns;
        rows = r.rows;
    }
    let has_next = rows.len() as u64 > PAGE_ROWS;
    rows.truncate(PAGE_ROWS as usize);
    Ok(pages::account::browse(&Browse {
        app: &app,
        tables: &tables,
        table: table.as_deref(),
        columns: &columns,
        rows: &rows,
        page,
        has_next,
    }))
}

/// Download the app's database as a SQLite file.
pub async fn export_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let account = match signed_in(&state, &headers, "/account").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = async {
        let (_, db) = connected(&state, &account, &client_id).await?;
        Ok::<_, ApiError>(queries::export(&state, &db).await?.into_response())
    };
    result.await.unwrap_or_else(pages::api_error)
}

/// A CSRF-checked POST from a signed-in account.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    f: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Account, Response> {
    if !f.is_ok_and(|Form(c)| sessions::csrf_ok(headers, &c.csrf)) {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "Cannot continue",
            "The form expired. Go back, reload and try again.",
        ));
    }
    signed_in(state, headers, "/account").await
}

/// Disconnect an app (the form on the account page).
pub async fn disconnect_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    f: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let account = match posted(&state, &headers, f).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match grants::disconnect(&state, &account, &client_id).await {
        Ok(()) => pages::see_other("/account", &[]),
        Err(e) => pages::api_error(e),
    }
}

/// Mint a personal workspace token for the account's namespace (shown once).
pub async fn mint_token_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let account = match posted(&state, &headers, f).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let minted = async {
        let mut tx = state.cp.begin().await?;
        let (_, secret) = tokens::mint(
            &mut tx,
            state.cp.backend(),
            &NewToken {
                kind: TokenKind::Workspace,
                namespace_id: Some(&account.namespace_id),
                namespace_slug: &account.namespace_slug,
                database_id: None,
                role: None,
                billed_namespace_id: Some(&account.namespace_id),
                expires_at: None,
            },
        )
        .await?;
        state.cp.commit(tx).await?;
        Ok::<_, ApiError>(secret)
    };
    match minted.await {
        Ok(secret) => pages::account::token_minted(&account, secret.expose()),
        Err(e) => pages::api_error(e),
    }
}
