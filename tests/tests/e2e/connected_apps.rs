//! Connected apps: list, look inside (read-only, paged), export, disconnect (at once, on
//! every API process, with `grant.revoked`), reconnect to the same data.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::{
    browser::{Browser, connected, exchange, pkce},
    support::{TestApp, assert_problem},
};

async fn event_bodies(app: &TestApp, ty: &str) -> Vec<Value> {
    let cp = app.control_plane().await;
    sqlx::query("SELECT body FROM events WHERE type = $1 ORDER BY seq")
        .bind(ty)
        .fetch_all(cp.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.get::<String, _>(0)).unwrap())
        .collect()
}

#[tokio::test]
async fn connected_apps_are_listed_for_the_session_and_the_personal_token() {
    let app = TestApp::spawn().await;
    let (_, client_id, browser, t) = connected(&app, "dev", "ada@example.com").await;
    let db = t["database"].as_str().unwrap();
    app.sql(
        t["access_token"].as_str().unwrap(),
        db,
        "SELECT 1",
        json!([]),
    )
    .await;
    let (s, b) = browser.json(Method::GET, "/v1/account/apps").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let apps = b["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{b}");
    assert_eq!(apps[0]["clientId"], client_id.as_str());
    assert_eq!(apps[0]["name"], "Notes <b>App</b>");
    assert_eq!(apps[0]["database"], db);
    assert!(apps[0]["connectedAt"].as_str().unwrap().ends_with('Z'));
    let personal = browser.personal_token().await;
    let (s, b2) = app.get("/v1/account/apps", &personal).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b2["apps"][0]["clientId"], client_id.as_str());
    // last used: recorded in the background, at most once a minute.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, b) = browser.json(Method::GET, "/v1/account/apps").await;
        if b["apps"][0]["lastUsedAt"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "lastUsedAt never set: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let home = browser.get("/account").await;
    assert!(home.body.contains("Notes &lt;b&gt;App&lt;/b&gt;") && home.body.contains("Last used"));
    // A developer's workspace token is not an account.
    let (s, b) = app
        .get("/v1/account/apps", &app.namespace("plain").await)
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn the_account_can_look_inside_read_only_and_export() {
    let app = TestApp::spawn().await;
    let (_, client_id, browser, t) = connected(&app, "dev", "bo@example.com").await;
    let (db, token) = (
        t["database"].as_str().unwrap(),
        t["access_token"].as_str().unwrap(),
    );
    app.sql(
        token,
        db,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        json!([]),
    )
    .await;
    let values: Vec<String> = (1..=60).map(|i| format!("('note {i}')")).collect();
    app.sql(
        token,
        db,
        &format!("INSERT INTO notes (body) VALUES {}", values.join(",")),
        json!([]),
    )
    .await;
    app.sql(
        token,
        db,
        "INSERT INTO notes (body) VALUES ('<script>x</script>')",
        json!([]),
    )
    .await;

    let base = format!("/account/apps/{client_id}/browse");
    let tables = browser.get(&base).await;
    assert_eq!(tables.status, StatusCode::OK, "{}", tables.body);
    assert!(tables.body.contains(">notes</a>"), "{}", tables.body);
    let first = browser.get(&format!("{base}?table=notes&page=0")).await;
    assert!(first.body.contains("note 1<") && first.body.contains("note 50<"));
    assert!(!first.body.contains("note 51<"));
    assert!(first.body.contains("next →"));
    let second = browser.get(&format!("{base}?table=notes&page=1")).await;
    assert!(
        second.body.contains("note 51<") && second.body.contains("&lt;script&gt;x&lt;/script&gt;")
    );
    assert!(!second.body.contains("<script>"));
    assert!(!second.body.contains("next →"));
    let missing = browser.get(&format!("{base}?table=sqlite_master")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let foreign = Browser::new(&app);
    foreign.sign_up("eve@example.com").await;
    assert_eq!(foreign.get(&base).await.status, StatusCode::NOT_FOUND);

    // Export from the page (session) and from the API (personal token): the same SQLite file.
    let res = browser
        .http
        .get(format!("{}/account/apps/{client_id}/export", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/vnd.sqlite3");
    let file = res.bytes().await.unwrap();
    assert!(file.starts_with(b"SQLite format 3\0"));
    let personal = browser.personal_token().await;
    let res = app
        .client
        .get(format!("{}/v1/databases/{db}/export", app.base))
        .bearer_auth(&personal)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let exported = res.bytes().await.unwrap();
    let path = app.dir.join("export.sqlite3");
    std::fs::write(&path, &exported).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 61);
}

#[tokio::test]
async fn disconnect_revokes_at_once_everywhere_keeps_the_data_and_reconnect_restores_it() {
    let app = TestApp::spawn().await;
    let (_, client_id, browser, t) = connected(&app, "dev", "cy@example.com").await;
    let (db, token) = (
        t["database"].as_str().unwrap().to_owned(),
        t["access_token"].as_str().unwrap().to_owned(),
    );
    app.sql(&token, &db, "CREATE TABLE t (v TEXT)", json!([]))
        .await;
    app.sql(&token, &db, "INSERT INTO t VALUES ('mine')", json!([]))
        .await;
    // A second API process has the token in its cache.
    let peer = app.peer().await;
    peer.sql(&token, &db, "SELECT * FROM t", json!([])).await;

    let (s, _) = browser
        .json(Method::DELETE, &format!("/v1/account/apps/{client_id}"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let q = json!({ "sql": "SELECT * FROM t" });
    let (s, b) = app
        .post(&format!("/v1/databases/{db}/query"), &token, q.clone())
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, _) = peer
            .post(&format!("/v1/databases/{db}/query"), &token, q.clone())
            .await;
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other process still accepts the token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoked = event_bodies(&app, "grant.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["data"]["clientId"], client_id.as_str());
    assert_eq!(event_bodies(&app, "grant.created").await.len(), 1);
    let (_, b) = browser.json(Method::GET, "/v1/account/apps").await;
    assert_eq!(b["apps"], json!([]));
    let (s, b) = browser
        .json(Method::DELETE, &format!("/v1/account/apps/{client_id}"))
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "app_not_connected");

    // The data stays with the owner (whose own calls bill their own balance)...
    let personal = browser.personal_token().await;
    app.topup(&browser.namespace().await, "1.00", "owner").await;
    let rows = app.sql(&personal, &db, "SELECT v FROM t", json!([])).await;
    assert_eq!(rows["data"], json!([{ "v": "mine" }]));
    // ...and approving again restores the app's access to the same data.
    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    let again = exchange(&app, &client_id, &code, &verifier).await;
    assert_eq!(again["database"], db.as_str());
    let rows = app
        .sql(
            again["access_token"].as_str().unwrap(),
            &db,
            "SELECT v FROM t",
            json!([]),
        )
        .await;
    assert_eq!(rows["data"], json!([{ "v": "mine" }]));
}

#[tokio::test]
async fn the_disconnect_button_works_without_javascript() {
    let app = TestApp::spawn().await;
    let (_, client_id, browser, t) = connected(&app, "dev", "di@example.com").await;
    let home = browser.get("/account").await;
    assert!(!home.body.contains("<script"));
    let action = format!("/account/apps/{client_id}/disconnect");
    assert!(home.body.contains(&format!("action=\"{action}\"")));
    let csrf = home.hidden("csrf").unwrap();
    let p = browser.post_form(&action, &[("csrf".into(), csrf)]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let (s, _) = app
        .post(
            &format!("/v1/databases/{}/query", t["database"].as_str().unwrap()),
            t["access_token"].as_str().unwrap(),
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
