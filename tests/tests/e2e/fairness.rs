//! Fairness: one tenant's flood of queries or exports neither stalls other tenants nor
//! queues without end (429 `rate_limited` with `Retry-After` past the bounds).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

/// A read that keeps its database busy for a while (about 100 ms in a debug build, SQLite built with opt-level 1).
const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                    WHERE x < 1000000) SELECT count(*) AS n FROM c";

/// How one request of a burst ended.
struct Outcome {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

/// Sends `POST /query {sql}` as `token` on `db`.
async fn query(app: &TestApp, token: &str, db: &str, sql: &str) -> Outcome {
    let t = Instant::now();
    let res = app
        .client
        .post(format!("{}/v1/databases/{db}/query", app.base))
        .bearer_auth(token)
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .expect("request");
    outcome(res, t).await
}

async fn outcome(res: reqwest::Response, t: Instant) -> Outcome {
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = res.json().await.unwrap_or(Value::Null);
    Outcome {
        status,
        retry_after,
        body,
        took: t.elapsed(),
    }
}

/// Sends every (token, db) of `calls` a slow query at once; the outcomes, in order.
async fn burst(app: &TestApp, calls: &[(&str, &str)]) -> Vec<Outcome> {
    let requests = calls.iter().map(|(token, db)| query(app, token, db, SLOW));
    futures::future::join_all(requests).await
}

/// Asserts some of `outs` were refused at once with 429 `rate_limited`, `Retry-After` and a
/// detail naming `scope`, and the rest answered 200.
fn assert_some_refused(outs: &[Outcome], scope: &str) {
    let refused: Vec<_> = outs
        .iter()
        .filter(|o| o.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!refused.is_empty(), "nothing was refused");
    assert!(refused.len() < outs.len(), "everything was refused");
    let slowest_ok = outs
        .iter()
        .filter(|o| o.status == StatusCode::OK)
        .map(|o| o.took)
        .max()
        .expect("some answered");
    for o in outs {
        if o.status == StatusCode::OK {
            continue;
        }
        assert_problem(
            o.status,
            &o.body,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        );
        let detail = o.body["detail"].as_str().expect("detail");
        assert!(detail.contains(scope), "{detail}");
        let secs: u64 = o
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(secs >= 1, "Retry-After: {secs}");
        // Refused at once, not after queueing behind the admitted queries.
        assert!(o.took < slowest_ok, "a refusal took {:?}", o.took);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_on_one_database_does_not_stall_another_tenant() {
    // The bounds out of the way: this is about how queued queries wait, not about refusals.
    let app = TestApp::spawn_with(|c| {
        c.http.max_in_flight_per_database = 100_000;
        c.http.max_in_flight_per_namespace = 100_000;
        c.http.max_in_flight_per_token = 100_000;
    })
    .await;
    let flood_ws = app.with_template("flood").await;
    let (flood_token, flood_db) = app.provision(&flood_ws, "u").await;
    let calm_ws = app.with_template("calm").await;
    let (calm_token, calm_db) = app.provision(&calm_ws, "u").await;
    // More queries in flight on one database than the blocking pool has threads (512).
    let flood: Vec<_> = (0..620)
        .map(|_| {
            let (client, base) = (app.client.clone(), app.base.clone());
            let (token, db) = (flood_token.clone(), flood_db.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{base}/v1/databases/{db}/query"))
                    .bearer_auth(token)
                    .json(&json!({ "sql": SLOW }))
                    .send()
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let o = query(&app, &calm_token, &calm_db, "SELECT 1 AS one").await;
    eprintln!("another tenant's SELECT 1 under the flood: {:?}", o.took);
    assert_eq!(o.status, StatusCode::OK, "{}", o.body);
    assert!(
        o.took < Duration::from_secs(1),
        "another tenant's SELECT 1 took {:?} under the flood",
        o.took
    );
    for f in flood {
        f.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_per_database_bound_queries_get_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.http.max_in_flight_per_database = 2).await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let outs = burst(&app, &[(token.as_str(), db.as_str()); 8]).await;
    assert_some_refused(&outs, "on the database");
    // The places are given back: the database answers again.
    assert_eq!(
        query(&app, &token, &db, "SELECT 1").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_per_namespace_bound_queries_get_429() {
    let app = TestApp::spawn_with(|c| c.http.max_in_flight_per_namespace = 2).await;
    let ws = app.with_template("acme").await;
    let (t1, db1) = app.provision(&ws, "u1").await;
    let (t2, db2) = app.provision(&ws, "u2").await;
    let (a, b) = ((t1.as_str(), db1.as_str()), (t2.as_str(), db2.as_str()));
    let outs = burst(&app, &[a, b, a, b, a, b, a, b]).await;
    assert_some_refused(&outs, "for the namespace");
    // Another namespace is not held to this one's count.
    let other = app.with_template("other").await;
    let (t3, db3) = app.provision(&other, "u").await;
    assert_eq!(
        query(&app, &t3, &db3, "SELECT 1").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_per_token_bound_queries_get_429() {
    let app = TestApp::spawn_with(|c| c.http.max_in_flight_per_token = 2).await;
    let ws = app.with_template("acme").await;
    app.provision(&ws, "u1").await;
    app.provision(&ws, "u2").await;
    let dbs = app.list_databases(&ws).await;
    let dbs: Vec<String> = dbs.keys().map(|slug| format!("acme/{slug}")).collect();
    let calls: Vec<_> = dbs
        .iter()
        .cycle()
        .take(9)
        .map(|db| (ws.as_str(), db.as_str()))
        .collect();
    let outs = burst(&app, &calls).await;
    assert_some_refused(&outs, "under the token");
}

/// A namespace `slug` with a database `big` of about 32 MiB: larger than the socket buffers,
/// so an export whose body is not read stays in flight. Returns (workspace token, "ns/db").
async fn big_database(app: &TestApp, slug: &str) -> (String, String) {
    let ws = app.namespace(slug).await;
    let (s, b) = app
        .post("/v1/databases", &ws, json!({ "slug": "big" }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let db = format!("{slug}/big");
    app.sql(&ws, &db, "CREATE TABLE blobs (b BLOB)", json!([]))
        .await;
    app.sql(
        &ws,
        &db,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 32) \
         INSERT INTO blobs SELECT randomblob(1048576) FROM c",
        json!([]),
    )
    .await;
    (ws, db)
}

async fn export(app: &TestApp, token: &str, db: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/v1/databases/{db}/export", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("export")
}

async fn assert_export_refused(app: &TestApp, token: &str, db: &str, scope: &str) {
    let o = outcome(export(app, token, db).await, Instant::now()).await;
    assert_problem(
        o.status,
        &o.body,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    assert!(
        o.body["detail"].as_str().unwrap().contains(scope),
        "{}",
        o.body
    );
    assert_eq!(o.retry_after.as_deref(), Some("5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_past_the_per_process_bound_get_429_until_one_ends() {
    let app = TestApp::spawn_with(|c| c.http.max_exports = 1).await;
    let (ws, db) = big_database(&app, "acme").await;
    let (other_ws, other_db) = big_database(&app, "other").await;
    // Headers received, body not read: the export is still in flight.
    let first = export(&app, &ws, &db).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_export_refused(&app, &other_ws, &other_db, "on this server").await;
    drop(first);
    // The abandoned download gives its place back once the server notices.
    let mut last = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        let res = export(&app, &other_ws, &other_db).await;
        last = res.status();
        if last == StatusCode::OK {
            let len = res.content_length().expect("length");
            assert_eq!(res.bytes().await.unwrap().len() as u64, len);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_past_the_per_namespace_bound_get_429() {
    let app = TestApp::spawn_with(|c| c.http.max_exports_per_namespace = 1).await;
    let (ws, db) = big_database(&app, "acme").await;
    let (other_ws, other_db) = big_database(&app, "other").await;
    let first = export(&app, &ws, &db).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_export_refused(&app, &ws, &db, "for the namespace").await;
    let other = export(&app, &other_ws, &other_db).await;
    assert_eq!(other.status(), StatusCode::OK);
    drop((first, other));
}
