//! Hardening of accounts and operations (issue #21): sign-in limits that hold under
//! concurrency, bounded metric labels and a private `/metrics`, password strength, a
//! sign-up that does not tell who has an account, session-bound CSRF tokens and trusted
//! proxies.

use futures::future::join_all;
use reqwest::StatusCode;

use crate::{
    browser::{Browser, PASSWORD, Page},
    support::{ADMIN, TestApp},
};

/// Submits the sign-in form of `form` with `email` and a wrong password.
async fn wrong_sign_in(browser: &Browser, form: &Page, email: &str) -> StatusCode {
    browser
        .submit(
            form,
            "/account/signin",
            &[("email", email), ("password", "not the password at all")],
        )
        .await
        .status
}

fn tally(statuses: &[StatusCode]) -> (usize, usize) {
    let count = |s| statuses.iter().filter(|&&x| x == s).count();
    let (evaluated, limited) = (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    );
    assert_eq!(evaluated + limited, statuses.len(), "{statuses:?}");
    (evaluated, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_for_one_email_are_evaluated_at_most_the_limit() {
    let app = TestApp::spawn().await; // 10 failures per (email, IP)
    Browser::new(&app).sign_up("race@example.com").await;
    let browser = Browser::new(&app);
    let form = browser.get("/account/signin").await;
    let statuses =
        join_all((0..40).map(|_| wrong_sign_in(&browser, &form, "race@example.com"))).await;
    let (evaluated, limited) = tally(&statuses);
    assert_eq!((evaluated, limited), (10, 30), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_for_many_emails_from_one_address_stop_at_the_address_cap() {
    // The per-address cap is ten times the per-email limit: 50 here.
    let app = TestApp::spawn_with(|c| c.http.signin_max_failures = 5).await;
    let browser = Browser::new(&app);
    let form = browser.get("/account/signin").await;
    let emails: Vec<String> = (0..150).map(|i| format!("spray{i}@example.com")).collect();
    let statuses = join_all(emails.iter().map(|e| wrong_sign_in(&browser, &form, e))).await;
    let (evaluated, limited) = tally(&statuses);
    assert_eq!((evaluated, limited), (50, 100), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn made_up_http_methods_share_one_metric_label() {
    let app = TestApp::spawn().await;
    let methods: Vec<String> = (0..300)
        .map(|_| format!("X{}", &uuid::Uuid::new_v4().simple().to_string()[..12]).to_uppercase())
        .collect();
    join_all(methods.iter().map(|m| {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        app.client
            .request(method, format!("{}/healthz", app.base))
            .send()
    }))
    .await;
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
    let leaked = methods
        .iter()
        .filter(|m| metrics.contains(m.as_str()))
        .count();
    assert_eq!(leaked, 0, "made-up methods became label values");
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_need_the_operator_token() {
    let app = TestApp::spawn().await;
    let ws = app.namespace("metrics-ws").await;
    let get = |token: Option<&str>| {
        let mut req = app.client.get(format!("{}/metrics", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(get(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(Some(&ws)).await, StatusCode::FORBIDDEN);
    assert_eq!(get(Some(ADMIN)).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weak_passwords_are_refused_on_sign_up() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let form = browser.get("/account/signup").await;
    for weak in ["aaaaaaaa", "password123", "weak@example.com"] {
        let p = browser
            .submit(
                &form,
                "/account/signup",
                &[("email", "weak@example.com"), ("password", weak)],
            )
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{weak}: {}", p.body);
        assert!(p.body.contains("class=\"error\""), "{}", p.body);
        assert!(
            p.body.contains("at least 10 characters") || p.body.contains("too easy to guess"),
            "{}",
            p.body
        );
    }
    // Nothing was created: the email is still free.
    assert_eq!(
        Browser::new(&app).sign_up("weak@example.com").await.status,
        StatusCode::SEE_OTHER
    );
}

/// Signs up with `email` and `password` without signing in afterwards.
async fn bare_sign_up(app: &TestApp, email: &str, password: &str) -> Page {
    let browser = Browser::new(app);
    let form = browser.get("/account/signup?return_to=%2Faccount").await;
    browser
        .submit(
            &form,
            "/account/signup",
            &[("email", email), ("password", password)],
        )
        .await
}

fn cookie_names(p: &Page) -> Vec<&str> {
    p.set_cookies
        .iter()
        .filter_map(|c| c.split('=').next())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_up_of_a_registered_email_answers_like_a_new_one() {
    let app = TestApp::spawn().await;
    Browser::new(&app).sign_up("taken@example.com").await;
    let other = "lantern meadow copper drift";
    let known = bare_sign_up(&app, "taken@example.com", other).await;
    let new = bare_sign_up(&app, "fresh@example.com", other).await;
    assert_eq!(known.status, new.status);
    assert_eq!(known.status, StatusCode::SEE_OTHER, "{}", known.body);
    assert_eq!(known.location, new.location);
    assert_eq!(known.body, new.body);
    assert_eq!(cookie_names(&known), cookie_names(&new));
    let next = Browser::new(&app)
        .get(known.location.as_deref().unwrap())
        .await;
    assert!(next.body.contains("sign in with"), "{}", next.body);
    // The registered account kept its password; the new one has the one just chosen.
    for (email, password, expected) in [
        ("taken@example.com", other, StatusCode::UNAUTHORIZED),
        ("taken@example.com", PASSWORD, StatusCode::SEE_OTHER),
        ("fresh@example.com", other, StatusCode::SEE_OTHER),
    ] {
        let browser = Browser::new(&app);
        let form = browser.get("/account/signin").await;
        let p = browser
            .submit(
                &form,
                "/account/signin",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(p.status, expected, "{email} / {password}");
    }
}

fn session_of(p: &Page) -> String {
    let c = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("persql_session="))
        .expect("session cookie");
    c["persql_session=".len()..c.find(';').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_csrf_token_from_another_session_is_refused() {
    let app = TestApp::spawn().await;
    let attacker = Browser::new(&app);
    attacker.sign_up("mallory@example.com").await;
    let attacker_token = attacker.get("/account").await.hidden("csrf").unwrap();
    let victim = Browser::new(&app);
    let victim_session = session_of(&victim.sign_up("alice@example.com").await);
    let victim_token = victim.get("/account").await.hidden("csrf").unwrap();
    // The victim's browser, with a CSRF cookie tossed in from a sibling subdomain.
    let post = |token: String| {
        app.client
            .post(format!("{}/account/tokens", app.base))
            .header(
                "cookie",
                format!("persql_session={victim_session}; persql_csrf={attacker_token}"),
            )
            .form(&[("csrf", token)])
            .send()
    };
    assert_eq!(
        post(attacker_token.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(victim_token).await.unwrap().status(),
        StatusCode::CREATED
    );
    // Before sign-in, too: one pre-session's token does not fit another's cookie.
    let (a, b) = (Browser::new(&app), Browser::new(&app));
    let a_form = a.get("/account/signin").await;
    b.get("/account/signin").await;
    let p = b
        .submit(
            &a_form,
            "/account/signin",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

async fn forwarded_sign_in(browser: &Browser, form: &Page, client: &str) -> StatusCode {
    let mut fields = form.hidden_fields();
    fields.push(("email".into(), "proxied@example.com".into()));
    fields.push(("password".into(), "not the password at all".into()));
    browser
        .http
        .post(format!("{}/account/signin", browser.base))
        .header("x-forwarded-for", client)
        .form(&fields)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwarded_for_is_honoured_only_from_a_trusted_proxy() {
    let loopback = ["127.0.0.1", "::1"].map(|p| persql_api::client_ip::parse_proxy(p).unwrap());
    let behind_proxy = TestApp::spawn_with(|c| {
        c.http.signin_max_failures = 2;
        c.http.trusted_proxies = loopback.to_vec();
    })
    .await;
    let direct = TestApp::spawn_with(|c| c.http.signin_max_failures = 2).await;
    for (app, second_client) in [
        (&behind_proxy, StatusCode::UNAUTHORIZED),
        (&direct, StatusCode::TOO_MANY_REQUESTS),
    ] {
        let browser = Browser::new(app);
        let form = browser.get("/account/signin").await;
        for expected in [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert_eq!(
                forwarded_sign_in(&browser, &form, "203.0.113.1").await,
                expected
            );
        }
        // Another client behind the proxy has its own count; a direct caller cannot
        // escape its count by writing the header itself.
        assert_eq!(
            forwarded_sign_in(&browser, &form, "203.0.113.2").await,
            second_client
        );
    }
}
