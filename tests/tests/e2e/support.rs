//! `TestApp`: the real router on a free port with a temporary data dir; Postgres and NATS
//! when `PERSQL_TEST_DATABASE_URL` / `PERSQL_TEST_NATS_URL` are set (each test gets its own
//! Postgres database and NATS subject prefix).

use std::{path::PathBuf, sync::Once};

use persql_api::{Components, Config, Running};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{net::TcpListener, task::JoinHandle};

pub const ADMIN: &str = "psql_admin_0123456789abcdef0123456789abcdef";

/// Where the control plane and bus of a test live; kept across restarts.
#[derive(Clone, Debug)]
pub struct Backends {
    pub database_url: Option<String>,
    pub nats_url: Option<String>,
    pub nats_prefix: String,
}

impl Backends {
    /// Fresh, isolated backends as the environment selects.
    pub async fn fresh() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database_url = match std::env::var("PERSQL_TEST_DATABASE_URL") {
            Ok(admin_url) => Some(create_pg_database(&admin_url, &format!("persql_t_{tag}")).await),
            Err(_) => None,
        };
        Self {
            database_url,
            nats_url: std::env::var("PERSQL_TEST_NATS_URL").ok(),
            nats_prefix: format!("t{tag}"),
        }
    }
}

async fn create_pg_database(admin_url: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("PERSQL_TEST_DATABASE_URL is set but Postgres is unreachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            persql_api::telemetry::init_tracing();
        }
    });
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    pub backends: Backends,
    _tmp: Option<TempDir>,
    running: Option<Running>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let tmp = TempDir::new().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let backends = Backends::fresh().await;
        let mut app = Self::start(dir, backends, tweak).await;
        app._tmp = Some(tmp);
        app
    }

    /// A config as the binary would build it, pointed at `dir` and `backends`.
    pub fn config(dir: PathBuf, backends: &Backends) -> Config {
        let mut config = Config::for_data_dir(dir);
        config.admin_token = Some(ADMIN.into());
        config.database_url = backends.database_url.clone();
        config.nats_url = backends.nats_url.clone();
        config.nats_prefix = backends.nats_prefix.clone();
        config
    }

    async fn start(dir: PathBuf, backends: Backends, tweak: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let mut config = Self::config(dir.clone(), &backends);
        tweak(&mut config);
        let running = persql_api::start(config, Components::All)
            .await
            .expect("start");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = running.state.clone().expect("state");
        let server = tokio::spawn(persql_api::serve(listener, state, running.shutdown.clone()));
        Self {
            base,
            client: reqwest::Client::new(),
            dir,
            backends,
            _tmp: None,
            running: Some(running),
            server: Some(server),
        }
    }

    /// Stops the server cleanly and starts a new one on the same data dir and backends.
    pub async fn restart(mut self) -> Self {
        let tmp = self._tmp.take();
        self.stop().await;
        let mut app = Self::start(self.dir.clone(), self.backends.clone(), |_| {}).await;
        app._tmp = tmp;
        app
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown.cancel();
            if let Some(s) = self.server.take() {
                let _ = s.await;
            }
            r.stop().await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Creates namespace `slug`; returns its workspace token.
    pub async fn namespace(&self, slug: &str) -> String {
        let (s, b) = self
            .post("/v1/admin/namespaces", ADMIN, json!({ "slug": slug }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["token"].as_str().expect("token").to_owned()
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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.shutdown.cancel();
        }
    }
}

/// Asserts a problem+json body with `code`.
pub fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert!(
        body["type"].is_string() && body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}
