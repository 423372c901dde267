//! The account pages: connected apps (browse, export, disconnect) and personal tokens.

use axum::{http::StatusCode, response::Response};
use maud::{Markup, html};
use serde_json::Value;

use super::{hidden, page, when};
use crate::{accounts::Account, oauth::grants::ConnectedApp};

fn header(account: &Account, csrf: &str) -> Markup {
    html! {
        p.muted {
            "Signed in as " strong { (account.email) }
            " · namespace " code { (account.namespace_slug) } " · "
            form method="post" action="/account/signout" style="display:inline" {
                (hidden("csrf", csrf))
                button type="submit" { "Sign out" }
            }
        }
    }
}

fn app_row(account: &Account, a: &ConnectedApp, csrf: &str) -> Markup {
    let id = &a.client_id;
    html! {
        tr {
            td { (a.name) br; code.muted { (id) } }
            td { code { (account.namespace_slug) "/" (a.database_slug) } }
            td { (when(a.connected_at)) }
            td { (a.last_used_at.map(when).as_deref().unwrap_or("never")) }
            td {
                a href={ "/account/apps/" (id) "/browse" } { "Look inside" }
                " · "
                a href={ "/account/apps/" (id) "/export" } { "Export (SQLite file)" }
                form method="post" action={ "/account/apps/" (id) "/disconnect" } {
                    (hidden("csrf", csrf))
                    button type="submit" { "Disconnect" }
                }
            }
        }
    }
}

fn home_body(account: &Account, apps: &[ConnectedApp], csrf: &str) -> Markup {
    html! {
        h1 { "Your PerSQL account" }
        (header(account, csrf))
        h2 { "Connected apps" }
        @if apps.is_empty() {
            p { "No app holds a database in your account." }
        } @else {
            table {
                tr { th { "App" } th { "Database" } th { "Connected since" } th { "Last used" } th {} }
                @for a in apps { (app_row(account, a, csrf)) }
            }
        }
        p.muted {
            "Disconnecting stops the app's access at once; the data stays here, \
             and approving the app again gives it back the same data."
        }
        h2 { "Personal token" }
        p {
            "A workspace token for your own namespace (for the API, e.g. "
            code { "GET /v1/databases/" (account.namespace_slug) "/<db>/export" }
            "). Queries made with it bill your balance."
        }
        form method="post" action="/account/tokens" {
            (hidden("csrf", csrf))
            button type="submit" { "Create a personal token" }
        }
    }
}

/// The account home: connected apps and the personal-token form.
pub fn home(account: &Account, apps: &[ConnectedApp], csrf: &str, cookies: &[String]) -> Response {
    page(
        StatusCode::OK,
        "Your account",
        home_body(account, apps, csrf),
        cookies,
    )
}

