//! The served OpenAPI document equals the checked-in `openapi/openapi.json`.

use reqwest::Method;

use crate::support::TestApp;

#[tokio::test]
async fn served_openapi_matches_the_checked_in_file() {
    let app = TestApp::spawn().await;
    let (_, served) = app.call(Method::GET, "/openapi.json", None, None).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == pretty,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p persql-tests openapi` and review the diff"
    );
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn docs_page_and_health_are_served() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("/openapi.json") && !html.contains("cdn"));
    let (s, b) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((s.as_u16(), b["status"].as_str()), (200, Some("ok")));
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("persql_http_requests_total"), "{metrics}");
}
