//! Template migrations on the user databases: failures and retries, lazy catch-up before a
//! request (once, under concurrent queries), resuming after a restart, and dry runs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};
use crate::template_migrations::{MIGRATIONS, entries_shape, migrate, wait_counts};

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

/// Two rows with the same body: a unique index on `entries (body)` then fails on this database.
async fn insert_duplicate_bodies(app: &TestApp, token: &str, db: &str) {
    for _ in 0..2 {
        app.sql(
            token,
            db,
            "INSERT INTO entries (body) VALUES ('dup')",
            json!([]),
        )
        .await;
    }
}

#[tokio::test]
async fn a_database_behind_catches_up_once_before_concurrent_queries() {
    let app =
        TestApp::spawn_with(|c| c.rollout.migration_rollout = persql_api::config::Switch::Off)
            .await;
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
    let app =
        TestApp::spawn_with(|c| c.rollout.migration_rollout = persql_api::config::Switch::Off)
            .await;
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
    insert_duplicate_bodies(&app, &bad_token, &bad).await;
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
    // A dry run refuses what recording would refuse.
    assert_eq!(
        migrate(&app, &ws, 2, "CREATE TABLE two (x)").await.0,
        StatusCode::CREATED
    );
    let (s, b) = app
        .post(&format!("{MIGRATIONS}?dryRun=true"), &ws, body.clone())
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "version_not_increasing");
    let changed = json!({ "version": 2, "name": "two", "sql": "CREATE TABLE other (x)" });
    let (s, b) = app
        .post(&format!("{MIGRATIONS}?dryRun=true"), &ws, changed)
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "migration_changed");
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

#[tokio::test]
async fn failed_databases_are_listed_keep_serving_and_can_be_retried() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (good_token, good) = app.provision(&ws, "good").await;
    let (bad_token, bad) = app.provision(&ws, "bad").await;
    app.provision(&ws, "also-good").await;
    insert_duplicate_bodies(&app, &bad_token, &bad).await;
    let (s, b) = migrate(
        &app,
        &ws,
        1,
        "CREATE UNIQUE INDEX entries_body_unique ON entries (body)",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let detail = wait_counts(&app, &ws, 1, 2, 1).await;
    assert_eq!(detail["migration"]["counts"]["total"], 3);
    assert_eq!(detail["migration"]["counts"]["pending"], 0);
    let failed = &detail["failed"];
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(
        format!("acme/{}", failed[0]["database"].as_str().unwrap()),
        bad
    );
    assert_eq!(failed[0]["currentVersion"], 0);
    assert_eq!(failed[0]["attempts"], 1);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("UNIQUE constraint failed"),
        "{failed}"
    );
    // The failed database stays at version 0 and keeps serving, reads and writes.
    let (version, _) = entries_shape(&app, &bad_token, &bad).await;
    assert_eq!(version, 0);
    app.sql(
        &bad_token,
        &bad,
        "INSERT INTO entries (body) VALUES ('more')",
        json!([]),
    )
    .await;
    let (version, _) = entries_shape(&app, &good_token, &good).await;
    assert_eq!(version, 1);
    let cp = app.control_plane().await;
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT type, body FROM events WHERE type IN ('migration.applied', 'migration.failed') ORDER BY seq",
    )
    .fetch_all(cp.pool())
    .await
    .unwrap();
    assert_eq!(
        events.iter().filter(|e| e.0 == "migration.applied").count(),
        2
    );
    let failures: Vec<&(String, String)> = events
        .iter()
        .filter(|e| e.0 == "migration.failed")
        .collect();
    assert_eq!(failures.len(), 1);
    let f: Value = serde_json::from_str(&failures[0].1).unwrap();
    assert!(
        f["data"]["error"].as_str().unwrap().contains("UNIQUE"),
        "{f}"
    );
    // Retry without fixing: fails again, attempts 2.
    let (s, b) = app
        .post(&format!("{MIGRATIONS}/1/retry"), &ws, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["queued"], 1);
    let mut attempts = Value::Null;
    for _ in 0..1200 {
        let (_, d) = app.get(&format!("{MIGRATIONS}/1"), &ws).await;
        attempts = d["failed"][0]["attempts"].clone();
        if attempts == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts, 2);
    // Fix the data, retry: applied everywhere.
    app.sql(&bad_token, &bad, "DELETE FROM entries WHERE body = 'dup' AND id > (SELECT MIN(id) FROM entries WHERE body = 'dup')", json!([])).await;
    let (s, b) = app
        .post(&format!("{MIGRATIONS}/1/retry"), &ws, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let detail = wait_counts(&app, &ws, 1, 3, 0).await;
    assert_eq!(detail["failed"], json!([]));
    let (version, _) = entries_shape(&app, &bad_token, &bad).await;
    assert_eq!(version, 1);
    let (s, b) = app
        .post(&format!("{MIGRATIONS}/9/retry"), &ws, json!({}))
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "migration_not_found");
}
