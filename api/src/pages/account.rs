//! The account pages: connected apps (browse, export, disconnect) and personal tokens.

use axum::{http::StatusCode, response::Response};
use serde_json::Value;

use super::{escape, hidden, page, when};
use crate::{accounts::Account, oauth::grants::ConnectedApp};

fn header(account: &Account, csrf: &str) -> String {
    format!(
        "<p class=\"muted\">Signed in as <strong>{}</strong> · namespace <code>{}</code> · \
         <form method=\"post\" action=\"/account/signout\" style=\"display:inline\">{}\
         <button type=\"submit\">Sign out</button></form></p>",
        escape(&account.email),
        escape(&account.namespace_slug),
        hidden("csrf", csrf),
    )
}

/// The account home: connected apps and the personal-token form.
pub fn home(account: &Account, apps: &[ConnectedApp], csrf: &str, cookies: &[String]) -> Response {
    let rows: String = apps
        .iter()
        .map(|a| {
            let id = escape(&a.client_id);
            format!(
                "<tr><td>{name}<br><code class=\"muted\">{id}</code></td>\
                 <td><code>{ns}/{db}</code></td><td>{since}</td><td>{used}</td>\
                 <td><a href=\"/account/apps/{id}/browse\">Look inside</a> · \
                 <a href=\"/account/apps/{id}/export\">Export (SQLite file)</a>\
                 <form method=\"post\" action=\"/account/apps/{id}/disconnect\">{csrf}\
                 <button type=\"submit\">Disconnect</button></form></td></tr>",
                name = escape(&a.name),
                ns = escape(&account.namespace_slug),
                db = escape(&a.database_slug),
                since = when(a.connected_at),
                used = a.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                csrf = hidden("csrf", csrf),
            )
        })
        .collect();
    let table = if apps.is_empty() {
        "<p>No app holds a database in your account.</p>".to_owned()
    } else {
        format!(
            "<table><tr><th>App</th><th>Database</th><th>Connected since</th><th>Last used</th><th></th></tr>{rows}</table>"
        )
    };
    let body = format!(
        "<h1>Your PerSQL account</h1>{}<h2>Connected apps</h2>{table}\
         <p class=\"muted\">Disconnecting stops the app's access at once; the data stays here, \
         and approving the app again gives it back the same data.</p>\
         <h2>Personal token</h2><p>A workspace token for your own namespace (for the API, \
         e.g. <code>GET /v1/databases/{}/&lt;db&gt;/export</code>). Queries made with it bill your balance.</p>\
         <form method=\"post\" action=\"/account/tokens\">{}<button type=\"submit\">Create a personal token</button></form>",
        header(account, csrf),
        escape(&account.namespace_slug),
        hidden("csrf", csrf),
    );
    page(StatusCode::OK, "Your account", &body, cookies)
}

/// A freshly minted personal token, shown once.
pub fn token_minted(account: &Account, token: &str) -> Response {
    let body = format!(
        "<h1>Your personal token</h1><p>Copy it now: it is shown only once.</p>\
         <p><code id=\"token\">{}</code></p><p>It reaches every database of namespace <code>{}</code>.</p>\
         <p><a href=\"/account\">Back to your account</a></p>",
        escape(token),
        escape(&account.namespace_slug),
    );
    page(StatusCode::CREATED, "Personal token", &body, &[])
}

/// One page of the browser: the database's tables, and rows of the selected one.
#[derive(Debug)]
pub struct Browse<'a> {
    pub app: &'a ConnectedApp,
    pub tables: &'a [String],
    pub table: Option<&'a str>,
    pub columns: &'a [String],
    pub rows: &'a [serde_json::Map<String, Value>],
    pub page: u64,
    pub has_next: bool,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "<span class=\"muted\">NULL</span>".into(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// The read-only table browser.
pub fn browse(b: &Browse<'_>) -> Response {
    let base = format!("/account/apps/{}/browse", escape(&b.app.client_id));
    let link = |t: &str, p: u64| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("table", t)
            .append_pair("page", &p.to_string())
            .finish();
        format!("{base}?{}", escape(&q))
    };
    let tables: String = b
        .tables
        .iter()
        .map(|t| format!("<li><a href=\"{}\">{}</a></li>", link(t, 0), escape(t)))
        .collect();
    let mut body = format!(
        "<h1>{} — what it stored</h1><p class=\"muted\">Read-only view of <code>{}</code>. \
         <a href=\"/account\">Back</a></p><h2>Tables</h2><ul>{}</ul>",
        escape(&b.app.name),
        escape(&b.app.database_slug),
        if tables.is_empty() {
            "<li>No tables yet.</li>".into()
        } else {
            tables
        },
    );
    if let Some(t) = b.table {
        let head: String = b
            .columns
            .iter()
            .map(|c| format!("<th>{}</th>", escape(c)))
            .collect();
        let rows: String = b
            .rows
            .iter()
            .map(|r| {
                let cells: String = b
                    .columns
                    .iter()
                    .map(|c| format!("<td>{}</td>", cell(r.get(c).unwrap_or(&Value::Null))))
                    .collect();
                format!("<tr>{cells}</tr>")
            })
            .collect();
        let mut nav = String::new();
        if b.page > 0 {
            nav.push_str(&format!(
                "<a href=\"{}\">← previous</a> ",
                link(t, b.page - 1)
            ));
        }
        if b.has_next {
            nav.push_str(&format!("<a href=\"{}\">next →</a>", link(t, b.page + 1)));
        }
        body.push_str(&format!(
            "<h2>{} <span class=\"muted\">page {}</span></h2><table><tr>{head}</tr>{rows}</table><p>{nav}</p>",
            escape(t),
            b.page + 1
        ));
    }
    page(StatusCode::OK, "Browse", &body, &[])
}
