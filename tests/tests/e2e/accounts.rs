//! Accounts: sign-up, sign-in (argon2, rate-limited), session cookies, CSRF, personal
//! tokens, and each account's own namespace and balance.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::{Browser, PASSWORD},
    support::{ADMIN, TestApp, assert_problem},
};

fn session_cookie(cookies: &[String]) -> &str {
    cookies
        .iter()
        .find(|c| c.starts_with("persql_session="))
        .expect("session cookie set")
}

#[tokio::test]
async fn sign_up_creates_an_account_with_its_own_namespace_balance_and_session() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let done = browser.sign_up("Ada@Example.com").await;
    assert_eq!(done.location.as_deref(), Some("/account"));
    let cookie = session_cookie(&done.set_cookies);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let home = browser.get("/account").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("ada@example.com"), "{}", home.body);
    let ns = browser.namespace().await;
    assert!(ns.starts_with("acct-"), "{ns}");

    // The personal token reaches the account's own namespace and balance, nothing else.
    let personal = browser.personal_token().await;
    let (s, b) = app
        .get(&format!("/v1/namespaces/{ns}/balance"), &personal)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "depleted");
    app.topup(&ns, "3.00", "gift").await;
    let (_, b) = app
        .get(&format!("/v1/namespaces/{ns}/balance"), &personal)
        .await;
    assert_eq!(b["balance"], "3.00");
    let other = Browser::new(&app);
    other.sign_up("bob@example.com").await;
    let other_ns = other.namespace().await;
    assert_ne!(other_ns, ns);
    let (s, _) = app
        .get(&format!("/v1/namespaces/{other_ns}/balance"), &personal)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A second sign-up with the same email: see hardening_accounts.
}

#[tokio::test]
async fn sign_in_checks_the_password_and_sign_out_ends_the_session() {
    let app = TestApp::spawn().await;
    Browser::new(&app).sign_up("cy@example.com").await;
    let browser = Browser::new(&app);
    let page = browser.get("/account").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/account/signin?return_to=%2Faccount")
    );
    let form = browser.get("/account/signin").await;
    let wrong = browser
        .submit(
            &form,
            "/account/signin",
            &[
                ("email", "cy@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong email or password"));
    let unknown = browser
        .submit(
            &form,
            "/account/signin",
            &[("email", "nobody@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let ok = browser
        .submit(
            &form,
            "/account/signin",
            &[("email", "CY@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    session_cookie(&ok.set_cookies);
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);

    let csrf = browser.get("/account").await.hidden("csrf").unwrap();
    let out = browser
        .post_form("/account/signout", &[("csrf".into(), csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/account").await.status, StatusCode::SEE_OTHER);
    let (s, b) = browser.json(reqwest::Method::GET, "/v1/account/apps").await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "not_signed_in");
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_email_and_address() {
    let app = TestApp::spawn_with(|c| c.http.signin_max_failures = 3).await;
    Browser::new(&app).sign_up("di@example.com").await;
    let browser = Browser::new(&app);
    let form = browser.get("/account/signin").await;
    for _ in 0..3 {
        let p = browser
            .submit(
                &form,
                "/account/signin",
                &[("email", "di@example.com"), ("password", "wrong password")],
            )
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    // Past the limit even the right password waits.
    let p = browser
        .submit(
            &form,
            "/account/signin",
            &[("email", "di@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(p.body.contains("Too many failed attempts"));
    assert!(
        !p.set_cookies
            .iter()
            .any(|c| c.starts_with("persql_session="))
    );
    // Other accounts from the same address are not affected.
    Browser::new(&app).sign_up("ed@example.com").await;
    let p = browser
        .submit(
            &form,
            "/account/signin",
            &[("email", "ed@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn cookies_are_secure_when_served_over_https() {
    let app =
        TestApp::spawn_with(|c| c.http.public_url = Some("https://persql.example".into())).await;
    let browser = Browser::new(&app);
    let form = browser.get("/account/signup").await;
    assert!(
        form.set_cookies.iter().all(|c| c.contains("; Secure")),
        "{:?}",
        form.set_cookies
    );
    // The Secure cookies are not sent back over plain HTTP: post them by hand.
    let pre = form.set_cookies[0]
        .strip_prefix("persql_csrf=")
        .and_then(|c| c.split(';').next())
        .expect("pre-session cookie")
        .to_owned();
    let csrf = form.hidden("csrf").unwrap();
    for action in ["/account/signup", "/account/signin"] {
        let res = browser
            .http
            .post(format!("{}{action}", app.base))
            .header("cookie", format!("persql_csrf={pre}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", "fa@example.com"),
                ("password", PASSWORD),
                ("return_to", "/account"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{action}");
        let cookie = res.headers().get("set-cookie").map(|c| c.to_str().unwrap());
        // Sign-up does not sign in (it answers alike for a registered email); sign-in does.
        assert_eq!(cookie.is_some(), action == "/account/signin", "{action}");
        let Some(cookie) = cookie else { continue };
        assert!(
            cookie.starts_with("persql_session=")
                && cookie.contains("; Secure")
                && cookie.contains("HttpOnly"),
            "{cookie}"
        );
    }
    let (s, doc) = app
        .call(
            reqwest::Method::GET,
            "/.well-known/openid-configuration",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["issuer"], "https://persql.example");
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    browser.get("/account/signup").await;
    let form = vec![
        ("email".to_owned(), "gu@example.com".to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    let p = browser.post_form("/account/signup", &form).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    browser.sign_up("gu@example.com").await;
    for action in ["/account/tokens", "/account/signout"] {
        let p = browser
            .post_form(action, &[("csrf".into(), "f".repeat(64))])
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_up_validates_its_input() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let form = browser.get("/account/signup").await;
    for (email, password) in [("not-an-email", PASSWORD), ("ha@example.com", "short")] {
        let p = browser
            .submit(
                &form,
                "/account/signup",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{email}");
        assert!(p.body.contains("class=\"error\""));
    }
    // Account namespaces are ordinary namespaces: the operator sees their balance.
    browser.sign_up("ha@example.com").await;
    let ns = browser.namespace().await;
    let (s, _) = app
        .get(&format!("/v1/namespaces/{ns}/balance"), ADMIN)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .post("/v1/admin/namespaces", ADMIN, json!({ "slug": ns }))
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "namespace_exists");
}

#[tokio::test]
async fn sign_up_is_rate_limited_per_address() {
    let app = TestApp::spawn_with(|c| c.http.signup_max_per_window = 2).await;
    Browser::new(&app).sign_up("f1@example.com").await;
    Browser::new(&app).sign_up("f2@example.com").await;
    let p = Browser::new(&app)
        .sign_up_from("/account/signup", "f3@example.com")
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(p.body.contains("Too many new accounts"));
    assert!(
        !p.set_cookies
            .iter()
            .any(|c| c.starts_with("persql_session="))
    );
    // No account was created: signing in as it fails.
    let browser = Browser::new(&app);
    let form = browser.get("/account/signin").await;
    let p = browser
        .submit(
            &form,
            "/account/signin",
            &[("email", "f3@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
}
