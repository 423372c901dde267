//! Issue #21 over HTTP: one request never takes the server down, outgrows its memory
//! bounds, outlives its deadline, or fools the authorizer.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::{
    agents::token_for,
    mcp::{call, mcp_client, text_of},
    support::{Backends, TestApp, assert_problem, free_port, spawn_persql},
};

/// 8,000 statements once aborted the process (a stack overflow): a separate `persql`
/// process, so the failure shows as a dead server and not a dead test binary.
#[tokio::test]
async fn thousands_of_statements_are_a_400_not_an_abort() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let port = free_port();
    let backends = Backends::embedded();
    let mut child = spawn_persql(
        "serve",
        "serve",
        Some(port),
        &dir,
        &backends,
        tmp.path(),
        |_| {},
    )
    .await;
    let app = TestApp::remote(port, &dir, &backends);
    let ws = app.namespace("acme").await;
    let (s, b) = app.post("/v1/databases", &ws, json!({ "slug": "d" })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let read = token_for(&app, &ws, "acme/d", "read").await;
    let sql = "SELECT 1;".repeat(8000);
    let (s, b) = app
        .post("/v1/databases/acme/d/query", &read, json!({ "sql": sql }))
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
    let client = mcp_client(&app, "acme/d", &read).await;
    let r = call(&client, "query", json!({ "sql": sql })).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text_of(&r).contains("one statement"), "{r:?}");
    client.cancel().await.unwrap();
    assert!(child.exited().is_none(), "{}", child.stderr_tail(20));
    app.sql(&read, "acme/d", "SELECT 1", json!([])).await;
}

/// A read token and a fresh database; returns (app, workspace token, read token, "ns/db").
async fn reader(tweak: impl FnOnce(&mut persql_api::Config)) -> (TestApp, String, String, String) {
    let app = TestApp::spawn_with(tweak).await;
    let ws = app.namespace("acme").await;
    let (s, b) = app.post("/v1/databases", &ws, json!({ "slug": "d" })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let read = token_for(&app, &ws, "acme/d", "read").await;
    (app, ws, read, "acme/d".into())
}

#[tokio::test]
async fn huge_values_are_refused_by_sqlite() {
    let (app, _, read, db) = reader(|_| {}).await;
    let path = format!("/v1/databases/{db}/query");
    // Chosen answer: SQLite refuses to make the value (400 `sql_error`, "string or blob
    // too big"), so nothing near a gigabyte is ever allocated.
    let (s, b) = app
        .post(&path, &read, json!({ "sql": "SELECT zeroblob(999999999)" }))
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
    assert!(b["detail"].as_str().unwrap().contains("too big"), "{b}");
    // printf() answers NULL for what it may not make.
    let (s, b) = app
        .post(
            &path,
            &read,
            json!({ "sql": "SELECT printf('%.*c', 999999990, 'x') AS p" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"], json!([{ "p": null }]));
}

#[tokio::test]
async fn a_batch_result_is_capped_as_a_whole() {
    let (app, _, read, db) = reader(|_| {}).await;
    let statements: Vec<_> = (0..60)
        .map(|_| json!({ "sql": "SELECT zeroblob(12000000)" }))
        .collect();
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/batch"),
            &read,
            json!({ "statements": statements }),
        )
        .await;
    assert_problem(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "result_too_large");
}

#[tokio::test]
async fn a_slow_batch_times_out_within_about_the_limit() {
    let (app, _, read, db) = reader(|c| c.storage.query_timeout_ms = 1000).await;
    let statements: Vec<_> = (0..200)
        .map(|_| json!({ "sql": "SELECT length(randomblob(8000000))" }))
        .collect();
    let start = Instant::now();
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/batch"),
            &read,
            json!({ "statements": statements }),
        )
        .await;
    assert_problem(s, &b, StatusCode::REQUEST_TIMEOUT, "query_timeout");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_comment_does_not_make_a_table_writable_for_a_reader() {
    let (app, ws, read, db) = reader(|_| {}).await;
    for sql in [
        "CREATE VIRTUAL TABLE x /* using fts5 */ USING rtree(id, a, b)",
        "CREATE TABLE x_data(v)",
    ] {
        app.sql(&ws, &db, sql, json!([])).await;
    }
    for sql in ["INSERT INTO x_data VALUES (1)", "UPDATE x_data SET v = 2"] {
        let (s, b) = app
            .post(
                &format!("/v1/databases/{db}/query"),
                &read,
                json!({ "sql": sql }),
            )
            .await;
        assert_problem(s, &b, StatusCode::FORBIDDEN, "statement_not_allowed");
    }
}

#[tokio::test]
async fn describe_is_bounded() {
    let (app, ws, read, db) = reader(|c| c.http.max_result_bytes = 20_000).await;
    let columns: Vec<String> = (0..100)
        .map(|i| format!("column_number_{i} TEXT"))
        .collect();
    for i in 0..10 {
        let sql = format!("CREATE TABLE wide_{i} ({})", columns.join(", "));
        app.sql(&ws, &db, &sql, json!([])).await;
    }
    let (s, b) = app.get(&format!("/v1/databases/{db}/schema"), &read).await;
    assert_problem(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "result_too_large");
}
