//! Template migrations without the rollout's help: lazy catch-up before a request (once,
//! under concurrent queries), resuming after a restart, and dry runs.

use reqwest::StatusCode;
use serde_json::json;

use crate::migrations::{MIGRATIONS, entries_shape, migrate, wait_counts};
use crate::support::TestApp;

/// Adds a column, and logs itself in `audit`: applying it twice would fail on the column and
/// would leave two rows.
const LOGGED: &str = "ALTER TABLE entries ADD COLUMN done INTEGER NOT NULL DEFAULT 0; \
                      INSERT INTO audit (entry_id, action) VALUES (-1, 'migrated')";

async fn audit_marks(app: &TestApp, token: &str, db: &str) -> i64 {
    let b = app
        .sql(
            token,
            db,
            "SELECT count(*) AS n FROM audit WHERE action = 'migrated'",
            json!([]),
        )
        .await;
    b["data"][0]["n"].as_i64().unwrap()
}

#[tokio::test]
async fn a_database_behind_catches_up_once_before_concurrent_queries() {
    let app = TestApp::spawn_with(|c| c.migration_rollout = "off".into()).await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u1").await;
    let (other_token, other) = app.provision(&ws, "u2").await;
    assert_eq!(migrate(&app, &ws, 1, LOGGED).await.0, StatusCode::CREATED);
    // Nothing rolled out: the control plane counts both as pending.
    let (_, d) = app.get(&format!("{MIGRATIONS}/1"), &ws).await;
    assert_eq!(d["migration"]["counts"]["pending"], 2, "{d}");
    // 16 concurrent queries, each using the new column: every one sees the new schema.
    let path = format!("/v1/databases/{db}/query");
    let calls = (0..16).map(|i| {
        let body = json!({ "sql": "INSERT INTO entries (body, done) VALUES (?, 1) RETURNING done", "params": [format!("e{i}")] });
        app.post(&path, &token, body)
    });
    for (s, b) in futures::future::join_all(calls).await {
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["data"][0]["done"], 1);
    }
    assert_eq!(audit_marks(&app, &token, &db).await, 1);
    assert_eq!(entries_shape(&app, &token, &db).await.0, 1);
    // The other database caught up on its own first request.
    let (version, cols) = entries_shape(&app, &other_token, &other).await;
    assert_eq!(version, 1);
    assert!(cols.contains(&"done".to_owned()));
    assert_eq!(audit_marks(&app, &other_token, &other).await, 1);
}

#[tokio::test]
async fn the_rollout_resumes_after_a_restart_and_never_applies_twice() {
    let app = TestApp::spawn_with(|c| c.migration_rollout = "off".into()).await;
    let ws = app.with_template("acme").await;
    let mut dbs = Vec::new();
    for i in 0..6 {
        dbs.push(app.provision(&ws, &format!("user-{i}")).await);
    }
    assert_eq!(migrate(&app, &ws, 1, LOGGED).await.0, StatusCode::CREATED);
    // Two databases catch up lazily before the restart; the rollout must not redo them.
    for (token, db) in &dbs[..2] {
        assert_eq!(audit_marks(&app, token, db).await, 1);
    }
    // Restarted with the rollout on (the default): it finds the databases still behind.
    let app = app.restart().await;
    wait_counts(&app, &ws, 1, 6, 0).await;
    for (token, db) in &dbs {
        assert_eq!(audit_marks(&app, token, db).await, 1, "{db}");
        assert_eq!(entries_shape(&app, token, db).await.0, 1);
    }
}

#[tokio::test]
async fn a_dry_run_reports_what_would_fail_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (_, fine) = app.provision(&ws, "fine").await;
    let (bad_token, bad) = app.provision(&ws, "bad").await;
    for _ in 0..2 {
        app.sql(
            &bad_token,
            &bad,
            "INSERT INTO entries (body) VALUES ('dup')",
            json!([]),
        )
        .await;
    }
    let body = json!({ "version": 1, "name": "unique_body", "sql": "CREATE UNIQUE INDEX u ON entries (body)" });
    let (s, b) = app
        .post(&format!("{MIGRATIONS}?dryRun=true"), &ws, body.clone())
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["dryRun"], true);
    assert_eq!(b["sampled"], 2);
    let would_fail = b["wouldFail"].as_array().unwrap();
    assert_eq!(would_fail.len(), 1, "{b}");
    assert_eq!(
        format!("acme/{}", would_fail[0]["database"].as_str().unwrap()),
        bad
    );
    assert_eq!(would_fail[0]["template"], false);
    assert!(
        would_fail[0]["error"]
            .as_str()
            .unwrap()
            .contains("UNIQUE constraint failed")
    );
    assert_ne!(
        format!("acme/{}", would_fail[0]["database"].as_str().unwrap()),
        fine
    );
    // A sample of one tries one database.
    let (_, one) = app
        .post(
            &format!("{MIGRATIONS}?dryRun=true&sample=1"),
            &ws,
            body.clone(),
        )
        .await;
    assert_eq!(one["sampled"], 1);
    // SQL failing on the template is reported, not recorded.
    let broken = json!({ "version": 1, "name": "broken", "sql": "DROP TABLE nope" });
    let (s, b) = app
        .post(&format!("{MIGRATIONS}?dryRun=true"), &ws, broken)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["wouldFail"].as_array().unwrap().iter().any(
            |f| f["template"] == true && f["error"].as_str().unwrap().contains("no such table")
        ),
        "{b}"
    );
    // Nothing changed anywhere.
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["migrations"], json!([]));
    let (_, schema) = app.get(&format!("/v1/databases/{bad}/schema"), &ws).await;
    assert_eq!(schema["schemaVersion"], 0);
    let index_names: Vec<&str> = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["indexes"].as_array().unwrap().iter())
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(index_names.contains(&"entries_body"), "{schema}");
    assert!(!index_names.contains(&"u"), "{schema}");
    for bad_sample in ["0", "10001", "x"] {
        let (s, b) = app
            .post(
                &format!("{MIGRATIONS}?dryRun=true&sample={bad_sample}"),
                &ws,
                body.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
}
