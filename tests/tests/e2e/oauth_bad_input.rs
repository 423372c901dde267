//! Bad input to the OAuth endpoints: reused and expired codes, client authentication,
//! wrong or missing PKCE verifiers, mismatched exchanges, and authorize requests that must
//! be shown to the person or reported to the client, never turned into open redirects.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::{Browser, PASSWORD, REDIRECT, authorize_path, exchange, pkce, register_app, token},
    support::{TestApp, assert_problem},
};

#[tokio::test]
async fn codes_are_single_use_and_a_reused_code_revokes_its_token() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("ed@example.com").await;
    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    let t = exchange(&app, &client_id, &code, &verifier).await;
    let db = t["database"].as_str().unwrap();
    let access = t["access_token"].as_str().unwrap();
    app.sql(access, db, "SELECT 1", json!([])).await;

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (s, b) = token(&app, &form).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{b}"
    );
    let (s, b) = app
        .post(
            &format!("/v1/databases/{db}/query"),
            access,
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn expired_codes_are_invalid_grant() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("fa@example.com").await;
    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    // Codes live 60 s: stored with that expiry; age this one instead of waiting.
    let cp = app.control_plane().await;
    let row = sqlx::query("SELECT expires_at - created_at FROM oauth_codes")
        .fetch_one(cp.pool())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&row, 0), 60_000);
    sqlx::query("UPDATE oauth_codes SET expires_at = created_at - 1")
        .execute(cp.pool())
        .await
        .unwrap();
    let (s, b) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{b}"
    );
}

#[tokio::test]
async fn confidential_clients_must_present_their_secret() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, secret) = register_app(&app, &ws, "confidential", REDIRECT).await;
    let secret = secret.unwrap();
    let browser = Browser::new(&app);
    browser.sign_up("gu@example.com").await;
    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    for secret in [None, Some("psqlrs_wrong")] {
        let mut form = base.to_vec();
        if let Some(s) = secret {
            form.push(("client_secret", s));
        }
        let (s, b) = token(&app, &form).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{b}"
        );
    }
    // The right secret, through HTTP Basic (the default of most client libraries).
    let res = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .basic_auth(&client_id, Some(&secret))
        .form(
            &base[..2]
                .iter()
                .chain(&base[2..3])
                .chain(&base[4..])
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let t: serde_json::Value = res.json().await.unwrap();
    assert!(
        t["access_token"]
            .as_str()
            .unwrap()
            .starts_with("psql_live_")
    );
}

/// Form fields overriding a good exchange, and the expected status and OAuth error.
type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);

#[tokio::test]
async fn wrong_or_missing_verifier_and_mismatched_exchanges_are_refused() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let (other_client, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("ha@example.com").await;
    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    let (wrong_verifier, _) = pkce();
    let cases: Vec<Case> = vec![
        (
            vec![("code_verifier", wrong_verifier.as_str())],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("code_verifier", "")],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (vec![], StatusCode::BAD_REQUEST, "invalid_request"),
        (
            vec![
                ("code_verifier", &verifier),
                ("client_id", other_client.as_str()),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("code_verifier", &verifier),
                ("client_id", "psqlrp_unknown"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("code_verifier", &verifier),
                ("redirect_uri", "http://127.0.0.1:9/other"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("code_verifier", &verifier), ("code", "0123")],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("code_verifier", &verifier),
                ("grant_type", "refresh_token"),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            vec![("code_verifier", &verifier), ("grant_type", "magic")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
    ];
    for (overrides, status, error) in cases {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
        ];
        for (k, v) in &overrides {
            form.retain(|(fk, _)| fk != k);
            form.push((k, v));
        }
        let (s, b) = token(&app, &form).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (status, Some(error)),
            "{overrides:?}: {b}"
        );
        assert!(b["error_description"].is_string());
    }
    // None of those used the code up: the right exchange still works.
    exchange(&app, &client_id, &code, &verifier).await;
    // A JSON body is not a token request.
    let res = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .json(&json!({ "grant_type": "authorization_code" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let b: serde_json::Value = res.json().await.unwrap();
    assert_eq!(b["error"], "invalid_request");
}

#[tokio::test]
async fn bad_authorize_requests_are_shown_or_reported_never_open_redirects() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, _) = register_app(&app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(&app);
    browser.sign_up("io@example.com").await;
    let (_, challenge) = pkce();

    // Unknown client and unregistered redirect URIs: an error page, no redirect.
    for extra in [
        vec![("client_id", "psqlrp_nobody")],
        vec![("redirect_uri", "https://evil.example/steal")],
        vec![("redirect_uri", "http://127.0.0.1:9/callback/")],
        vec![("redirect_uri", "")],
    ] {
        let p = browser
            .get(&authorize_path(&client_id, &challenge, &extra))
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(
            p.location.is_none(),
            "{extra:?} redirected to {:?}",
            p.location
        );
        assert!(p.body.contains("Cannot continue"));
    }
    // A repeated parameter is refused outright, never guessed at.
    let twice = format!(
        "{}&redirect_uri=https%3A%2F%2Fevil.example%2F",
        authorize_path(&client_id, &challenge, &[])
    );
    let p = browser.get(&twice).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.location.is_none());
    // After the client checks out, errors go back to it.
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "openid admin")], "invalid_scope"),
    ] {
        let p = browser
            .get(&authorize_path(&client_id, &challenge, &extra))
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{extra:?}: {}", p.body);
        assert!(p.location.as_deref().unwrap().starts_with(REDIRECT));
        assert_eq!(
            p.location_param("error").as_deref(),
            Some(error),
            "{extra:?}"
        );
        assert_eq!(p.location_param("state").as_deref(), Some("st-123"));
    }
    // The sign-in form's return_to only ever goes back into PerSQL.
    let other = Browser::new(&app);
    let form = other
        .get("/account/signin?return_to=https://evil.example/")
        .await;
    assert_eq!(form.hidden("return_to").as_deref(), Some("/account"));
    let mut fields = form.hidden_fields();
    fields.retain(|(k, _)| k != "return_to");
    fields.extend([
        ("return_to".to_owned(), "//evil.example/x".to_owned()),
        ("email".to_owned(), "io@example.com".to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ]);
    let signed = other.post_form("/account/signin", &fields).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.location.as_deref(), Some("/account"));
}
