//! Interop: the whole flow driven by an OAuth/OpenID client library nobody here wrote
//! (`openidconnect` 4, on `oauth2` 5): discovery, authorization URL with PKCE and nonce,
//! code exchange (public and confidential with HTTP Basic), ID token verified against the
//! JWKS the discovery document names.

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::{Browser, REDIRECT, register_app},
    support::TestApp,
};

async fn run(kind: &str) {
    let app = TestApp::spawn().await;
    let ws = app.namespace("dev").await;
    let (client_id, secret) = register_app(&app, &ws, kind, REDIRECT).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("database".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The person: follows the library's URL, signs up, approves.
    let browser = Browser::new(&app);
    let signin = browser.get(url.as_str()).await;
    assert_eq!(signin.status, StatusCode::OK, "{}", signin.body);
    let return_to = signin.hidden("return_to").unwrap();
    let done = browser
        .sign_up_from(
            &format!(
                "/account/signup?return_to={}",
                crate::browser::urlencode(&return_to)
            ),
            "interop@example.com",
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let consent = browser.get(done.location.as_deref().unwrap()).await;
    let approved = browser
        .submit(&consent, "/oauth/authorize", &[("decision", "approve")])
        .await;
    assert_eq!(
        approved.location_param("state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = approved.location_param("code").unwrap();

    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint discovered")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = response.id_token().expect("openid scope gives an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies against the JWKS");
    assert_eq!(claims.issuer().as_str(), app.base);
    assert_eq!(claims.audiences()[0].as_str(), client_id);
    let access = response.access_token().secret().clone();
    assert!(access.starts_with("psql_live_"));
    let scopes: Vec<String> = response
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["openid", "database"]);

    // The token works on the database the account lists for the app.
    let (_, apps) = browser.json(reqwest::Method::GET, "/v1/account/apps").await;
    let db = apps["apps"][0]["database"].as_str().unwrap();
    app.sql(
        &access,
        db,
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)",
        json!([]),
    )
    .await;
    let rows = app
        .sql(&access, db, "SELECT count(*) AS n FROM kv", json!([]))
        .await;
    assert_eq!(rows["data"], json!([{ "n": 0 }]));
    // The subject is pairwise: 32 hex digits, not the account's id or email.
    let sub = claims.subject().as_str();
    assert!(
        sub.len() == 32 && sub.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sub}"
    );
}

#[tokio::test]
async fn openidconnect_drives_the_flow_for_a_public_client() {
    run("public").await;
}

#[tokio::test]
async fn openidconnect_drives_the_flow_for_a_confidential_client() {
    run("confidential").await;
}
