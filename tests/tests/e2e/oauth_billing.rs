//! Billing by caller for user-owned app databases: the app pays for its calls and for the
//! database's storage while connected; the owner pays for their own calls, and for storage
//! after disconnecting; an app without funds gets 402 while the owner's calls still work.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::{
    browser::connected,
    support::{TestApp, assert_problem},
};

async fn id_of(app: &TestApp, sql: &str, slug: &str) -> String {
    let cp = app.control_plane().await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(slug)
        .fetch_one(cp.pool())
        .await
        .unwrap()
        .get::<String, _>(0)
}

/// Waits for an event of type `ty` matching `pred` (events are group-committed or sampled
/// in the background).
async fn wait_event(app: &TestApp, ty: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let cp = app.control_plane().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = sqlx::query("SELECT body FROM events WHERE type = $1 ORDER BY seq")
            .bind(ty)
            .fetch_all(cp.pool())
            .await
            .unwrap();
        for r in rows {
            let v: Value = serde_json::from_str(&r.get::<String, _>(0)).unwrap();
            if pred(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "no matching {ty} event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn app_calls_bill_the_app_and_the_owners_calls_bill_the_owner() {
    let app = TestApp::spawn().await;
    let (_, _, browser, t) = connected(&app, "dev", "ada@example.com").await;
    let db = t["database"].as_str().unwrap();
    let ns = browser.namespace().await;
    app.topup(&ns, "10.00", "owner").await;
    let dev_id = id_of(&app, "SELECT id FROM namespaces WHERE slug = $1", "dev").await;
    let owner_id = id_of(&app, "SELECT id FROM namespaces WHERE slug = $1", &ns).await;

    app.sql(
        t["access_token"].as_str().unwrap(),
        db,
        "CREATE TABLE t (v)",
        json!([]),
    )
    .await;
    let personal = browser.personal_token().await;
    app.sql(&personal, db, "SELECT * FROM t", json!([])).await;

    let by_app = wait_event(&app, "query.executed", |e| {
        e["data"]["role"] == "admin" && e["data"]["billedNamespaceId"] == dev_id.as_str()
    })
    .await;
    assert_eq!(
        by_app["namespace"], "dev",
        "filed under the paying app: {by_app}"
    );
    assert_eq!(by_app["data"]["namespaceId"], owner_id.as_str());
    let by_owner = wait_event(&app, "query.executed", |e| {
        e["data"]["billedNamespaceId"] == owner_id.as_str()
    })
    .await;
    assert_eq!(by_owner["namespace"], ns.as_str());
}

#[tokio::test]
async fn storage_bills_the_app_while_connected_and_the_owner_after_disconnect() {
    let app = TestApp::spawn_with(|c| c.storage.storage_sample_secs = 1).await;
    let (_, client_id, browser, t) = connected(&app, "dev", "bo@example.com").await;
    let slug = t["database"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .to_owned();
    let db_id = id_of(&app, "SELECT id FROM databases WHERE slug = $1", &slug).await;
    let dev_id = id_of(&app, "SELECT id FROM namespaces WHERE slug = $1", "dev").await;
    let ns = browser.namespace().await;
    let owner_id = id_of(&app, "SELECT id FROM namespaces WHERE slug = $1", &ns).await;

    let sampled = |payer: String| {
        let db_id = db_id.clone();
        move |e: &Value| {
            e["data"]["databaseId"] == db_id.as_str()
                && e["data"]["billedNamespaceId"] == payer.as_str()
        }
    };
    let e = wait_event(&app, "storage.sampled", sampled(dev_id.clone())).await;
    assert_eq!(e["namespace"], "dev");
    let (s, _) = browser
        .json(Method::DELETE, &format!("/v1/account/apps/{client_id}"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let e = wait_event(&app, "storage.sampled", sampled(owner_id)).await;
    assert_eq!(e["namespace"], ns.as_str());
}

#[tokio::test]
async fn an_app_without_funds_gets_402_while_the_owners_calls_still_work() {
    // Each query costs 40: the app's 100.00 lasts three queries.
    let app = TestApp::spawn_with(|c| c.pricing.price_query = "40".parse().unwrap()).await;
    let (_, _, browser, t) = connected(&app, "dev", "cy@example.com").await;
    let db = t["database"].as_str().unwrap();
    let ns = browser.namespace().await;
    app.topup(&ns, "1000", "owner").await;
    let q = json!({ "sql": "SELECT 1" });
    let path = format!("/v1/databases/{db}/query");
    let mut refused = None;
    for _ in 0..10 {
        let (s, b) = app
            .post(&path, t["access_token"].as_str().unwrap(), q.clone())
            .await;
        if s != StatusCode::OK {
            refused = Some((s, b));
            break;
        }
    }
    let (s, b) = refused.expect("the app ran out of funds");
    assert_problem(s, &b, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");
    assert_eq!(b["namespace"], "dev");
    let personal = browser.personal_token().await;
    let (s, b) = app.post(&path, &personal, q).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
