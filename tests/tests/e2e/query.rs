//! Queries and batches: parameters, value mapping, meta, transactions.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn query_maps_values_and_reports_meta() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let r = app
        .sql(
            &token,
            &db,
            "INSERT INTO entries (body, created_at) VALUES (?, ?), (?, ?)",
            json!(["a", "2026-01-01", "b", null]),
        )
        .await;
    assert_eq!(r["meta"]["changes"], 2);
    // Two rows and the audit trigger's two rows.
    assert_eq!(r["meta"]["rowsWritten"], 4);
    assert_eq!(r["meta"]["lastInsertRowid"], 2);
    assert!(r["meta"]["durationMs"].is_number());
    let r = app
        .sql(
            &token,
            &db,
            "SELECT id, body, created_at FROM entries WHERE body = :body",
            json!({ "body": "a" }),
        )
        .await;
    assert_eq!(
        r["data"],
        json!([{ "id": 1, "body": "a", "created_at": "2026-01-01" }])
    );
    assert_eq!(r["columns"], json!(["id", "body", "created_at"]));
    assert!(r["meta"]["rowsRead"].as_u64().unwrap() >= 1);
    let r = app
        .sql(
            &token,
            &db,
            "SELECT ? AS big, ? AS small, ? AS real, ? AS blob, NULL AS nul, x'00ff' AS lit, ? AS flag",
            json!([9007199254740993i64, -5, 1.5, { "base64": "aGVsbG8=" }, true]),
        )
        .await;
    assert_eq!(r["data"][0]["big"], "9007199254740993");
    assert_eq!(r["data"][0]["small"], -5);
    assert_eq!(r["data"][0]["real"], 1.5);
    assert_eq!(r["data"][0]["blob"], json!({ "base64": "aGVsbG8=" }));
    assert_eq!(r["data"][0]["nul"], json!(null));
    assert_eq!(r["data"][0]["lit"], json!({ "base64": "AP8=" }));
    assert_eq!(r["data"][0]["flag"], 1);
    let r = app
        .sql(
            &token,
            &db,
            "SELECT @a AS a, $b AS b",
            json!({ "a": "x", "$b": 2 }),
        )
        .await;
    assert_eq!(r["data"], json!([{ "a": "x", "b": 2 }]));
}

#[tokio::test]
async fn query_rejects_bad_params() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let path = format!("/v1/databases/{db}/query");
    for params in [
        json!([1, 2]),
        json!([]),
        json!({ "nope": 1 }),
        json!([[1]]),
        json!("x"),
    ] {
        let (s, b) = app
            .post(
                &path,
                &token,
                json!({ "sql": "SELECT ?1 AS a", "params": params }),
            )
            .await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_params");
    }
}

#[tokio::test]
async fn sql_errors_carry_sqlites_message() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let path = format!("/v1/databases/{db}/query");
    let (s, b) = app.post(&path, &token, json!({ "sql": "SELEC 1" })).await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
    assert!(
        b["detail"].as_str().unwrap().contains("syntax error"),
        "{b}"
    );
    let (s, b) = app
        .post(&path, &token, json!({ "sql": "SELECT * FROM missing" }))
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("no such table: missing"),
        "{b}"
    );
    let (s, b) = app
        .post(&path, &token, json!({ "sql": "SELECT 1; SELECT 2" }))
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let path = format!("/v1/databases/{db}/batch");
    let (s, b) = app
        .post(
            &path,
            &token,
            json!({ "statements": [
                { "sql": "INSERT INTO entries (body) VALUES (?)", "params": ["one"] },
                { "sql": "INSERT INTO entries (id, body) VALUES (1, 'duplicate id')" },
            ]}),
        )
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
    assert_eq!(b["statementIndex"], 1);
    let r = app
        .sql(&token, &db, "SELECT count(*) AS n FROM entries", json!([]))
        .await;
    assert_eq!(
        r["data"][0]["n"], 0,
        "the first insert must have been rolled back"
    );

    let (s, b) = app
        .post(
            &path,
            &token,
            json!({ "statements": [
                { "sql": "INSERT INTO entries (body) VALUES (:b)", "params": { "b": "one" } },
                { "sql": "INSERT INTO entries (body) VALUES (?)", "params": ["two"] },
                { "sql": "SELECT body FROM entries ORDER BY id" },
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["meta"]["changes"], 1);
    assert_eq!(
        results[2]["data"],
        json!([{ "body": "one" }, { "body": "two" }])
    );
}

#[tokio::test]
async fn batch_rejects_empty_and_refused_statements() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let path = format!("/v1/databases/{db}/batch");
    let (s, b) = app.post(&path, &token, json!({ "statements": [] })).await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, b) = app
        .post(&path, &token, json!({ "statements": [{ "sql": "INSERT INTO entries (body) VALUES ('x')" }, { "sql": "DROP TABLE entries" }] }))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "ddl_not_allowed");
    let r = app
        .sql(&token, &db, "SELECT count(*) AS n FROM entries", json!([]))
        .await;
    assert_eq!(r["data"][0]["n"], 0);
}

#[tokio::test]
async fn schema_and_export_describe_the_database() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    app.sql(
        &token,
        &db,
        "INSERT INTO entries (body) VALUES ('kept')",
        json!([]),
    )
    .await;
    let (s, schema) = app.get(&format!("/v1/databases/{db}/schema"), &token).await;
    assert_eq!(s, StatusCode::OK, "{schema}");
    let tables: Vec<&str> = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tables.contains(&"entries") && tables.contains(&"audit"),
        "{schema}"
    );
    let res = app
        .client
        .get(format!("{}/v1/databases/{db}/export", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/vnd.sqlite3");
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let conn = rusqlite::Connection::open(file.path()).unwrap();
    let body: String = conn
        .query_row("SELECT body FROM entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body, "kept");
}