fn token_body(account: &Account, token: &str) -> Markup {
    html! {
        h1 { "Your personal token" }
        p { "Copy it now: it is shown only once." }
        p { code #token { (token) } }
        p { "It reaches every database of namespace " code { (account.namespace_slug) } "." }
        p { a href="/account" { "Back to your account" } }
    }
}

/// A freshly minted personal token, shown once.
pub fn token_minted(account: &Account, token: &str) -> Response {
    page(
        StatusCode::CREATED,
        "Personal token",
        token_body(account, token),
        &[],
    )
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

impl Browse<'_> {
    /// The browser's address for page `p` of table `t`.
    fn link(&self, t: &str, p: u64) -> String {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("table", t)
            .append_pair("page", &p.to_string())
            .finish();
        format!("/account/apps/{}/browse?{q}", self.app.client_id)
    }
}

fn cell(v: &Value) -> Markup {
    html! {
        @match v {
            Value::Null => span.muted { "NULL" },
            Value::String(s) => (s),
            other => (other),
        }
    }
}

fn rows(b: &Browse<'_>, t: &str) -> Markup {
    html! {
        h2 { (t) " " span.muted { "page " (b.page + 1) } }
        table {
            tr { @for c in b.columns { th { (c) } } }
            @for r in b.rows {
                tr { @for c in b.columns { td { (cell(r.get(c).unwrap_or(&Value::Null))) } } }
            }
        }
        p {
            @if b.page > 0 { a href=(b.link(t, b.page - 1)) { "← previous" } " " }
            @if b.has_next { a href=(b.link(t, b.page + 1)) { "next →" } }
        }
    }
}

fn browse_body(b: &Browse<'_>) -> Markup {
    html! {
        h1 { (b.app.name) " — what it stored" }
        p.muted {
            "Read-only view of " code { (b.app.database_slug) } ". "
            a href="/account" { "Back" }
        }
        h2 { "Tables" }
        ul {
            @for t in b.tables { li { a href=(b.link(t, 0)) { (t) } } }
            @if b.tables.is_empty() { li { "No tables yet." } }
        }
        @if let Some(t) = b.table { (rows(b, t)) }
    }
}

/// The read-only table browser.
pub fn browse(b: &Browse<'_>) -> Response {
    page(StatusCode::OK, "Browse", browse_body(b), &[])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pages::tests::{EVIL, EVIL_ESCAPED, assert_escaped};

    fn account() -> Account {
        Account {
            id: "acc".into(),
            email: EVIL.into(),
            namespace_id: "ns".into(),
            namespace_slug: EVIL.into(),
        }
    }

    fn app() -> ConnectedApp {
        ConnectedApp {
            client_id: EVIL.into(),
            name: EVIL.into(),
            database_id: "db".into(),
            database_slug: EVIL.into(),
            connected_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn home_escapes_the_account_and_every_app_field() {
        let html = home_body(&account(), &[app()], EVIL).into_string();
        // Header: email, namespace, csrf. Row: name, id, namespace, database, two links, the
        // form's action and csrf. Token form: namespace and csrf.
        assert_escaped(&html, 13);
        assert!(html.contains(&format!(
            r#"<a href="/account/apps/{EVIL_ESCAPED}/browse">Look inside</a>"#
        )));
        assert!(html.contains(&format!(
            r#"<form method="post" action="/account/apps/{EVIL_ESCAPED}/disconnect">"#
        )));
    }

    #[test]
    fn home_without_apps_says_so() {
        let html = home_body(&account(), &[], "c").into_string();
        assert!(html.contains("<p>No app holds a database in your account.</p>"));
        assert!(!html.contains("<table>"));
    }

    #[test]
    fn token_page_escapes_the_token_and_namespace() {
        let html = token_body(&account(), EVIL).into_string();
        assert_escaped(&html, 2);
        assert!(html.contains(&format!(r#"<code id="token">{EVIL_ESCAPED}</code>"#)));
    }

    #[test]
    fn browser_escapes_names_columns_and_cells() {
        let app = app();
        let tables = [EVIL.to_owned()];
        let columns = [EVIL.to_owned(), "n".to_owned()];
        let row = json!({ EVIL: EVIL, "n": null });
        let rows = [row.as_object().expect("object").clone()];
        let html = browse_body(&Browse {
            app: &app,
            tables: &tables,
            table: Some(EVIL),
            columns: &columns,
            rows: &rows,
            page: 1,
            has_next: true,
        })
        .into_string();
        // App name, database, the table in the list and as heading, the column, the cell, and
        // the client id in the three links (table list, previous, next).
        assert_escaped(&html, 9);
        assert!(html.contains(r#"<td><span class="muted">NULL</span></td>"#));
        // Links: the client id HTML-escaped in the path, the table URL-encoded in the query.
        let query = "table=%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%26";
        assert!(html.contains(&format!(
            r#"href="/account/apps/{EVIL_ESCAPED}/browse?{query}&amp;page=0""#
        )));
        assert!(html.contains("page=2\">next →</a>") && html.contains("page=0\">← previous</a>"));
    }
}
