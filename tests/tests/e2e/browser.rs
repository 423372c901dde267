//! A person's browser for the OAuth and account tests: a cookie store, no automatic
//! redirects (tests read `Location`), and helpers to fill in PerSQL's HTML forms.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::TestApp;

pub const PASSWORD: &str = "correct horse battery";

/// An answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    /// Value of hidden input `name` (HTML-unescaped).
    pub fn hidden(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = start + self.body[start..].find('"')?;
        Some(unescape(&self.body[start..end]))
    }

    /// Every hidden input, in order.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        let marker = "<input type=\"hidden\" name=\"";
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            let name_end = rest.find('"').expect("name end");
            let name = rest[..name_end].to_owned();
            let v = rest.find("value=\"").expect("value") + "value=\"".len();
            let v_end = v + rest[v..].find('"').expect("value end");
            out.push((name, unescape(&rest[v..v_end])));
            rest = &rest[v_end..];
        }
        out
    }

    /// The query parameter `name` of the redirect location.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let loc = self.location.as_deref()?;
        let url = reqwest::Url::parse(loc).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    async fn page(res: reqwest::Response) -> Page {
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("location").to_owned());
        let set_cookies = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("cookie").to_owned())
            .collect();
        let body = res.text().await.expect("body");
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(self.http.get(self.url(path)).send().await.expect("get")).await
    }

    pub async fn post_form(&self, path: &str, form: &[(String, String)]) -> Page {
        Self::page(
            self.http
                .post(self.url(path))
                .form(form)
                .send()
                .await
                .expect("post"),
        )
        .await
    }

    /// Submits the form of `page` (its hidden fields) to `action` with `extra` fields.
    pub async fn submit(&self, page: &Page, action: &str, extra: &[(&str, &str)]) -> Page {
        let mut form = page.hidden_fields();
        form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.post_form(action, &form).await
    }

    /// Signs up with `email` from the sign-up page (optionally returning to `return_to`),
    /// then signs in on the page sign-up sends to: the answer of the sign-in (or of the
    /// sign-up when it was refused).
    pub async fn sign_up_from(&self, signup_path: &str, email: &str) -> Page {
        let form = self.get(signup_path).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let done = self
            .submit(
                &form,
                "/account/signup",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        let Some(signin) = done
            .location
            .as_deref()
            .filter(|l| l.starts_with("/account/signin?"))
        else {
            return done;
        };
        let form = self.get(signin).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        self.submit(
            &form,
            "/account/signin",
            &[("email", email), ("password", PASSWORD)],
        )
        .await
    }

    pub async fn sign_up(&self, email: &str) -> Page {
        let p = self.sign_up_from("/account/signup", email).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        p
    }

    /// A JSON call with the browser's cookies.
    pub async fn json(&self, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .request(method, self.url(path))
            .send()
            .await
            .expect("request");
        let status = res.status();
        let v = res.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// The account's namespace slug (from the account page).
    pub async fn namespace(&self) -> String {
        let p = self.get("/account").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        let start = p.body.find("namespace <code>").expect("namespace") + "namespace <code>".len();
        let end = start + p.body[start..].find('<').expect("end");
        p.body[start..end].to_owned()
    }

    /// Mints a personal workspace token on the account page.
    pub async fn personal_token(&self) -> String {
        let home = self.get("/account").await;
        let csrf = home.hidden("csrf").expect("csrf");
        let p = self
            .post_form("/account/tokens", &[("csrf".into(), csrf)])
            .await;
        assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
        let start = p.body.find("psql_ws_").expect("token shown");
        let end = start + p.body[start..].find('<').expect("end");
        p.body[start..end].to_owned()
    }
}

/// A registered app: `(client id, secret)`.
pub async fn register_app(
    app: &TestApp,
    ws: &str,
    kind: &str,
    redirect: &str,
) -> (String, Option<String>) {
    let (s, b) = app
        .post(
            "/v1/apps",
            ws,
            json!({ "name": "Notes <b>App</b>", "type": kind, "redirectUris": [redirect] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (
        b["clientId"].as_str().expect("client id").to_owned(),
        b["clientSecret"].as_str().map(str::to_owned),
    )
}

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The authorize path for `client_id` with a PKCE challenge.
pub fn authorize_path(client_id: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid database"),
        ("state", "st-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("nonce", "n-456"),
    ];
    for (k, v) in extra {
        q.retain(|(qk, _)| qk != k);
        if !v.is_empty() {
            q.push((k, v));
        }
    }
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("/oauth/authorize?{query}")
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Browser {
    /// Goes through authorize (signed in already) and approves; returns the code.
    pub async fn approve(&self, client_id: &str, challenge: &str) -> String {
        let consent = self.get(&authorize_path(client_id, challenge, &[])).await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
        let done = self
            .submit(&consent, "/oauth/authorize", &[("decision", "approve")])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location_param("state").as_deref(), Some("st-123"));
        done.location_param("code").expect("code")
    }
}

/// `POST /oauth/token` with `form`; returns (status, JSON).
pub async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

/// Exchanges `code` for a public client.
pub async fn exchange(app: &TestApp, client_id: &str, code: &str, verifier: &str) -> Value {
    let (s, b) = token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// A developer workspace with a public app, and a signed-up person who connected it:
/// `(workspace token, client id, browser, token response)`.
pub async fn connected(app: &TestApp, dev: &str, email: &str) -> (String, String, Browser, Value) {
    let ws = app.namespace(dev).await;
    let (client_id, _) = register_app(app, &ws, "public", REDIRECT).await;
    let browser = Browser::new(app);
    browser.sign_up(email).await;
    let (verifier, challenge) = pkce();
    let code = browser.approve(&client_id, &challenge).await;
    let t = exchange(app, &client_id, &code, &verifier).await;
    (ws, client_id, browser, t)
}
