//! Workspace databases: create, list, delete.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn workspace_creates_lists_and_deletes_databases() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (s, b) = app
        .post("/v1/databases", &ws, json!({ "slug": "app-template" }))
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "database_exists");
    let (s, b) = app
        .post(
            "/v1/databases",
            &ws,
            json!({ "slug": "copy", "template": "app-template" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["template"], "app-template");
    let (token, db) = app.provision(&ws, "u").await;
    let (s, list) = app.get("/v1/databases?limit=2", &ws).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["databases"].as_array().unwrap().len(), 2);
    let (_, rest) = app
        .get(
            &format!(
                "/v1/databases?after={}",
                list["nextAfter"].as_str().unwrap()
            ),
            &ws,
        )
        .await;
    assert_eq!(rest["databases"].as_array().unwrap().len(), 1);
    let user_slug = db.split_once('/').unwrap().1;
    let id = list["databases"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["databases"].as_array().unwrap())
        .find(|d| d["slug"] == user_slug)
        .expect("the user's database is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !tenant_files_of(&app.dir, &id).is_empty(),
        "the database's file exists before deletion"
    );

    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/databases/{db}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/databases/{db}"),
            Some(&ws),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Its tokens stop working at once, and the file is gone.
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &token,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    let left = tenant_files_of(&app.dir, &id);
    assert!(
        left.is_empty(),
        "files of the deleted database remain: {left:?}"
    );
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/v1/databases/{db}"),
            Some(&ws),
            None,
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    // Provisioning the same subject again makes a new, empty database.
    let (token2, db2) = app.provision(&ws, "u").await;
    assert_eq!(db, db2);
    let r = app
        .sql(
            &token2,
            &db2,
            "SELECT count(*) AS n FROM entries",
            json!([]),
        )
        .await;
    assert_eq!(r["data"][0]["n"], 0);
}

#[tokio::test]
async fn database_slugs_are_validated() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("acme").await;
    for slug in ["", "u_0123", "../x", "A", "a b"] {
        let (s, b) = app
            .post("/v1/databases", &ws, json!({ "slug": slug }))
            .await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_slug");
    }
    let (s, b) = app
        .post(
            "/v1/databases",
            &ws,
            json!({ "slug": "x", "template": "missing" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "template_not_found");
    let (s, b) = app.get("/v1/databases?limit=0", &ws).await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    // A query string that does not parse is a problem document too, not axum's plain text.
    for query in ["limit=abc", "limit=1&limit=2"] {
        let (s, b) = app.get(&format!("/v1/databases?{query}"), &ws).await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

/// Files under `<data dir>/tenants` that belong to database `id` (`<id>.db`, `-wal`, `-shm`).
fn tenant_files_of(data_dir: &std::path::Path, id: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![data_dir.join("tenants")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{id}.db"))
            {
                found.push(path);
            }
        }
    }
    found
}
