//! Restarting on the same data dir keeps tokens, databases, data and the event log.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{ADMIN, TestApp};

#[tokio::test]
async fn restart_keeps_tokens_databases_data_and_events() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    app.sql(
        &token,
        &db,
        "INSERT INTO entries (body) VALUES ('durable')",
        json!([]),
    )
    .await;
    let events_before = count_events(&app).await;
    let app = app.restart().await;
    let r = app
        .sql(&token, &db, "SELECT body FROM entries", json!([]))
        .await;
    assert_eq!(r["data"], json!([{ "body": "durable" }]));
    let (s, _) = app.get("/v1/databases", &ws).await;
    assert_eq!(s, StatusCode::OK);
    let (_, again) = app
        .post(
            "/v1/users/provision",
            &ws,
            json!({ "subject": "u", "template": "app-template" }),
        )
        .await;
    assert_eq!(
        format!("acme/{}", again["database"]["slug"].as_str().unwrap()),
        db
    );
    let (s, _) = app
        .post("/v1/admin/namespaces", ADMIN, json!({ "slug": "second" }))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Nothing logged before the restart is lost, and the new namespace's event is added.
    assert!(
        count_events(&app).await > events_before,
        "the event log did not keep its events across the restart and grow"
    );
    assert!(
        events_before >= 5,
        "provision, query and namespace events are logged"
    );
}

async fn count_events(app: &TestApp) -> i64 {
    use sqlx::Row;
    let cp = app.control_plane().await;
    let n = sqlx::query("SELECT COUNT(*) FROM events")
        .fetch_one(cp.pool())
        .await
        .unwrap()
        .get(0);
    cp.close().await;
    n
}
