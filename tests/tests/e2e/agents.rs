//! Agents: the schema (JSON and prompt text), tool definitions per role, and the MCP server
//! driven by the official Rust MCP client.

use reqwest::StatusCode;
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

/// A provisioned user database with the template's schema plus a child table with a
/// foreign key; returns (workspace token, user token, "ns/db").
async fn user_database(app: &TestApp) -> (String, String, String) {
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

async fn token_for(app: &TestApp, ws: &str, db: &str, role: &str) -> String {
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

#[tokio::test]
async fn read_token_gets_a_read_only_query_tool_that_the_server_enforces() {
    let app = TestApp::spawn().await;
    let (ws, _, db) = user_database(&app).await;
    let read = token_for(&app, &ws, &db, "read").await;
    let (s, tools) = app
        .get(&format!("/v1/databases/{db}/tools?format=mcp"), &read)
        .await;
    assert_eq!(s, StatusCode::OK, "{tools}");
    assert_eq!(tools["role"], "read");
    assert_eq!(tools["tools"][0]["annotations"]["readOnlyHint"], true);
    assert!(
        tools["tools"][0]["description"]
            .as_str()
            .unwrap()
            .contains("READ-ONLY")
    );
    // Whatever a model sends with it, writes are refused: over REST and over MCP.
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &read,
            json!({ "sql": "INSERT INTO entries (body) VALUES ('x')" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "statement_not_allowed");
    let client = mcp_client(&app, &db, &read).await;
    for sql in [
        "INSERT INTO entries (body) VALUES ('x')",
        "DROP TABLE entries",
    ] {
        let r = call(&client, "query", json!({ "sql": sql })).await;
        assert_eq!(r.is_error, Some(true), "{sql}: {r:?}");
        assert!(text_of(&r).starts_with("error "), "{r:?}");
    }
    let r = call(
        &client,
        "query",
        json!({ "sql": "SELECT count(*) AS n FROM entries" }),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let body: Value = serde_json::from_str(&text_of(&r)).unwrap();
    assert_eq!(body["data"], json!([{"n": 0}]));
    client.cancel().await.unwrap();
}

fn mcp_url(app: &TestApp, db: &str) -> String {
    format!("{}/v1/databases/{db}/mcp", app.base)
}

async fn mcp_client(app: &TestApp, db: &str, token: &str) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(mcp_url(app, db)).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP handshake")
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("tools/call")
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("")
}

#[tokio::test]
async fn mcp_client_lists_and_calls_query_and_describe() {
    let app = TestApp::spawn().await;
    let (_, token, db) = user_database(&app).await;
    let client = mcp_client(&app, &db, &token).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("persql")
    );
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["query", "describe"]);
    assert!(
        tools[0]
            .description
            .as_deref()
            .unwrap()
            .contains("table entries (0 rows)")
    );
    assert_eq!(tools[0].input_schema["required"], json!(["sql"]));

    let r = call(
        &client,
        "query",
        json!({ "sql": "INSERT INTO entries (body) VALUES (?)", "params": ["from mcp"] }),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let body: Value = serde_json::from_str(&text_of(&r)).unwrap();
    assert_eq!(body["meta"]["changes"], 1);
    let r = call(
        &client,
        "query",
        json!({ "sql": "SELECT body FROM entries" }),
    )
    .await;
    let body: Value = serde_json::from_str(&text_of(&r)).unwrap();
    assert_eq!(body["data"], json!([{"body": "from mcp"}]));
    let r = call(&client, "describe", json!({})).await;
    assert!(text_of(&r).contains("table entries (1 row)"), "{r:?}");
    // The same rows over REST: one database behind both doors.
    let rest = app
        .sql(&token, &db, "SELECT body FROM entries", json!([]))
        .await;
    assert_eq!(rest["data"], json!([{"body": "from mcp"}]));

    // Bad calls come back as tool errors (the model reads them) or JSON-RPC errors.
    let r = call(&client, "query", json!({ "sql": "SELEC nonsense" })).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).starts_with("error sql_error:"), "{r:?}");
    let r = call(&client, "query", json!({ "params": [1] })).await;
    assert!(text_of(&r).starts_with("error invalid_params:"), "{r:?}");
    let r = call(&client, "query", json!({ "sql": "SELECT 1", "limit": 5 })).await;
    assert!(text_of(&r).starts_with("error invalid_params:"), "{r:?}");
    let unknown = client
        .call_tool(CallToolRequestParams::new("drop_everything"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_answers_only_a_token_for_that_database() {
    let app = TestApp::spawn().await;
    let (ws, token, db) = user_database(&app).await;
    let (_, other_db) = app.provision(&ws, "user-2").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |db: String, token: Option<String>| {
        let mut req = app
            .client
            .post(mcp_url(&app, &db))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = post(db.clone(), None).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "missing_token");
    let (s, b) = post(db.clone(), Some("psql_live_unknown".into())).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    let (s, b) = post(other_db.clone(), Some(token.clone())).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    let (s, b) = post(db.clone(), Some(token.clone())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["result"]["serverInfo"]["name"], "persql", "{b}");
    // Malformed JSON-RPC is refused by the MCP layer, not answered with a 500.
    let res = app
        .client
        .post(mcp_url(&app, &db))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    // The official client cannot even connect with a token of another database.
    let config = StreamableHttpClientTransportConfig::with_uri(mcp_url(&app, &other_db))
        .auth_header(token.as_str());
    assert!(
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mcp_queries_are_billed_and_refused_once_the_balance_is_used_up() {
    // Each statement costs 40 of the 100.00 the namespace starts with.
    let app = TestApp::spawn_with(|c| c.price_query = "40".into()).await;
    let ws = app.namespace("acme").await;
    let (s, b) = app
        .post("/v1/databases", &ws, json!({ "slug": "notes" }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let client = mcp_client(&app, "acme/notes", &ws).await;
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let r = call(&client, "query", json!({ "sql": "SELECT 1" })).await;
        outcomes.push((r.is_error, text_of(&r)));
    }
    assert_eq!(outcomes[0].0, Some(false), "{outcomes:?}");
    assert_eq!(outcomes[4].0, Some(true), "{outcomes:?}");
    assert!(
        outcomes[4].1.starts_with("error insufficient_funds:"),
        "{outcomes:?}"
    );
    let paid = outcomes.iter().filter(|o| o.0 == Some(false)).count();
    assert!((2..=3).contains(&paid), "{outcomes:?}");
    // REST agrees: the same namespace is out of funds.
    let (s, b) = app
        .post(
            "/v1/databases/acme/notes/query",
            &ws,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");
    client.cancel().await.unwrap();
}
