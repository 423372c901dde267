//! The real binary: `persql migrate` applying a folder of migration files over HTTP, and
//! migrations across separate `api` and `provisioner` processes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use tempfile::TempDir;

use crate::support::{Backends, PERSQL_BIN, TestApp, free_port, spawn_persql};
use crate::template_migrations::{MIGRATIONS, entries_shape, wait_counts};

/// Runs `persql migrate --template acme/app-template <dir>` against `app` with `token`.
async fn persql_migrate(app: &TestApp, token: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(PERSQL_BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PERSQL_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["migrate", "--template", "acme/app-template"])
        .arg(dir)
        .args(extra)
        .env("PERSQL_URL", &app.base)
        .env("PERSQL_TOKEN", token);
    tokio::task::spawn_blocking(move || cmd.output().expect("run persql migrate"))
        .await
        .expect("join")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn persql_migrate_applies_files_in_order_skips_recorded_ones_and_refuses_changed_ones() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u1").await;
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    // Written out of order: the version in the name decides.
    std::fs::write(
        dir.join("0002_index_done.sql"),
        "CREATE INDEX entries_done ON entries (done);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0001_add_done.sql"),
        "-- a flag per entry\nALTER TABLE entries ADD COLUMN done INTEGER NOT NULL DEFAULT 0;\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a migration").unwrap();
    let out = persql_migrate(&app, &ws, dir, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("applied 0001_add_done.sql")
            && stdout.contains("applied 0002_index_done.sql"),
        "{stdout}"
    );
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["latestVersion"], 2);
    assert_eq!(list["migrations"][0]["name"], "add_done");
    wait_counts(&app, &ws, 2, 1, 0).await;
    let (version, cols) = entries_shape(&app, &token, &db).await;
    assert_eq!(version, 2);
    assert!(cols.contains(&"done".to_owned()));

    // Run again with one more file: the first two are skipped, the new one applied.
    std::fs::write(
        dir.join("0003_tags.sql"),
        "CREATE TABLE tags (name TEXT PRIMARY KEY);",
    )
    .unwrap();
    let out = persql_migrate(&app, &ws, dir, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("skipped 0001_add_done.sql")
            && stdout.contains("skipped 0002_index_done.sql"),
        "{stdout}"
    );
    assert!(stdout.contains("applied 0003_tags.sql"), "{stdout}");

    // A recorded file edited afterwards: refused, and nothing after it is applied.
    std::fs::write(
        dir.join("0001_add_done.sql"),
        "ALTER TABLE entries ADD COLUMN other INTEGER;",
    )
    .unwrap();
    std::fs::write(dir.join("0004_more.sql"), "CREATE TABLE more (x);").unwrap();
    let out = persql_migrate(&app, &ws, dir, &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0001_add_done.sql changed"),
        "{}",
        text(&out)
    );
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["latestVersion"], 3);

    // A file failing on the template: SQLite's message, non-zero exit, nothing recorded.
    std::fs::write(
        dir.join("0001_add_done.sql"),
        "-- a flag per entry\nALTER TABLE entries ADD COLUMN done INTEGER NOT NULL DEFAULT 0;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0004_more.sql"),
        "ALTER TABLE missing ADD COLUMN x;",
    )
    .unwrap();
    let out = persql_migrate(&app, &ws, dir, &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such table: missing"),
        "{}",
        text(&out)
    );

    // A database token cannot migrate.
    std::fs::write(dir.join("0004_more.sql"), "CREATE TABLE more (x);").unwrap();
    let out = persql_migrate(&app, &token, dir, &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403 forbidden"),
        "{}",
        text(&out)
    );
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["latestVersion"], 3, "{}", json!(list));

    // Dry run: reports, records nothing.
    let out = persql_migrate(&app, &ws, dir, &["--dry-run"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("dry run 0004_more.sql: would fail on 0"),
        "{}",
        text(&out)
    );
    let (_, list) = app.get(MIGRATIONS, &ws).await;
    assert_eq!(list["latestVersion"], 3);
}

#[tokio::test]
async fn separate_api_processes_learn_of_migrations_and_the_provisioner_rolls_them_out() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let logs = tmp.path();
    let backends = Backends::fresh().await;
    let _metering = spawn_persql("metering", "metering", None, &dir, &backends, logs, |_| {}).await;
    // First a provisioner that only provisions: databases stay behind until queried.
    let mut provisioner = spawn_persql(
        "provisioner",
        "provisioner",
        None,
        &dir,
        &backends,
        logs,
        |cmd| {
            cmd.env("PERSQL_MIGRATION_ROLLOUT", "off");
        },
    )
    .await;
    let (port_a, port_b) = (free_port(), free_port());
    let _api_a = spawn_persql("api-a", "api", Some(port_a), &dir, &backends, logs, |_| {}).await;
    let _api_b = spawn_persql("api-b", "api", Some(port_b), &dir, &backends, logs, |_| {}).await;
    let a = TestApp::remote(port_a, &dir, &backends);
    let b = TestApp::remote(port_b, &dir, &backends);
    let ws = a.with_template("acme").await;
    let (t1, db1) = a.provision(&ws, "u1").await;
    let (t2, db2) = a.provision(&ws, "u2").await;
    // api-b has db1 cached at version 0 before the migration is recorded on api-a.
    b.sql(&t1, &db1, "SELECT count(*) FROM entries", json!([]))
        .await;
    let sql = "ALTER TABLE entries ADD COLUMN done INTEGER NOT NULL DEFAULT 0; \
               INSERT INTO audit (entry_id, action) VALUES (-1, 'migrated')";
    let (s, body) = crate::template_migrations::migrate(&a, &ws, 1, sql).await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{body}");
    // api-b hears of it through `template.migration_added` and catches db1 up.
    let path = format!("/v1/databases/{db1}/query");
    let mut seen = None;
    for _ in 0..600 {
        let (s, r) = b
            .post(&path, &t1, json!({ "sql": "SELECT done FROM entries" }))
            .await;
        if s == reqwest::StatusCode::OK {
            seen = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen.is_some(), "api-b never saw the new column");
    let marks = b
        .sql(
            &t1,
            &db1,
            "SELECT count(*) AS n FROM audit WHERE action = 'migrated'",
            json!([]),
        )
        .await;
    assert_eq!(marks["data"][0]["n"], 1);
    // A provisioner with the rollout on brings db2 (never queried) up to date.
    assert!(provisioner.terminate().await.success());
    let _provisioner = spawn_persql(
        "provisioner-2",
        "provisioner",
        None,
        &dir,
        &backends,
        logs,
        |_| {},
    )
    .await;
    wait_counts(&a, &ws, 1, 2, 0).await;
    let marks = a
        .sql(
            &t2,
            &db2,
            "SELECT count(*) AS n FROM audit WHERE action = 'migrated'",
            json!([]),
        )
        .await;
    assert_eq!(marks["data"][0]["n"], 1);
    assert_eq!(entries_shape(&b, &t2, &db2).await.0, 1);
}
