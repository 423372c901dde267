//! Crashes: whatever the server acknowledged before a SIGKILL is there after a restart.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::support::{
    Backends, TestApp, assert_one_provisioned_event_per_ready_database, database_states, free_port,
    spawn_persql,
};

const CLIENTS: usize = 8;

/// What one client saw acknowledged before the crash.
#[derive(Default)]
struct Acked {
    /// Row ids whose INSERT answered 200.
    rows: Vec<i64>,
    /// (subject, database slug, token) of provisions that answered 200.
    provisions: Vec<(String, String, String)>,
}

/// Inserts rows with increasing ids into its own database (and every fifth step provisions
/// a new subject) until `stop` or the server goes away; records what was acknowledged.
async fn client_load(
    app: Arc<TestApp>,
    ws: String,
    client: usize,
    token: String,
    db: String,
    stop: Arc<AtomicBool>,
    acked_total: Arc<AtomicUsize>,
) -> Acked {
    let mut acked = Acked::default();
    for id in 1..=100_000_i64 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let insert = app
            .try_post(
                &format!("/v1/databases/{db}/query"),
                &token,
                json!({ "sql": "INSERT INTO entries (id, body) VALUES ($1, $2)",
                        "params": [id, format!("client {client} row {id}")] }),
            )
            .await;
        match insert {
            Ok((StatusCode::OK, _)) => {
                acked.rows.push(id);
                acked_total.fetch_add(1, Ordering::Relaxed);
            }
            Ok((s, b)) => panic!("insert {id} answered {s}: {b}"),
            Err(_) => break, // the server is gone
        }
        if id % 5 == 0 {
            let subject = format!("c{client}-{id}");
            let provision = app
                .try_post(
                    "/v1/users/provision",
                    &ws,
                    json!({ "subject": subject, "template": "app-template" }),
                )
                .await;
            match provision {
                Ok((StatusCode::OK, b)) => acked.provisions.push((
                    subject,
                    b["database"]["slug"].as_str().expect("slug").to_owned(),
                    b["token"].as_str().expect("token").to_owned(),
                )),
                Ok((s, b)) => panic!("provision {subject} answered {s}: {b}"),
                Err(_) => break,
            }
        }
    }
    acked
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_write_or_provision() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let logs = tmp.path();
    let backends = Backends::fresh().await;
    let port = free_port();
    let mut server =
        spawn_persql("serve", "serve", Some(port), &dir, &backends, logs, |_| {}).await;
    let app = Arc::new(TestApp::remote(port, &dir, &backends));
    let ws = app.with_template("acme").await;
    let mut own = Vec::new();
    for c in 0..CLIENTS {
        own.push(app.provision(&ws, &format!("client-{c}")).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acked_total = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = own
        .iter()
        .enumerate()
        .map(|(c, (token, db))| {
            tokio::spawn(client_load(
                app.clone(),
                ws.clone(),
                c,
                token.clone(),
                db.clone(),
                stop.clone(),
                acked_total.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // On a slow machine, wait for some load before pulling the plug (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_total.load(Ordering::Relaxed) < 4 * CLIENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.expect("client task"));
    }
    let rows: usize = acked.iter().map(|a| a.rows.len()).sum();
    let provisions: usize = acked.iter().map(|a| a.provisions.len()).sum();
    eprintln!("acknowledged before SIGKILL: {rows} rows, {provisions} provisions");
    assert!(rows >= 4 * CLIENTS, "the load ran before the crash");

    let port = free_port();
    let _server = spawn_persql("serve", "serve", Some(port), &dir, &backends, logs, |_| {}).await;
    let app = TestApp::remote(port, &dir, &backends);
    for (c, (a, (token, db))) in acked.iter().zip(&own).enumerate() {
        let r = app
            .sql(token, db, "SELECT id FROM entries ORDER BY id", json!([]))
            .await;
        let present: BTreeSet<i64> = r["data"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row["id"].as_i64().expect("id"))
            .collect();
        let lost: Vec<_> = a.rows.iter().filter(|id| !present.contains(id)).collect();
        assert!(
            lost.is_empty(),
            "client {c} lost acknowledged rows {lost:?}"
        );
    }

    let listed = app.list_databases(&ws).await;
    for a in &acked {
        for (subject, slug, token) in &a.provisions {
            assert_eq!(
                listed.get(slug).map(String::as_str),
                Some("ready"),
                "provision of {subject} was acknowledged: {listed:?}"
            );
            app.sql(
                token,
                &format!("acme/{slug}"),
                "SELECT count(*) FROM entries",
                json!([]),
            )
            .await;
        }
    }

    // Requests caught by the crash are finished after the restart, each exactly once.
    let mut conn = backends.control_plane(&dir).await;
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(90);
    loop {
        let states = database_states(&mut conn).await;
        let waiting: Vec<_> = states.iter().filter(|(_, s)| *s != "ready").collect();
        if waiting.is_empty() {
            eprintln!("all ready {:?} after restart", restarted.elapsed());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 90 s after restart: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_one_provisioned_event_per_ready_database(&mut conn).await;
}
