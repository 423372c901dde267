//! Provisioning per-user databases from a template.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn provision_is_idempotent_on_subject_with_fresh_tokens() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (s, first) = app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "user-1", "template": "app-template" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert!(first["token"].as_str().unwrap().starts_with("psql_live_"));
    assert_eq!(first["namespaceSlug"], "acme");
    assert!(first["expiresAt"].is_string());
    assert_eq!(first["database"]["template"], "app-template");
    let (_, second) = app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "user-1", "template": "app-template" }),
        )
        .await;
    assert_eq!(first["database"]["id"], second["database"]["id"]);
    assert_eq!(first["database"]["slug"], second["database"]["slug"]);
    assert_ne!(first["token"], second["token"]);
    // Both tokens work: provisioning again does not revoke earlier ones.
    let db = format!("acme/{}", first["database"]["slug"].as_str().unwrap());
    for t in [&first["token"], &second["token"]] {
        app.sql(t.as_str().unwrap(), &db, "SELECT 1", json!([]))
            .await;
    }
    let (_, other) = app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "user-2", "template": "app-template" }),
        )
        .await;
    assert_ne!(other["database"]["id"], first["database"]["id"]);
}

#[tokio::test]
async fn provisioned_database_has_template_schema_but_no_rows() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "alice").await;
    let rows = app
        .sql(&token, &db, "SELECT count(*) AS n FROM entries", json!([]))
        .await;
    assert_eq!(rows["data"][0]["n"], 0);
    let objects = app
        .sql(
            &token,
            &db,
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            json!([]),
        )
        .await;
    let names: Vec<String> = objects["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["type"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    for want in [
        "table:audit",
        "table:entries",
        "index:entries_body",
        "trigger:entries_audit",
        "view:recent",
    ] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    // The trigger came along and works.
    app.sql(
        &token,
        &db,
        "INSERT INTO entries (body) VALUES ('hi')",
        json!([]),
    )
    .await;
    let audit = app
        .sql(&token, &db, "SELECT action FROM audit", json!([]))
        .await;
    assert_eq!(audit["data"], json!([{ "action": "insert" }]));
    let view = app
        .sql(&token, &db, "SELECT body FROM recent", json!([]))
        .await;
    assert_eq!(view["data"], json!([{ "body": "hi" }]));
}

#[tokio::test]
async fn template_ddl_changes_reach_databases_provisioned_afterwards() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (t1, db1) = app.provision(&ws, "before").await;
    app.sql(
        &ws,
        "acme/app-template",
        "CREATE TABLE tags (name TEXT)",
        json!([]),
    )
    .await;
    let (t2, db2) = app.provision(&ws, "after").await;
    app.sql(&t2, &db2, "SELECT * FROM tags", json!([])).await;
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db1}/query"),
            &t1,
            json!({ "sql": "SELECT * FROM tags" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
}

#[tokio::test]
async fn concurrent_provisions_of_one_subject_create_one_database() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let calls = (0..16).map(|_| {
        app.post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "same", "template": "app-template" }),
        )
    });
    let answers = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, StatusCode::OK, "{b}");
            b["database"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, list) = app.get("/v1/databases", &ws).await;
    let per_user = list["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["slug"].as_str().unwrap().starts_with("u_"))
        .count();
    assert_eq!(per_user, 1);
}

#[tokio::test]
async fn provision_without_template_gives_an_empty_database() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("acme").await;
    let (s, b) = app
        .post("/v1/users/provision", &ws, json!({ "subject": "x" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let db = format!("acme/{}", b["database"]["slug"].as_str().unwrap());
    let r = app
        .sql(
            b["token"].as_str().unwrap(),
            &db,
            "SELECT count(*) AS n FROM sqlite_master",
            json!([]),
        )
        .await;
    assert_eq!(r["data"][0]["n"], 0);
}

#[tokio::test]
async fn provision_rejects_bad_subjects_and_unknown_templates() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    for subject in [json!(""), json!("x".repeat(257))] {
        let (s, b) = app
            .post("/v1/users/provision", &ws, json!({ "subject": subject }))
            .await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_subject");
    }
    let (s, b) = app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "x".repeat(256) }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .post("/v1/users/provision", &ws, json!({ "subject": 5 }))
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    for template in ["nope", "../app-template", "APP"] {
        let (s, b) = app
            .post(
                "/v1/users/provision",
                &ws,
                json!({ "subject": "new-user", "template": template }),
            )
            .await;
        assert_problem(s, &b, StatusCode::NOT_FOUND, "template_not_found");
    }
    // A template from another namespace is not visible.
    let other = app.namespace("other").await;
    let (s, b) = app
        .post(
            "/v1/users/provision",
            &other,
            json!({ "subject": "u", "template": "app-template" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "template_not_found");
}

#[tokio::test]
async fn provision_needs_a_workspace_token() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, _) = app.provision(&ws, "u").await;
    let (s, b) = app
        .post("/v1/users/provision", &token, json!({ "subject": "v" }))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .post(
            "/v1/users/provision",
            crate::support::ADMIN,
            json!({ "subject": "v" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn a_failed_provision_is_retried_on_the_next_call() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, db) = app.provision(&ws, "u").await;
    // As if the template had vanished while the provisioner worked on it.
    let cp = app.control_plane().await;
    let slug = db.split_once('/').unwrap().1;
    sqlx::query("UPDATE databases SET state = 'failed', error = 'template gone' WHERE slug = $1")
        .bind(slug)
        .execute(cp.pool())
        .await
        .unwrap();
    let (token, again) = app.provision(&ws, "u").await;
    assert_eq!(again, db);
    app.sql(
        &token,
        &again,
        "SELECT count(*) AS n FROM entries",
        json!([]),
    )
    .await;
}

#[tokio::test]
async fn provision_tokens_live_for_the_configured_ttl() {
    let app = TestApp::spawn_with(|c| c.http.token_ttl_secs = 1).await;
    let ws = app.with_template("acme").await;
    let (s, b) = app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "u", "template": "app-template" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let expires = time::OffsetDateTime::parse(
        b["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    // Expires one second after it was minted: neither later nor already.
    assert!(
        left <= time::Duration::seconds(1) && left > time::Duration::ZERO,
        "{left}"
    );
    let db = format!("acme/{}", b["database"]["slug"].as_str().unwrap());
    let token = b["token"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            token,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "token_expired");
}

#[test]
fn default_provision_token_ttl_is_one_hour() {
    let config = persql_api::Config::for_data_dir("unused".into());
    assert_eq!(config.http.token_ttl_secs, 3600);
}
