//! Set-up over the HTTP API: funded namespaces, top-ups, the `app-template` template,
//! provisioned users, and waits for what metering does asynchronously.

use std::{collections::BTreeMap, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{ADMIN, TestApp};

impl TestApp {
    /// Creates namespace `slug` funded with 100.00; returns its workspace token.
    pub async fn namespace(&self, slug: &str) -> String {
        let token = self.unfunded_namespace(slug).await;
        self.topup(slug, "100.00", &format!("setup-{slug}")).await;
        token
    }

    /// Creates namespace `slug` without funds (its billed calls get 402).
    pub async fn unfunded_namespace(&self, slug: &str) -> String {
        let (s, b) = self
            .post("/v1/admin/namespaces", ADMIN, json!({ "slug": slug }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }

    /// Tops up `slug` by `amount`; returns the balance response.
    pub async fn topup(&self, slug: &str, amount: &str, reference: &str) -> Value {
        let path = format!("/v1/admin/namespaces/{slug}/topups");
        let body = json!({ "amount": amount, "reference": reference });
        let (s, b) = self.post(&path, ADMIN, body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// Polls `GET /v1/namespaces/{ns}/balance` as `token` until its balance equals `want`
    /// (metering is asynchronous); panics after 10 s with the last answer.
    pub async fn wait_balance(&self, ns: &str, token: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (s, b) = self
                .get(&format!("/v1/namespaces/{ns}/balance"), token)
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            if b["balance"] == want {
                return b;
            }
            last = b;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("balance of {ns} never became {want}: {last}");
    }

    /// Runs `sql` on `ns/db` and asserts success.
    pub async fn sql(&self, token: &str, db: &str, sql: &str, params: Value) -> Value {
        let (s, b) = self
            .post(
                &format!("/v1/databases/{db}/query"),
                token,
                json!({ "sql": sql, "params": params }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{sql}: {b}");
        b
    }

    /// A namespace with a template `app-template` (entries table, index, trigger, view, one
    /// row) — returns (workspace token, namespace slug).
    pub async fn with_template(&self, slug: &str) -> String {
        let ws = self.namespace(slug).await;
        let (s, b) = self
            .post("/v1/databases", &ws, json!({ "slug": "app-template" }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let db = format!("{slug}/app-template");
        for sql in [
            "CREATE TABLE entries (id INTEGER PRIMARY KEY, body TEXT NOT NULL, created_at TEXT)",
            "CREATE INDEX entries_body ON entries (body)",
            "CREATE TABLE audit (entry_id INTEGER, action TEXT)",
            "CREATE TRIGGER entries_audit AFTER INSERT ON entries BEGIN INSERT INTO audit VALUES (new.id, 'insert'); END",
            "CREATE VIEW recent AS SELECT * FROM entries ORDER BY id DESC LIMIT 10",
            "INSERT INTO entries (body) VALUES ('template row')",
        ] {
            self.sql(&ws, &db, sql, json!([])).await;
        }
        ws
    }

    /// Provisions `subject` from `app-template`; returns (token, "ns/db").
    pub async fn provision(&self, ws: &str, subject: &str) -> (String, String) {
        let (s, b) = self
            .post(
                "/v1/users/provision",
                ws,
                json!({ "subject": subject, "template": "app-template" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let db = format!(
            "{}/{}",
            b["namespaceSlug"].as_str().expect("ns"),
            b["database"]["slug"].as_str().expect("slug")
        );
        (b["token"].as_str().expect("token").to_owned(), db)
    }

    /// Every database of the workspace (`GET /v1/databases`, all pages): slug → state.
    pub async fn list_databases(&self, ws: &str) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        let mut after = String::new();
        for _ in 0..1000 {
            let (s, b) = self
                .get(&format!("/v1/databases?limit=1000&after={after}"), ws)
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            for d in b["databases"].as_array().expect("databases") {
                all.insert(
                    d["slug"].as_str().expect("slug").to_owned(),
                    d["state"].as_str().unwrap_or_default().to_owned(),
                );
            }
            match b["nextAfter"].as_str() {
                Some(next) => after = next.to_owned(),
                None => return all,
            }
        }
        panic!("more than 1000 pages of databases");
    }
}
