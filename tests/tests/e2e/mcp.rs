//! The MCP server of each database, driven by the official Rust MCP client (`rmcp`).

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

use crate::{
    agents::{token_for, user_database},
    support::{TestApp, assert_problem},
};

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

pub(crate) async fn mcp_client(
    app: &TestApp,
    db: &str,
    token: &str,
) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(mcp_url(app, db)).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP handshake")
}

pub(crate) async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("tools/call")
}

pub(crate) fn text_of(r: &CallToolResult) -> String {
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
    let app = TestApp::spawn_with(|c| c.pricing.price_query = "40".parse().unwrap()).await;
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

#[tokio::test]
async fn a_connected_mcp_client_loses_access_the_moment_its_token_is_revoked() {
    let app = TestApp::spawn().await;
    let (ws, token, db) = user_database(&app).await;
    let client = mcp_client(&app, &db, &token).await;
    let r = call(&client, "query", json!({ "sql": "SELECT 1 AS one" })).await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    // Deleting the database revokes its tokens; MCP keeps no session that outlives them.
    let (s, b) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/databases/{db}"),
            Some(&ws),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let after = client
        .call_tool(
            CallToolRequestParams::new("query").with_arguments(
                json!({ "sql": "SELECT 1" })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        )
        .await;
    assert!(after.is_err(), "{after:?}");
    let _ = client.cancel().await;
}
