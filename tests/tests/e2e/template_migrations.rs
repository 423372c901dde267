//! Template migrations: recording, rollout to every database, counts, failures and retry,
//! the lazy catch-up, dry runs, and the refusals.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

pub const MIGRATIONS: &str = "/v1/databases/acme/app-template/migrations";

/// Posts migration `version` to acme's template.
pub async fn migrate(app: &TestApp, ws: &str, version: i64, sql: &str) -> (StatusCode, Value) {
    let body = json!({ "version": version, "name": format!("m{version}"), "sql": sql });
    app.post(MIGRATIONS, ws, body).await
}

/// Polls `GET …/migrations/{version}` until its counts are (applied, failed).
pub async fn wait_counts(
    app: &TestApp,
    ws: &str,
    version: i64,
    applied: i64,
    failed: i64,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        let (s, b) = app.get(&format!("{MIGRATIONS}/{version}"), ws).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let c = &b["migration"]["counts"];
        if c["applied"] == applied && c["failed"] == failed {
            return b;
        }
        last = b;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("migration {version} never reached applied={applied} failed={failed}: {last}");
}

/// The schema version and column names of `entries` in `db` as its describe reports them.
pub async fn entries_shape(app: &TestApp, token: &str, db: &str) -> (i64, Vec<String>) {
    let (s, b) = app.get(&format!("/v1/databases/{db}/schema"), token).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let table = b["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "entries")
        .expect("entries");
    let columns = table["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    (b["schemaVersion"].as_i64().expect("schemaVersion"), columns)
}

#[tokio::test]
async fn a_migration_applies_to_the_template_then_rolls_out_to_every_database() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let mut dbs = Vec::new();
    for user in ["u1", "u2", "u3"] {
        dbs.push(app.provision(&ws, user).await);
    }
    let sql = "ALTER TABLE entries ADD COLUMN done INTEGER NOT NULL DEFAULT 0; \
               CREATE INDEX entries_done ON entries (done)";
    let (s, b) = migrate(&app, &ws, 1, sql).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["version"], 1);
    assert_eq!(b["name"], "m1");
    assert_eq!(b["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(b["counts"]["total"], 3);
    // The template has it at once, with its version.
    let (version, cols) = entries_shape(&app, &ws, "acme/app-template").await;
    assert_eq!(version, 1);
    assert!(cols.contains(&"done".to_owned()), "{cols:?}");
    let detail = wait_counts(&app, &ws, 1, 3, 0).await;
    assert_eq!(detail["migration"]["counts"]["pending"], 0);
    assert_eq!(detail["failed"], json!([]));
    for (token, db) in &dbs {
        let (version, cols) = entries_shape(&app, token, db).await;
        assert_eq!(version, 1, "{db}");
        assert!(cols.contains(&"done".to_owned()), "{db}: {cols:?}");
    }
    // One migration.applied per database, from version 0 to 1.
    let cp = app.control_plane().await;
    let applied: Vec<(String,)> =
        sqlx::query_as("SELECT body FROM events WHERE type = 'migration.applied'")
            .fetch_all(cp.pool())
            .await
            .unwrap();
    assert_eq!(applied.len(), 3);
    for (body,) in &applied {
        let e: Value = serde_json::from_str(body).unwrap();
        assert_eq!(e["data"]["version"], 1);
        assert_eq!(e["data"]["fromVersion"], 0);
    }
    let added: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM events WHERE type = 'template.migration_added'")
            .fetch_one(cp.pool())
            .await
            .unwrap();
    assert_eq!(added.0, 1);
    // The list shows it with its counts.
    let (s, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["latestVersion"], 1);
    assert_eq!(list["migrations"][0]["counts"]["applied"], 3);
    assert_eq!(list["migrations"][0]["sql"], sql);
}

#[tokio::test]
async fn migrations_are_immutable_and_versions_only_increase() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let v1 = "CREATE TABLE tags (name TEXT)";
    assert_eq!(migrate(&app, &ws, 1, v1).await.0, StatusCode::CREATED);
    // Same version, same SQL: idempotent.
    let (s, b) = migrate(&app, &ws, 1, v1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 1);
    // Same version, other SQL: 409.
    let (s, b) = migrate(&app, &ws, 1, "CREATE TABLE other (x)").await;
    assert_problem(s, &b, StatusCode::CONFLICT, "migration_changed");
    assert_eq!(
        migrate(&app, &ws, 3, "CREATE TABLE t3 (x)").await.0,
        StatusCode::CREATED
    );
    // Backwards: 409, and nothing reached the template.
    let (s, b) = migrate(&app, &ws, 2, "CREATE TABLE t2 (x)").await;
    assert_problem(s, &b, StatusCode::CONFLICT, "version_not_increasing");
    let (_, schema) = app.get("/v1/databases/acme/app-template/schema", &ws).await;
    assert_eq!(schema["schemaVersion"], 3);
    let names: Vec<&str> = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"t3") && !names.contains(&"t2") && !names.contains(&"other"),
        "{names:?}"
    );
    assert_eq!(listed_versions(&app, &ws).await, vec![1, 3]);
    // Malformed requests.
    for body in [
        json!({ "version": 0, "name": "x", "sql": "SELECT 1" }),
        json!({ "version": 4, "name": "a b", "sql": "SELECT 1" }),
        json!({ "version": 4, "name": "x", "sql": " " }),
        json!({ "version": "4", "name": "x", "sql": "SELECT 1" }),
    ] {
        let (s, b) = app.post(MIGRATIONS, &ws, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
    let (s, b) = app.get(&format!("{MIGRATIONS}/2"), &ws).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "migration_not_found");
    let (s, b) = app.get(&format!("{MIGRATIONS}/abc"), &ws).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = app.get("/v1/databases/acme/no-such/migrations", &ws).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "template_not_found");
}

