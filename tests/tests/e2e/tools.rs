//! Operator tools: `persql events tail`, `persql metering rebuild`, and metering's
//! exactly-once charging when an event is delivered twice.

use std::time::Duration;

use persql_events::{Backend, ControlPlane, Envelope, Handler, QueryExecuted};
use persql_metering::{MeteringHandler, Prices};
use serde_json::{Value, json};
use sqlx::Row;

use crate::support::{Backends, TestApp, persql_args};

/// Kills the child when dropped, so a failing test leaves nothing running.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to its end off the runtime and asserts it succeeded (stderr on failure).
async fn succeeded(mut cmd: std::process::Command) -> std::process::Output {
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn events_tail_prints_matching_live_events_as_json_lines() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("acme").await;
    let other = app.namespace("other").await;
    app.post("/v1/databases", &ws, json!({ "slug": "notes" }))
        .await;
    app.post("/v1/databases", &other, json!({ "slug": "notes" }))
        .await;
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = persql_args(
        &["events", "tail", "--namespace", "acme", "--type", "query.*"],
        &app.dir,
        &app.backends,
    );
    cmd.stdout(out.reopen().unwrap())
        .stderr(std::process::Stdio::null());
    let _tail = Kill(cmd.spawn().unwrap());
    // The tail starts from "now": query until its first line shows up (bounded).
    let mut lines = Vec::new();
    for _ in 0..150 {
        app.sql(&other, "other/notes", "SELECT 1", json!([])).await;
        app.sql(&ws, "acme/notes", "SELECT 1", json!([])).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = std::fs::read_to_string(out.path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= 2 {
            break;
        }
    }
    assert!(lines.len() >= 2, "tail printed {lines:?}");
    for line in &lines {
        let e: Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["type"], "persql.query.executed", "{line}");
        assert_eq!(e["namespace"], "acme", "{line}");
        assert_eq!(e["specversion"], "1.0");
    }
}

#[tokio::test]
async fn metering_rebuild_command_replays_the_log_into_the_same_balances() {
    let mut app = TestApp::spawn().await;
    let ws = app.namespace("acme").await;
    app.post("/v1/databases", &ws, json!({ "slug": "notes" }))
        .await;
    app.sql(&ws, "acme/notes", "CREATE TABLE t (a)", json!([]))
        .await;
    for i in 0..10 {
        app.sql(&ws, "acme/notes", "INSERT INTO t VALUES (?)", json!([i]))
            .await;
    }
    let mut balance = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, b) = app.get("/v1/namespaces/acme/balance", &ws).await;
        if b == balance {
            break;
        }
        balance = b;
    }
    app.stop().await;
    let cp = app.control_plane().await;
    let read = || async {
        sqlx::query("SELECT namespace_id, balance_nanos FROM balances ORDER BY namespace_id")
            .fetch_all(cp.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect::<Vec<_>>()
    };
    let before = read().await;
    assert!(
        before.iter().any(|(_, b)| *b > 0 && *b < 100_000_000_000),
        "{before:?}"
    );
    // Damage the projection; the rebuild must restore it from the log alone.
    sqlx::query("UPDATE balances SET balance_nanos = 0")
        .execute(cp.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM ledger")
        .execute(cp.pool())
        .await
        .unwrap();
    let output = succeeded(persql_args(
        &["metering", "rebuild"],
        &app.dir,
        &app.backends,
    ))
    .await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("replayed"));
    assert_eq!(read().await, before);
}

#[tokio::test]
async fn metering_charges_an_event_delivered_twice_once() {
    let backends = Backends::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(backends.database_url.as_deref(), dir.path())
        .await
        .unwrap();
    let handler = MeteringHandler::new(Prices::default(), cp.backend());
    let event = |n: u64| {
        Envelope::new(
            "/test",
            "acme",
            "databases/d1",
            &QueryExecuted {
                database_id: "d1".into(),
                namespace_id: "owner".into(),
                billed_namespace_id: "payer".into(),
                token_id: format!("t{n}"),
                role: "write".into(),
                statements: 1,
                rows_read: 0,
                rows_written: 1,
                bytes: 10,
                duration_us: 5,
                error: None,
            },
        )
    };
    let first: Vec<Envelope> = (0..5).map(event).collect();
    for batch in [first.clone(), [first.clone(), vec![event(5)]].concat()] {
        let mut tx = cp.begin().await.unwrap();
        handler.handle_batch(&mut tx, &batch).await.unwrap();
        cp.commit(tx).await.unwrap();
    }
    let ledger: i64 = sqlx::query("SELECT COUNT(*) FROM ledger")
        .fetch_one(cp.pool())
        .await
        .unwrap()
        .get(0);
    let balance: i64 =
        sqlx::query("SELECT balance_nanos FROM balances WHERE namespace_id = 'payer'")
            .fetch_one(cp.pool())
            .await
            .unwrap()
            .get(0);
    assert_eq!(ledger, 6);
    // Default prices: 0.000001 per query + 0.000001 per row written, six times.
    assert_eq!(balance, -6 * 2_000);
    let owner: Option<i64> =
        sqlx::query("SELECT balance_nanos FROM balances WHERE namespace_id = 'owner'")
            .fetch_optional(cp.pool())
            .await
            .unwrap()
            .map(|r| r.get(0));
    assert_eq!(
        owner, None,
        "the database's owner is not billed for the caller's queries"
    );
    assert_eq!(
        cp.backend() == Backend::Postgres,
        backends.database_url.is_some()
    );
}
