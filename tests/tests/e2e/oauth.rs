//! OAuth 2.1 authorization code flow with PKCE: registration, authorize, consent, token,
//! re-authorisation, and every bad input of the issue.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::{Browser, REDIRECT, authorize_path, connected, exchange, pkce, register_app},
    support::{TestApp, assert_problem},
};

#[tokio::test]
async fn workspaces_register_public_and_confidential_apps() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (public, secret) = register_app(&app, &ws, "public", "https://notes.example/cb").await;
    assert!(public.starts_with("psqlrp_"), "{public}");
    assert!(secret.is_none());
    let (conf, secret) = register_app(&app, &ws, "confidential", "https://notes.example/cb").await;
    assert!(conf.starts_with("psqlrp_") && conf != public);
    assert!(secret.expect("secret shown once").starts_with("psqlrs_"));
    // Only workspace tokens register apps.
    let ws2 = app.with_template("other").await;
    let (db_token, _) = app.provision(&ws2, "someone").await;
    let body = json!({ "name": "x", "type": "public", "redirectUris": ["https://a.example/cb"] });
    let (s, b) = app.post("/v1/apps", &db_token, body).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn redirect_uris_must_be_https_or_loopback() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    for ok in [
        "https://notes.example/cb",
        "http://localhost:3000/cb",
        "http://127.0.0.1:49152/cb",
        "http://[::1]:8080/cb",
    ] {
        register_app(&app, &ws, "public", ok).await;
    }
    for bad in [
        "myapp://callback",
        "http://notes.example/cb",
        "http://192.168.1.2/cb",
        "https://notes.example/cb#x",
        "not a url",
    ] {
        let body = json!({ "name": "Notes", "type": "public", "redirectUris": [bad] });
        let (s, b) = app.post("/v1/apps", &ws, body).await;
        assert_problem(s, &b, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    }
    for body in [
        json!({ "name": "Notes", "type": "public", "redirectUris": [] }),
        json!({ "name": "Notes", "type": "spa", "redirectUris": ["https://a.example/cb"] }),
        json!({ "name": "", "type": "public", "redirectUris": ["https://a.example/cb"] }),
    ] {
        let (s, b) = app.post("/v1/apps", &ws, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
}

#[tokio::test]
async fn the_flow_signs_up_asks_consent_and_gives_an_admin_token_for_one_database() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let authorize = authorize_path(&client_id, &challenge, &[]);

    // Not signed in: the sign-in page, which links to sign-up, both returning here.
    let signin = browser.get(&authorize).await;
    assert_eq!(signin.status, StatusCode::OK);
    assert!(signin.body.contains("Sign in to PerSQL"), "{}", signin.body);
    assert_eq!(
        signin.hidden("return_to").as_deref(),
        Some(authorize.as_str())
    );
    let signup_link = signin
        .body
        .find("/account/signup?return_to=")
        .expect("sign-up link");
    let end = signup_link + signin.body[signup_link..].find('"').expect("end");
    let signup_path = signin.body[signup_link..end].replace("&amp;", "&");
    let done = browser.sign_up_from(&signup_path, "ada@example.com").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(authorize.as_str()));

    // Consent: names the app (escaped) and says what it gets.
    let consent = browser.get(&authorize).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(
        consent.body.contains("Notes &lt;b&gt;App&lt;/b&gt;"),
        "{}",
        consent.body
    );
    assert!(!consent.body.contains("<b>App</b>"));
    assert!(
        consent
            .body
            .contains("a private database in your account and nothing else")
    );
    let approved = browser
        .submit(&consent, "/oauth/authorize", &[("decision", "approve")])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert!(approved.location.as_deref().unwrap().starts_with(REDIRECT));
    assert_eq!(approved.location_param("state").as_deref(), Some("st-123"));
    let code = approved.location_param("code").expect("code");

    let t = exchange(&app, &client_id, &code, &verifier).await;
    let access = t["access_token"].as_str().expect("access token");
    assert!(access.starts_with("psql_live_"), "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "openid database");
    assert!(
        t["id_token"]
            .as_str()
            .is_some_and(|j| j.split('.').count() == 3)
    );
    let db = t["database"].as_str().expect("database").to_owned();
    let ns = browser.namespace().await;
    assert!(db.starts_with(&format!("{ns}/")), "{db} in {ns}");

    // Admin on that one database: DDL and writes work.
    app.sql(
        access,
        &db,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        json!([]),
    )
    .await;
    app.sql(
        access,
        &db,
        "INSERT INTO notes (body) VALUES (?)",
        json!(["hello"]),
    )
    .await;
    // ...and nothing else: another database of the account, the developer's, the account.
    let personal = browser.personal_token().await;
    app.topup(&ns, "1.00", "owner").await;
    let (s, b) = app
        .post("/v1/databases", &personal, json!({ "slug": "mine" }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for other in [format!("{ns}/mine"), "dev/anything".to_owned()] {
        let (s, b) = app
            .post(
                &format!("/v1/databases/{other}/query"),
                access,
                json!({ "sql": "SELECT 1" }),
            )
            .await;
        assert_problem(s, &b, StatusCode::NOT_FOUND, "database_not_found");
    }
    let (s, _) = app
        .get(&format!("/v1/namespaces/{ns}/balance"), access)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/v1/account/apps", access).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("bo@example.com").await;
    let (_, challenge) = pkce();
    let consent = browser
        .get(&authorize_path(&client_id, &challenge, &[]))
        .await;
    let denied = browser
        .submit(&consent, "/oauth/authorize", &[("decision", "deny")])
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    assert_eq!(
        denied.location_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(denied.location_param("state").as_deref(), Some("st-123"));
    assert!(denied.location_param("code").is_none());
    let (s, b) = browser.json(reqwest::Method::GET, "/v1/account/apps").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["apps"], json!([]));
}

#[tokio::test]
async fn consent_needs_the_csrf_token() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("cy@example.com").await;
    let (_, challenge) = pkce();
    let consent = browser
        .get(&authorize_path(&client_id, &challenge, &[]))
        .await;
    let mut form: Vec<(String, String)> = consent
        .hidden_fields()
        .into_iter()
        .filter(|(k, _)| k != "csrf")
        .collect();
    form.push(("decision".into(), "approve".into()));
    let forged = browser.post_form("/oauth/authorize", &form).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.location.is_none());
    form.push(("csrf".into(), "0".repeat(64)));
    let forged = browser.post_form("/oauth/authorize", &form).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn authorising_again_reuses_the_database_and_rotates_the_token() {
    let app = TestApp::spawn().await;
    let (_, client_id, browser, first) = connected(&app, "dev", "di@example.com").await;
    let db = first["database"].as_str().unwrap().to_owned();
    let old = first["access_token"].as_str().unwrap().to_owned();
    app.sql(&old, &db, "CREATE TABLE t (v TEXT)", json!([]))
        .await;
    app.sql(&old, &db, "INSERT INTO t VALUES ('kept')", json!([]))
        .await;

    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    let second = exchange(&app, &client_id, &code, &verifier).await;
    assert_eq!(second["database"], first["database"]);
    let new = second["access_token"].as_str().unwrap();
    assert_ne!(new, old);
    let rows = app.sql(new, &db, "SELECT v FROM t", json!([])).await;
    assert_eq!(rows["data"], json!([{ "v": "kept" }]));
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            &old,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn concurrent_approvals_make_one_grant_and_one_database() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("jo@example.com").await;
    let (verifier, challenge) = pkce();
    let consent = browser
        .get(&authorize_path(&client_id, &challenge, &[]))
        .await;
    let (a, b) = tokio::join!(
        browser.submit(&consent, "/oauth/authorize", &[("decision", "approve")]),
        browser.submit(&consent, "/oauth/authorize", &[("decision", "approve")]),
    );
    let mut databases = Vec::new();
    for p in [a, b] {
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        let code = p.location_param("code").expect("code");
        let t = exchange(&app, &client_id, &code, &verifier).await;
        databases.push(t["database"].as_str().unwrap().to_owned());
    }
    assert_eq!(databases[0], databases[1]);
    let (_, list) = browser.json(reqwest::Method::GET, "/v1/account/apps").await;
    assert_eq!(list["apps"].as_array().unwrap().len(), 1, "{list}");
}
