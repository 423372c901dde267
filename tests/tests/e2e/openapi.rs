//! The served OpenAPI document equals the checked-in `openapi/openapi.json`.

use reqwest::{Method, StatusCode};
use similar::TextDiff;

use crate::support::{ADMIN, TestApp};

/// Set to rewrite `openapi/openapi.json` from the served document (then review the diff).
const UPDATE: &str = "UPDATE_OPENAPI";

#[tokio::test]
async fn served_openapi_matches_the_checked_in_file() {
    let app = TestApp::spawn().await;
    let (status, served) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{served}");
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != pretty {
        let diff = TextDiff::from_lines(&checked_in, &pretty);
        panic!(
            "openapi/openapi.json differs from the served document (- checked in, + served):\n{}\n\
             If the change is intended, run `{UPDATE}=1 cargo test -p persql-tests --test e2e \
             openapi` and review the file's diff.",
            diff.unified_diff()
                .context_radius(3)
                .header("openapi/openapi.json", "GET /openapi.json")
        );
    }
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
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("persql_http_requests_total"), "{metrics}");
}
