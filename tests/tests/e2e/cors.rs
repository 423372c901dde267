//! CORS: browsers call the database and provision endpoints from an app's origin with a
//! Bearer token; allowed origins are configurable; credentials are never allowed.

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::json;

use crate::support::TestApp;

async fn preflight(app: &TestApp, path: &str, origin: &str) -> (StatusCode, HeaderMap) {
    let res = app
        .client
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    (res.status(), res.headers().clone())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn any_origin_may_call_with_a_bearer_token_by_default_but_never_with_credentials() {
    let app = TestApp::spawn().await;
    let ws = app.with_template("acme").await;
    let (token, db) = app.provision(&ws, "u").await;
    let origin = "https://notes.example";
    for path in [
        format!("/v1/databases/{db}/query"),
        "/v1/users/provision".to_owned(),
    ] {
        let (s, h) = preflight(&app, &path, origin).await;
        assert!(s.is_success(), "{path}: {s}");
        assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
        let methods = header(&h, "access-control-allow-methods").unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = header(&h, "access-control-allow-headers").unwrap();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert_eq!(header(&h, "access-control-allow-credentials"), None);
    }
    let res = app
        .client
        .post(format!("{}/v1/databases/{db}/query", app.base))
        .header("origin", origin)
        .bearer_auth(&token)
        .json(&json!({ "sql": "SELECT 1 AS one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&h, "access-control-allow-credentials"), None);
    let exposed = header(&h, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    // Errors carry the headers too, so a browser can read the problem.
    let res = app
        .client
        .post(format!("{}/v1/databases/{db}/query", app.base))
        .header("origin", origin)
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(res.headers(), "access-control-allow-origin"),
        Some("*")
    );
}

#[tokio::test]
async fn configured_origins_are_the_only_ones_allowed() {
    let app = TestApp::spawn_with(|c| {
        c.http.cors_origins = vec![
            "https://notes.example".into(),
            "http://localhost:3000".into(),
        ];
    })
    .await;
    let ws = app.namespace("acme").await;
    let path = "/v1/users/provision";
    let (_, h) = preflight(&app, path, "https://notes.example").await;
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://notes.example")
    );
    assert!(header(&h, "vary").unwrap_or_default().contains("origin"));
    assert_eq!(header(&h, "access-control-allow-credentials"), None);
    let (_, h) = preflight(&app, path, "https://evil.example").await;
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("origin", "http://localhost:3000")
        .bearer_auth(&ws)
        .json(&json!({ "subject": "u" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(res.headers(), "access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("origin", "https://evil.example")
        .bearer_auth(&ws)
        .json(&json!({ "subject": "u" }))
        .send()
        .await
        .unwrap();
    assert_eq!(header(res.headers(), "access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_malformed_origin_setting_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let backends = crate::support::Backends::fresh().await;
    let mut config = TestApp::config(dir.path().to_path_buf(), &backends);
    config.http.cors_origins = vec!["notes.example/path".into()];
    let err = match persql_api::start(config, persql_api::Components::All).await {
        Ok(_) => panic!("started with a malformed CORS origin"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("invalid CORS origin"), "{err}");
}
