//! `/v1/tokens`: a workspace lists its tokens without their secrets, revokes them by id
//! (refused at once), mints expiring workspace tokens; a new operator token retires the old.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN, TestApp, assert_problem};

async fn delete(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    app.call(Method::DELETE, path, Some(token), None).await
}

async fn mint(app: &TestApp, ws: &str, body: Value) -> Value {
    let (s, b) = app.post("/v1/tokens", ws, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

#[tokio::test]
async fn a_workspace_lists_its_tokens_newest_first_without_secrets_and_pages_them() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    let read = mint(
        &app,
        &ws,
        json!({ "database": db, "role": "read", "ttlSeconds": 600 }),
    )
    .await;
    let second_ws = mint(&app, &ws, json!({ "kind": "workspace" })).await;
    assert!(second_ws["token"].as_str().unwrap().starts_with("psql_ws_"));
    assert!(second_ws["expiresAt"].is_null(), "{second_ws}");

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/tokens?limit=2&after={a}"),
            None => "/v1/tokens?limit=2".to_owned(),
        };
        let (s, page) = app.get(&path, &ws).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let tokens = page["tokens"].as_array().unwrap().clone();
        assert!(tokens.len() <= 2);
        seen.extend(tokens);
        match page["nextAfter"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    // The namespace's own workspace token, the provision's write token, the read token and
    // the second workspace token: newest first.
    let ids: Vec<&str> = seen.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(ids[0], second_ws["id"].as_str().unwrap());
    assert_eq!(ids[1], read["id"].as_str().unwrap());
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let listed_read = &seen[1];
    assert_eq!(listed_read["kind"], "database");
    assert_eq!(listed_read["role"], "read");
    assert_eq!(listed_read["database"], db.as_str());
    assert!(listed_read["expiresAt"].is_string() && listed_read["createdAt"].is_string());
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains("psql_"), "a secret was listed: {text}");
    assert!(!text.contains("hash"), "{text}");

    // The workspace token in use shows when it was last used.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page) = app.get("/v1/tokens", &ws).await;
        let own = page["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "workspace" && t["id"] != second_ws["id"])
            .cloned()
            .unwrap();
        if own["lastUsedAt"].is_string() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lastUsedAt never set: {own}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_and_leaves_the_listing() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    let minted = mint(
        &app,
        &ws,
        json!({ "database": db, "role": "read", "ttlSeconds": 600 }),
    )
    .await;
    let token = minted["token"].as_str().unwrap();
    let id = minted["id"].as_str().unwrap();
    app.sql(token, &db, "SELECT 1", json!([])).await;

    let (s, b) = delete(&app, &format!("/v1/tokens/{id}"), &ws).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            token,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    let (_, page) = app.get("/v1/tokens", &ws).await;
    assert!(
        page["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != id),
        "{page}"
    );
    let (s, b) = delete(&app, &format!("/v1/tokens/{id}"), &ws).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "token_not_found");

    // A workspace token may revoke itself; it is refused right after.
    let second = mint(&app, &ws, json!({ "kind": "workspace" })).await;
    let (s2, id2) = (
        second["token"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let (s, _) = delete(&app, &format!("/v1/tokens/{id2}"), s2).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.get("/v1/tokens", s2).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn another_namespaces_tokens_are_neither_listed_nor_revocable() {
    let app = TestApp::spawn().await;
    let acme = app.with_template("acme").await;
    let other = app.namespace("other").await;
    let (live, _) = app.provision(&acme, "u").await;
    let (_, page) = app.get("/v1/tokens", &acme).await;
    let acme_ids: Vec<String> = page["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    let (_, page) = app.get("/v1/tokens", &other).await;
    let other_ids: Vec<&str> = page["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(other_ids.len(), 1, "only its own workspace token: {page}");
    assert!(acme_ids.iter().all(|id| !other_ids.contains(&id.as_str())));
    for id in &acme_ids {
        let (s, b) = delete(&app, &format!("/v1/tokens/{id}"), &other).await;
        assert_problem(s, &b, StatusCode::NOT_FOUND, "token_not_found");
    }
    // Still working: nothing was revoked by the other namespace.
    let (s, _) = app.get("/v1/tokens", &acme).await;
    assert_eq!(s, StatusCode::OK);
    // A database token cannot list or revoke tokens.
    let (s, b) = app.get("/v1/tokens", &live).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = delete(&app, &format!("/v1/tokens/{}", acme_ids[0]), &live).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = delete(&app, "/v1/tokens/nonexistent", &acme).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "token_not_found");
}

#[tokio::test]
async fn a_workspace_token_with_a_lifetime_expires() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("acme").await;
    let short = mint(&app, &ws, json!({ "kind": "workspace", "ttlSeconds": 1 })).await;
    assert!(short["expiresAt"].is_string(), "{short}");
    let token = short["token"].as_str().unwrap();
    let (s, _) = app.get("/v1/databases", token).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, b) = app.get("/v1/databases", token).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "token_expired");
}

#[tokio::test]
async fn token_requests_are_validated() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    for body in [
        json!({ "kind": "owner" }),
        json!({ "kind": "workspace", "database": "app-template" }),
        json!({ "kind": "workspace", "role": "read" }),
        json!({ "kind": "workspace", "ttlSeconds": 0 }),
        json!({ "database": "app-template", "role": "read" }),
        json!({ "database": "app-template", "ttlSeconds": 60 }),
        json!({ "role": "read", "ttlSeconds": 60 }),
    ] {
        let (s, b) = app.post("/v1/tokens", &ws, body.clone()).await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    }
    for query in ["limit=0", "limit=1001", "limit=x"] {
        let (s, b) = app.get(&format!("/v1/tokens?{query}"), &ws).await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn a_new_operator_token_retires_the_old_one() {
    let app = TestApp::spawn().await;
    let (s, _) = app
        .post("/v1/admin/namespaces", ADMIN, json!({ "slug": "before" }))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    const ROTATED: &str = "psql_admin_fedcba9876543210fedcba9876543210";
    let app = app
        .restart_with(|c| {
            c.http.admin_token = Some(persql_api::tokens::Secret::from_config(ROTATED.into()))
        })
        .await;
    let (s, b) = app
        .post(
            "/v1/admin/namespaces",
            ADMIN,
            json!({ "slug": "after-old" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    let (s, b) = app
        .post(
            "/v1/admin/namespaces",
            ROTATED,
            json!({ "slug": "after-new" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}
