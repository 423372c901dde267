//! Tokens: who reaches what, roles, expiry.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, TestApp, assert_problem};

#[tokio::test]
async fn unknown_garbage_and_missing_tokens_get_401() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    let path = format!("/v1/databases/{db}/query");
    for token in [
        "psql_live_0000000000000000000000000000000000000000",
        "garbage",
        "psql_",
        &"psql_x".repeat(100),
    ] {
        let (s, b) = app.post(&path, token, json!({ "sql": "SELECT 1" })).await;
        assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    }
    let (s, b) = app
        .call(
            Method::POST,
            &path,
            None,
            Some(json!({ "sql": "SELECT 1" })),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "missing_token");
}

#[tokio::test]
async fn a_token_reaches_only_its_own_database() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (alice, alice_db) = app.provision(&ws, "alice").await;
    let (_, bob_db) = app.provision(&ws, "bob").await;
    let (s, b) = app
        .post(
            &format!("/v1/databases/{bob_db}/query"),
            &alice,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    // Another namespace's workspace token sees neither, with the same answer as a missing db.
    let other = app.namespace("other").await;
    for path in [
        format!("/v1/databases/{alice_db}/query"),
        "/v1/databases/acme/does-not-exist/query".to_owned(),
    ] {
        let (s, b) = app.post(&path, &other, json!({ "sql": "SELECT 1" })).await;
        assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    }
    // The same database slug under another namespace prefix is not reachable either.
    let (_, slug) = alice_db.split_once('/').unwrap();
    let (s, b) = app
        .post(
            &format!("/v1/databases/other/{slug}/query"),
            &alice,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
}

#[tokio::test]
async fn roles_limit_what_a_token_may_run() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    let mut tokens = std::collections::HashMap::new();
    for role in ["read", "write", "admin"] {
        let (s, b) = app
            .post(
                "/v1/tokens",
                &ws,
                json!({ "database": db, "role": role, "ttlSeconds": 600 }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["role"], role);
        assert_eq!(b["database"], db);
        tokens.insert(role, b["token"].as_str().unwrap().to_owned());
    }
    let path = format!("/v1/databases/{db}/query");
    let run = |t: &str, sql: &str| {
        let (path, t, body) = (path.clone(), t.to_owned(), json!({ "sql": sql }));
        let app = &app;
        async move { app.post(&path, &t, body).await }
    };
    let (s, _) = run(&tokens["read"], "SELECT * FROM entries").await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = run(&tokens["read"], "INSERT INTO entries (body) VALUES ('x')").await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "statement_not_allowed");
    let (s, b) = run(&tokens["read"], "CREATE TABLE t (a)").await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "ddl_not_allowed");
    let (s, _) = run(&tokens["write"], "INSERT INTO entries (body) VALUES ('x')").await;
    assert_eq!(s, StatusCode::OK);
    for ddl in [
        "CREATE TABLE t (a)",
        "DROP TABLE entries",
        "ALTER TABLE entries ADD COLUMN c",
        "CREATE INDEX i ON entries (created_at)",
        "CREATE TRIGGER tr AFTER DELETE ON entries BEGIN SELECT 1; END",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let (s, b) = run(&tokens["write"], ddl).await;
        assert_problem(s, &b, StatusCode::FORBIDDEN, "ddl_not_allowed");
    }
    let (s, b) = run(&tokens["admin"], "CREATE TABLE t (a)").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The earlier read query is not reused with the wrong role after the admin ran DDL.
    let (s, b) = run(&tokens["read"], "INSERT INTO entries (body) VALUES ('x')").await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "statement_not_allowed");
}

#[tokio::test]
async fn every_role_is_refused_escapes_from_its_file() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    let (_, admin) = app
        .post(
            "/v1/tokens",
            &ws,
            json!({ "database": db, "role": "admin", "ttlSeconds": 600 }),
        )
        .await;
    let path = format!("/v1/databases/{db}/query");
    let refused = [
        "ATTACH DATABASE '/tmp/persql-escape.db' AS x",
        "DETACH DATABASE main",
        "VACUUM INTO '/tmp/persql-escape.db'",
        "VACUUM",
        "SELECT load_extension('/tmp/x')",
        "CREATE TEMP TABLE t (a)",
        "CREATE TEMP VIEW v AS SELECT 1",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA writable_schema = ON",
        "PRAGMA synchronous = OFF",
        "PRAGMA foreign_keys = OFF",
        "BEGIN",
        "COMMIT",
        "SAVEPOINT s",
    ];
    for token in [admin["token"].as_str().unwrap(), ws.as_str(), ADMIN] {
        for sql in refused {
            let (s, b) = app.post(&path, token, json!({ "sql": sql })).await;
            assert_problem(s, &b, StatusCode::FORBIDDEN, "statement_not_allowed");
        }
    }
    assert!(!std::path::Path::new("/tmp/persql-escape.db").exists());
    // Read-only pragmas on the allow-list still work.
    let r = app
        .sql(
            admin["token"].as_str().unwrap(),
            &db,
            "PRAGMA table_info(entries)",
            json!([]),
        )
        .await;
    assert!(!r["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn expired_tokens_get_token_expired() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    let (_, b) = app
        .post(
            "/v1/tokens",
            &ws,
            json!({ "database": db, "role": "read", "ttlSeconds": 1 }),
        )
        .await;
    let token = b["token"].as_str().unwrap().to_owned();
    app.sql(&token, &db, "SELECT 1", json!([])).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &token,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "token_expired");
}

#[tokio::test]
async fn token_minting_validates_its_input() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (live, db) = app.provision(&ws, "u").await;
    for body in [
        json!({ "database": db, "role": "owner", "ttlSeconds": 60 }),
        json!({ "database": db, "role": "read", "ttlSeconds": 0 }),
        json!({ "database": db, "role": "read", "ttlSeconds": 999999999 }),
    ] {
        let (s, b) = app.post("/v1/tokens", &ws, body).await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (s, b) = app
        .post(
            "/v1/tokens",
            &ws,
            json!({ "database": "other/app-template", "role": "read", "ttlSeconds": 60 }),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    let (s, b) = app
        .post(
            "/v1/tokens",
            &live,
            json!({ "database": db, "role": "admin", "ttlSeconds": 60 }),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn operator_endpoints_need_the_operator_token() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("acme").await;
    let (s, b) = app
        .post("/v1/admin/namespaces", &ws, json!({ "slug": "evil" }))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .post("/v1/admin/namespaces", ADMIN, json!({ "slug": "acme" }))
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "namespace_exists");
    for slug in ["", "UPPER", "a/b", "..", "has space"] {
        let (s, b) = app
            .post("/v1/admin/namespaces", ADMIN, json!({ "slug": slug }))
            .await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_slug");
    }
}
