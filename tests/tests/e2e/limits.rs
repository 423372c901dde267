//! Limits: body size, malformed input, path tricks, runaway queries.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let res = app
        .client
        .post(format!("{}/v1/databases/{db}/query", app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"sql\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let b: serde_json::Value = res.json().await.unwrap();
    assert_eq!(b["code"], "invalid_json");
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &token,
            json!({ "sql": "SELECT 1", "extra": 1 }),
        )
        .await;
    assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = TestApp::spawn_with(|c| c.http.max_body_bytes = 64 * 1024).await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let big = "x".repeat(100 * 1024);
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &token,
            json!({ "sql": "SELECT ?", "params": [big] }),
        )
        .await;
    assert_problem(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn oversized_results_get_413() {
    let app = TestApp::spawn_with(|c| c.http.max_result_rows = 100).await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let sql =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 101) SELECT x FROM c";
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &token,
            json!({ "sql": sql }),
        )
        .await;
    assert_problem(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "result_too_large");
}

#[tokio::test]
async fn path_tricks_find_nothing() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    for path in [
        "/v1/databases/acme/..%2Fcontrol/query",
        "/v1/databases/..%2F..%2Fetc/passwd/query",
        "/v1/databases/acme/app-template%00/query",
        "/v1/databases/acme/APP-TEMPLATE/query",
        "/v1/databases/acme/app-template.db/query",
        "/v1/databases/%2e%2e/app-template/query",
    ] {
        let (s, b) = app.post(path, &ws, json!({ "sql": "SELECT 1" })).await;
        // `%2e%2e` is normalised away by the client, leaving a path no route matches.
        let code = if path.contains("%2e") {
            "not_found"
        } else {
            "database_not_found"
        };
        assert_problem(s, &b, StatusCode::NOT_FOUND, code);
    }
}

// Multi-threaded, so the runaway request, the other tenant's requests and the server run in
// parallel as they would in production.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runaway_query_times_out_while_others_are_served_before_it_ends() {
    let app = TestApp::spawn_with(|c| c.storage.query_timeout_ms = 1500).await;
    let ws = app.with_template("acme").await;
    let (a, db_a) = app.provision(&ws, "a").await;
    let (b_token, db_b) = app.provision(&ws, "b").await;
    let runaway_path = format!("/v1/databases/{db_a}/query");
    let runaway = async {
        let answer = app
            .post(
                &runaway_path,
                &a,
                json!({ "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" }),
            )
            .await;
        (answer, std::time::Instant::now())
    };
    let others = async {
        // Served while the runaway query runs (it holds database a, not the server).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut served = 0;
        for _ in 0..5 {
            let (s, _) = app
                .post(
                    &format!("/v1/databases/{db_b}/query"),
                    &b_token,
                    json!({ "sql": "SELECT 1" }),
                )
                .await;
            served += (s == StatusCode::OK) as u32;
        }
        (served, std::time::Instant::now())
    };
    let (((s, body), runaway_done), (served, others_done)) = tokio::join!(runaway, others);
    assert_problem(s, &body, StatusCode::REQUEST_TIMEOUT, "query_timeout");
    assert_eq!(served, 5);
    // Each time is taken when its own requests are answered: a server that ran the other
    // tenant's queries only after the runaway one would fail here.
    assert!(
        others_done < runaway_done,
        "the other tenant's queries were answered only after the runaway one ({:?} later)",
        others_done - runaway_done
    );
    // The database that timed out still works.
    app.sql(&a, &db_a, "SELECT 1", json!([])).await;
}
