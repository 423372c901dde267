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

/// The migrations phase of `persql bench`, end to end at a small size: every window runs
/// and reports samples, every database is migrated, and the ratios are computed from them.
#[tokio::test]
async fn bench_migrations_phase_reports_every_window_at_a_small_size() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = succeeded(persql_args(
        &[
            "bench",
            "--phases",
            "migrations",
            "--migration-databases",
            "40",
            "--migration-probe-rate",
            "200",
            "--duration-secs",
            "1",
            "--json",
        ],
        dir.path(),
        &Backends::embedded(),
    ))
    .await;
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    let m = &report["migrations"];
    assert_eq!(m["databases"], 40, "{m}");
    assert_eq!(m["referenceDatabases"], 40, "{m}");
    assert!(m["rolloutSecs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["barePerSec"].as_f64().unwrap() > 0.0, "{m}");
    for window in ["idle", "idleAfter", "during", "duringBare"] {
        let w = &m[window];
        assert!(w["latency"]["count"].as_u64().unwrap() > 0, "{window}: {m}");
        assert_eq!(w["errors"], 0, "{window}: {m}");
    }
    let ms = |window: &str, key: &str| m[window]["latency"][key].as_f64().unwrap();
    let (before, after) = (ms("idle", "p99Ms"), ms("idleAfter", "p99Ms"));
    let mean = m["idleP99MeanMs"].as_f64().unwrap();
    assert!((mean - (before + after) / 2.0).abs() < 1e-9, "{m}");
    // The pooled p99 lies between the two windows' own.
    let idle = m["idleP99Ms"].as_f64().unwrap();
    assert!(
        before.min(after) <= idle && idle <= before.max(after),
        "{m}"
    );
    // The idle window after the rollout lasts at least as long as the rollout did.
    let rollout_answers = ms("during", "count");
    assert!(ms("idleAfter", "count") >= rollout_answers * 0.9, "{m}");
    for window in ["idle", "idleAfter", "during", "duringBare"] {
        assert!(ms(window, "p99Ms") <= ms(window, "p999Ms"), "{m}");
        assert!(ms(window, "p999Ms") <= ms(window, "maxMs"), "{m}");
        assert!(
            m[window]["slow"].as_f64().unwrap() <= ms(window, "count"),
            "{m}"
        );
        let steal = m[window]["stealPct"].as_f64();
        assert!(steal.is_some_and(|p| (0.0..=100.0).contains(&p)), "{m}");
        // The worst seconds hold only slow answers, no more of them than the window has,
        // none slower than its slowest.
        let worst = m[window]["worstSeconds"].as_array().expect("worstSeconds");
        assert!(worst.len() <= 10, "{m}");
        let in_worst: u64 = worst.iter().map(|s| s["slow"].as_u64().unwrap()).sum();
        assert!(
            in_worst as f64 <= m[window]["slow"].as_f64().unwrap(),
            "{m}"
        );
        assert_eq!(worst.is_empty(), m[window]["slow"] == 0, "{m}");
        for s in worst {
            assert!(s["slow"].as_u64().unwrap() >= 1, "{m}");
            assert!(s["maxMs"].as_f64().unwrap() > 10.0, "{m}");
            assert!(s["maxMs"].as_f64().unwrap() <= ms(window, "maxMs"), "{m}");
            assert!(s["at"].as_u64().unwrap() > 1_700_000_000, "{m}");
            let steal = s["stealPct"].as_f64();
            assert!(steal.is_none_or(|p| (0.0..=100.0).contains(&p)), "{m}");
        }
        // Steal is sampled through every window on Linux (the idle ones last a second or
        // more; the others may be shorter than one tick of `/proc/stat`).
        let stolen = m[window]["slowWhileStolen"].as_u64();
        assert!(
            stolen.is_none_or(|n| n as f64 <= m[window]["slow"].as_f64().unwrap()),
            "{m}"
        );
        if window.starts_with("idle") {
            assert!(stolen.is_some(), "{window}: {m}");
        }
    }
    let during = ms("during", "p99Ms");
    assert!(
        (m["p99Ratio"].as_f64().unwrap() - during / idle).abs() < 1e-9,
        "{m}"
    );
    assert!(
        (m["p99RatioToMean"].as_f64().unwrap() - during / mean).abs() < 1e-9,
        "{m}"
    );
    let target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap_or("").contains("probe p99"))
        .unwrap_or_else(|| panic!("a probe p99 target: {report}"));
    assert_eq!(target["value"], m["p99Ratio"], "{target}");
}