#[tokio::test]
async fn sql_failing_on_the_template_is_400_and_records_nothing() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (s, b) = migrate(
        &app,
        &ws,
        1,
        "CREATE TABLE ok (x); ALTER TABLE missing ADD COLUMN y",
    )
    .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "sql_error");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("no such table: missing"),
        "{b}"
    );
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["migrations"], json!([]));
    assert_eq!(list["latestVersion"], 0);
    // The template's transaction rolled back: no `ok` table, version 0.
    assert_template_untouched(&app, &ws, &["ok"]).await;
    // The version is still free.
    assert_eq!(
        migrate(&app, &ws, 1, "CREATE TABLE ok (x)").await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn only_workspace_tokens_manage_migrations() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, _) = app.provision(&ws, "u1").await;
    let (s, b) = migrate(&app, &token, 1, "CREATE TABLE x (y)").await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app.get(MIGRATIONS, &token).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .post(&format!("{MIGRATIONS}/1/retry"), &token, json!({}))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    // Another namespace's workspace does not see acme's template.
    let other = app.namespace("other").await;
    let (s, b) = migrate(&app, &other, 1, "CREATE TABLE x (y)").await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "template_not_found");
    let (s, b) = app
        .call(reqwest::Method::POST, MIGRATIONS, None, Some(json!({})))
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "missing_token");
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["migrations"], json!([]));
}

#[tokio::test]
async fn refused_statements_in_a_migration_are_403() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    for sql in [
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "CREATE TABLE fine (x); VACUUM",
        "PRAGMA user_version = 7",
        "CREATE TABLE y (x); COMMIT; CREATE TABLE z (x)",
        "SELECT load_extension('/tmp/evil')",
    ] {
        let (s, b) = migrate(&app, &ws, 1, sql).await;
        assert_problem(s, &b, StatusCode::FORBIDDEN, "statement_not_allowed");
    }
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["migrations"], json!([]));
    assert_template_untouched(&app, &ws, &["fine", "y"]).await;
}

#[tokio::test]
async fn new_databases_get_the_templates_current_schema_and_version() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let sql = "ALTER TABLE entries ADD COLUMN done INTEGER NOT NULL DEFAULT 0";
    assert_eq!(migrate(&app, &ws, 1, sql).await.0, StatusCode::CREATED);
    let (token, db) = app.provision(&ws, "late").await;
    let (version, cols) = entries_shape(&app, &token, &db).await;
    assert_eq!(version, 1);
    assert!(cols.contains(&"done".to_owned()));
    // Counted as applied without the rollout touching it.
    let detail = wait_counts(&app, &ws, 1, 1, 0).await;
    assert_eq!(detail["migration"]["counts"]["total"], 1);
}

#[tokio::test]
async fn concurrent_migrations_of_one_template_are_recorded_in_one_order() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let calls = (1..=8).rev().map(|v| {
        let ws = ws.clone();
        let app = &app;
        async move {
            (
                v,
                migrate(app, &ws, v, &format!("CREATE TABLE t{v} (x)")).await,
            )
        }
    });
    let mut recorded = Vec::new();
    for (v, (s, b)) in futures::future::join_all(calls).await {
        match s {
            StatusCode::CREATED => recorded.push(v),
            _ => assert_problem(s, &b, StatusCode::CONFLICT, "version_not_increasing"),
        }
    }
    recorded.sort();
    assert!(!recorded.is_empty());
    // The template has exactly the recorded migrations, at the latest version.
    let (_, schema) = app.get("/v1/databases/acme/app-template/schema", &ws).await;
    assert_eq!(schema["schemaVersion"], *recorded.last().unwrap());
    let mut tables: Vec<i64> = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().unwrap().strip_prefix('t')?.parse().ok())
        .collect();
    tables.sort();
    assert_eq!(tables, recorded);
    assert_eq!(listed_versions(&app, &ws).await, recorded);
}

/// The versions `GET …/migrations` lists, in its order.
/// The template `acme/app-template` is still at schema version 0, without any of `tables`.
async fn assert_template_untouched(app: &TestApp, ws: &str, tables: &[&str]) {
    let (_, schema) = app.get("/v1/databases/acme/app-template/schema", ws).await;
    assert_eq!(schema["schemaVersion"], 0);
    let names: Vec<&str> = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for table in tables {
        assert!(!names.contains(table), "table {table} exists: {names:?}");
    }
}

async fn listed_versions(app: &TestApp, ws: &str) -> Vec<i64> {
    let (_, list) = app.get(MIGRATIONS, ws).await;
    list["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect()
}
