//! Agents: the schema (JSON and prompt text) and tool definitions per role. The MCP server
//! is in `mcp.rs`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

/// A provisioned user database with the template's schema plus a child table with a
/// foreign key; returns (workspace token, user token, "ns/db").
pub async fn user_database(app: &TestApp) -> (String, String, String) {
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "user-1").await;
    app.sql(
        &ws,
        &db,
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE, name TEXT DEFAULT 'new')",
        json!([]),
    )
    .await;
    (ws, token, db)
}

pub async fn token_for(app: &TestApp, ws: &str, db: &str, role: &str) -> String {
    let body = json!({ "database": db, "role": role, "ttlSeconds": 600 });
    let (s, b) = app.post("/v1/tokens", ws, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

async fn get_text(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, String) {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let ct = res.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (status, ct, res.text().await.unwrap())
}

#[tokio::test]
async fn schema_describes_columns_keys_indexes_views_triggers_ddl_and_row_estimates() {
    let app = TestApp::spawn().await;
    let (_, token, db) = user_database(&app).await;
    app.sql(
        &token,
        &db,
        "INSERT INTO entries (body) VALUES ('a'), ('b')",
        json!([]),
    )
    .await;
    let (s, schema) = app.get(&format!("/v1/databases/{db}/schema"), &token).await;
    assert_eq!(s, StatusCode::OK, "{schema}");
    assert_eq!(schema["schemaVersion"], json!(0), "{schema}");
    let table = |name: &str| {
        schema["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no table {name} in {schema}"))
            .clone()
    };
    let entries = table("entries");
    assert_eq!(
        entries["columns"],
        json!([
            {"name": "id", "type": "INTEGER", "notNull": false, "default": null, "primaryKey": 1},
            {"name": "body", "type": "TEXT", "notNull": true, "default": null, "primaryKey": 0},
            {"name": "created_at", "type": "TEXT", "notNull": false, "default": null, "primaryKey": 0},
        ])
    );
    assert!(
        entries["ddl"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE entries")
    );
    assert_eq!(entries["indexes"][0]["name"], "entries_body");
    assert_eq!(entries["indexes"][0]["columns"], json!(["body"]));
    // The template's row is not copied; two inserted here, and the trigger wrote two audits.
    assert_eq!(
        entries["rowEstimate"],
        json!({"count": 2, "method": "exact"})
    );
    assert_eq!(table("audit")["rowEstimate"]["count"], 2);
    let tags = table("tags");
    assert_eq!(tags["columns"][2]["default"], "'new'");
    assert_eq!(
        tags["foreignKeys"],
        json!([{"columns": ["entry_id"], "table": "entries", "to": ["id"], "onUpdate": "NO ACTION", "onDelete": "CASCADE"}])
    );
    assert_eq!(schema["views"][0]["name"], "recent");
    assert_eq!(schema["triggers"][0]["name"], "entries_audit");
    assert_eq!(schema["triggers"][0]["table"], "entries");
}

#[tokio::test]
async fn schema_as_text_is_compact_for_a_prompt() {
    let app = TestApp::spawn().await;
    let (_, token, db) = user_database(&app).await;
    let (s, ct, text) = get_text(
        &app,
        &format!("/v1/databases/{db}/schema?format=text"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(ct.starts_with("text/plain"), "{ct}");
    for line in [
        "SQLite database (schema version 0): 3 tables, 1 views, 1 triggers.",
        "table entries (0 rows): id INTEGER PRIMARY KEY, body TEXT NOT NULL, created_at TEXT",
        "  index entries_body (body)",
        "table tags (0 rows): id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL, name TEXT DEFAULT 'new'",
        "  foreign key (entry_id) references entries(id) on delete CASCADE",
        "view recent: CREATE VIEW recent AS SELECT * FROM entries ORDER BY id DESC LIMIT 10",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    assert!(text.len() < 1000, "{text}");
    let (s, json_ct, _) = get_text(
        &app,
        &format!("/v1/databases/{db}/schema?format=json"),
        &token,
    )
    .await;
    assert_eq!((s, json_ct.as_str()), (StatusCode::OK, "application/json"));
}

#[tokio::test]
async fn schema_and_tools_refuse_bad_formats_and_tokens_that_do_not_reach_the_database() {
    let app = TestApp::spawn().await;
    let (ws, token, db) = user_database(&app).await;
    let (_, other_db) = app.provision(&ws, "user-2").await;
    for path in ["schema", "tools"] {
        let (s, b) = app
            .get(&format!("/v1/databases/{db}/{path}?format=yaml"), &token)
            .await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
        let (s, b) = app
            .get(&format!("/v1/databases/{db}/{path}?colour=red"), &token)
            .await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
        let (s, b) = app
            .call(
                reqwest::Method::GET,
                &format!("/v1/databases/{db}/{path}"),
                None,
                None,
            )
            .await;
        assert_problem(s, &b, StatusCode::UNAUTHORIZED, "missing_token");
        let (s, b) = app
            .get(&format!("/v1/databases/{db}/{path}"), "psql_live_nope")
            .await;
        assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
        let (s, b) = app
            .get(&format!("/v1/databases/{other_db}/{path}"), &token)
            .await;
        assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    }
}

#[tokio::test]
async fn tools_come_in_openai_anthropic_and_mcp_layouts_with_the_schema() {
    let app = TestApp::spawn().await;
    let (_, token, db) = user_database(&app).await;
    let path = |f: &str| format!("/v1/databases/{db}/tools{f}");
    let (s, openai) = app.get(&path("?format=openai"), &token).await;
    assert_eq!(s, StatusCode::OK, "{openai}");
    assert_eq!(openai["database"], db.as_str());
    assert_eq!(openai["role"], "write");
    assert_eq!(openai["format"], "openai");
    let query = &openai["tools"][0];
    assert_eq!(query["type"], "function");
    assert_eq!(query["function"]["name"], "query");
    let description = query["function"]["description"].as_str().unwrap();
    assert!(description.contains(&db), "{description}");
    assert!(description.contains("table tags (0 rows)"), "{description}");
    assert!(!description.contains("READ-ONLY"), "{description}");
    assert_eq!(query["function"]["parameters"]["required"], json!(["sql"]));
    assert_eq!(openai["tools"][1]["function"]["name"], "describe");

    let (_, anthropic) = app.get(&path("?format=anthropic"), &token).await;
    assert_eq!(anthropic["tools"][0]["name"], "query");
    assert_eq!(
        anthropic["tools"][0]["input_schema"]["properties"]["sql"]["type"],
        "string"
    );
    let (_, mcp) = app.get(&path("?format=mcp"), &token).await;
    assert_eq!(mcp["tools"][1]["name"], "describe");
    assert_eq!(mcp["tools"][1]["inputSchema"]["type"], "object");
    assert_eq!(mcp["tools"][0]["annotations"]["readOnlyHint"], false);
    let (_, default) = app.get(&path(""), &token).await;
    assert_eq!(default, mcp);
}
