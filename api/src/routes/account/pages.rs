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
use serde::Deserialize;

use super::forms::CsrfOnly;
use crate::{
    accounts::{Account, browse, sessions},
    error::ApiError,
    oauth::grants,
    pages::{self, account::Browse},
    queries,
    state::AppState,
    tokens,
};

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
        Err(e) => Err(pages::api_error(e.into())),
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
        Err(e) => pages::api_error(e.into()),
    }
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
    let p = browse::table_page(state, account, client_id, q.table, q.page.unwrap_or(0)).await?;
    Ok(pages::account::browse(&Browse {
        app: &p.app,
        tables: &p.tables,
        table: p.table.as_deref(),
        columns: &p.columns,
        rows: &p.rows,
        page: p.page,
        has_next: p.has_next,
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
        let (_, db) = browse::connected(&state, &account, &client_id).await?;
        // The account's own database: counted against its namespace's exports.
        let export = queries::export(&state, &db, &db.namespace_id).await?;
        Ok::<_, ApiError>(export.into_response())
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
        Err(e) => pages::api_error(e.into()),
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
    let namespace = (
        account.namespace_id.as_str(),
        account.namespace_slug.as_str(),
    );
    let minted = tokens::mint_workspace_token(&state.cp, namespace, None);
    match minted.await {
        Ok((secret, _)) => pages::account::token_minted(&account, secret.expose()),
        Err(e) => pages::api_error(e.into()),
    }
}
