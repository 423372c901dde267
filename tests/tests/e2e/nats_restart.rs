//! The broker goes away under load: the outbox relay and the consumers resume once it is
//! back, and nothing is provisioned twice.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::support::{
    Backends, NatsServer, TestApp, assert_one_provisioned_event_per_ready_database,
    database_states, free_port, spawn_persql,
};

const LOADERS: usize = 4;

/// Provisions `l<loader>-<n>` subjects one after another until `stop`; returns each
/// subject with whether it answered 200.
async fn provision_load(
    app: Arc<TestApp>,
    ws: String,
    loader: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(String, bool)> {
    let mut seen = Vec::new();
    for n in 0..10_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let subject = format!("l{loader}-{n}");
        let res = app
            .try_post(
                "/v1/users/provision",
                &ws,
                json!({ "subject": subject, "template": "app-template" }),
            )
            .await;
        let ok = matches!(res, Ok((StatusCode::OK, _)));
        if !ok {
            // Don't spin while the broker is away.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen.push((subject, ok));
    }
    seen
}

#[tokio::test]
async fn consumers_resume_after_nats_restarts_under_load() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let logs = tmp.path();
    let mut nats = NatsServer::start().await;
    let mut backends = Backends::fresh().await;
    backends.nats_url = Some(nats.url());
    let port = free_port();
    let _server = spawn_persql("serve", "serve", Some(port), &dir, &backends, logs, |cmd| {
        cmd.env("PERSQL_PROVISION_TIMEOUT_MS", "10000");
    })
    .await;
    let app = Arc::new(TestApp::remote(port, &dir, &backends));
    let ws = app.with_template("acme").await;
    let t = Instant::now();
    app.provision(&ws, "before").await;
    eprintln!("one provision over NATS took {:?}", t.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..LOADERS)
        .map(|l| tokio::spawn(provision_load(app.clone(), ws.clone(), l, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut requested: BTreeMap<String, bool> = BTreeMap::new();
    for l in loaders {
        requested.extend(l.await.expect("loader"));
    }
    let failed = requested.values().filter(|ok| !**ok).count();
    eprintln!(
        "{} provisions requested around the outage, {failed} failed",
        requested.len()
    );

    // With the broker back, every requested subject provisions (retrying the failed ones).
    for (subject, ok) in &requested {
        let mut answered = *ok;
        for _ in 0..30 {
            if answered {
                break;
            }
            let res = app
                .try_post(
                    "/v1/users/provision",
                    &ws,
                    json!({ "subject": subject, "template": "app-template" }),
                )
                .await;
            answered = matches!(res, Ok((StatusCode::OK, _)));
            if !answered {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        assert!(answered, "{subject} never provisioned after NATS came back");
    }
    let (token, db) = app.provision(&ws, "after").await;
    app.sql(&token, &db, "SELECT count(*) FROM entries", json!([]))
        .await;

    let mut conn = backends.control_plane(&dir).await;
    let states = database_states(&mut conn).await;
    assert!(
        states.values().all(|s| s == "ready"),
        "every requested database is ready: {states:?}"
    );
    // Every control-plane event reaches the broker.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let unpublished: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE published_at IS NULL")
                .fetch_one(&mut conn)
                .await
                .expect("count unpublished");
        if unpublished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unpublished} events still unpublished 30 s after NATS came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_one_provisioned_event_per_ready_database(&mut conn).await;
}
