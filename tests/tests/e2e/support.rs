//! `TestApp`: the real router on a free port with a temporary data dir; Postgres and NATS
//! when `PERSQL_TEST_DATABASE_URL` / `PERSQL_TEST_NATS_URL` are set (each test gets its own
//! Postgres database and NATS subject prefix).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use persql_api::{Components, Config, Running};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;
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
        config.http.admin_token = Some(persql_api::tokens::Secret::from_config(ADMIN.into()));
        config.connections.database_url = backends.database_url.clone();
        config.connections.nats_url = backends.nats_url.clone();
        config.connections.nats_prefix = backends.nats_prefix.clone();
        config
    }

    async fn start(dir: PathBuf, backends: Backends, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_as(dir, backends, Components::All, tweak).await
    }

    async fn start_as(
        dir: PathBuf,
        backends: Backends,
        components: Components,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        init_logs();
        // Bind first, so the public URL (the OAuth issuer) is the address tests talk to.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = Self::config(dir.clone(), &backends);
        config.http.public_url = Some(base.clone());
        tweak(&mut config);
        let running = persql_api::start(config, components).await.expect("start");
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

    /// A second API process (HTTP only) on the same data dir and backends, as `persql api`
    /// next to this one would be.
    pub async fn peer(&self) -> Self {
        Self::start_as(
            self.dir.clone(),
            self.backends.clone(),
            Components::Api,
            |_| {},
        )
        .await
    }

    /// The app's control plane, for checks the HTTP API does not expose.
    pub async fn control_plane(&self) -> persql_events::ControlPlane {
        persql_events::ControlPlane::connect(self.backends.database_url.as_deref(), &self.dir)
            .await
            .expect("control plane")
    }

    /// Stops the server cleanly and starts a new one on the same data dir and backends.
    pub async fn restart(mut self) -> Self {
        let tmp = self._tmp.take();
        self.stop().await;
        let mut app = Self::start(self.dir.clone(), self.backends.clone(), |_| {}).await;
        app._tmp = tmp;
        app
    }

    /// After [`stop`](Self::stop): runs a metering-only process (`persql metering`, no
    /// producers) on this app's data dir and backends until the ledger has not grown for
    /// 1.5 s, so events the app appended but its own consumer had not charged when it
    /// stopped (a storage sample of the last second) are charged.
    pub async fn drain_metering(&self, tweak: impl FnOnce(&mut Config)) {
        let mut config = Self::config(self.dir.clone(), &self.backends);
        tweak(&mut config);
        let running = persql_api::start(config, Components::Metering)
            .await
            .expect("start metering");
        let cp = self.control_plane().await;
        let (mut last, mut stable) = (-1i64, 0);
        while stable < 5 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM ledger")
                .fetch_one(cp.pool())
                .await
                .expect("ledger count")
                .get(0);
            stable = if n == last { stable + 1 } else { 0 };
            last = n;
        }
        running.shutdown.cancel();
        running.stop().await;
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

// ---- Separate processes: the real `persql` binary, a private nats-server, the control plane.

/// The `persql` command line built by this package.
pub const PERSQL_BIN: &str = env!("CARGO_BIN_EXE_persql-e2e");

impl Backends {
    /// The embedded defaults: SQLite control plane in the data dir, the event log as the bus.
    pub fn embedded() -> Self {
        Self {
            database_url: None,
            nats_url: None,
            nats_prefix: "persql".into(),
        }
    }

    /// The control-plane database of a data dir using these backends.
    pub async fn control_plane(&self, dir: &Path) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("control.db").display()));
        sqlx::AnyConnection::connect(&url)
            .await
            .expect("connect to the control plane")
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// `persql <sub>` on `dir` and `backends` (and `--listen 127.0.0.1:<port>` when given), with
/// operator token [`ADMIN`]; every other `PERSQL_*` variable of the test's environment is
/// removed so the child sees only what the test chose.
pub fn persql_command(sub: &str, port: Option<u16>, dir: &Path, backends: &Backends) -> Command {
    let mut cmd = persql_args(&[sub], dir, backends);
    if let Some(port) = port {
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
    }
    cmd.env("PERSQL_ADMIN_TOKEN", ADMIN);
    cmd
}

/// `persql <args…> --data-dir <dir>` on `backends`, with no other `PERSQL_*` inherited.
pub fn persql_args(args: &[&str], dir: &Path, backends: &Backends) -> Command {
    let mut cmd = Command::new(PERSQL_BIN);
    cmd.args(args).arg("--data-dir").arg(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PERSQL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PERSQL_NATS_PREFIX", &backends.nats_prefix);
    if let Some(url) = &backends.database_url {
        cmd.env("PERSQL_DATABASE_URL", url);
    }
    if let Some(url) = &backends.nats_url {
        cmd.env("PERSQL_NATS_URL", url);
    }
    cmd
}

/// A child process whose stdout and stderr go to files; killed (SIGKILL) when dropped, so
/// a failing test leaves nothing running. On panic the tail of its stderr is printed.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl ChildGuard {
    /// Starts `cmd`, logging to `<log_dir>/<name>-<n>.{out,err}` (a new `n` per start).
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Self {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let stdout = log_dir.join(format!("{name}-{n}.out"));
        let stderr = log_dir.join(format!("{name}-{n}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Self {
            name: name.into(),
            child: Some(child),
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The last `lines` lines of stderr, for failure messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// Waits (polling, at most `limit`) for the process to end.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Sends SIGTERM and waits (at most 60 s) for the process to exit; returns its status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.name);
        let exit = self.wait_exit(Duration::from_secs(60)).await;
        let exit = exit.unwrap_or_else(|| {
            panic!(
                "{} did not exit within 60 s of SIGTERM:\n{}",
                self.name,
                self.stderr_tail(30)
            )
        });
        self.child = None;
        exit
    }

    /// SIGKILL: the process dies at once, mid-write if it was writing.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() && std::thread::panicking() {
            eprintln!(
                "--- {} stderr (tail) ---\n{}",
                self.name,
                self.stderr_tail(40)
            );
        }
        self.kill();
    }
}

/// Starts `persql <sub>` and, when it serves HTTP (`port` given), waits until `/healthz`
/// answers 200 (at most 60 s: the machine is shared and may be slow).
pub async fn spawn_persql(
    name: &str,
    sub: &str,
    port: Option<u16>,
    dir: &Path,
    backends: &Backends,
    log_dir: &Path,
    tweak: impl FnOnce(&mut Command),
) -> ChildGuard {
    let mut cmd = persql_command(sub, port, dir, backends);
    tweak(&mut cmd);
    let mut child = ChildGuard::spawn(name, cmd, log_dir);
    if let Some(port) = port {
        wait_healthy(&mut child, port).await;
    }
    child
}

/// Polls `GET /healthz` on `port` until 200; panics with the child's stderr if it exits.
pub async fn wait_healthy(child: &mut ChildGuard, port: u16) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.exited() {
            panic!(
                "{} exited with {status} before serving:\n{}",
                child.name,
                child.stderr_tail(40)
            );
        }
        if let Ok(res) = client.get(&url).send().await
            && res.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} did not answer /healthz within 60 s:\n{}",
        child.name,
        child.stderr_tail(40)
    );
}

impl TestApp {
    /// A client of a server running elsewhere (a `persql` process) on `port`; the usual
    /// helpers speak to it over HTTP. Requests time out after 120 s instead of hanging.
    pub fn remote(port: u16, dir: &Path, backends: &Backends) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
            dir: dir.to_path_buf(),
            backends: backends.clone(),
            _tmp: None,
            running: None,
            server: None,
        }
    }

    /// `POST` that reports transport errors (refused, reset, timed out) instead of panicking.
    pub async fn try_post(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((status, value))
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

/// Per database id, how many `database.provisioned` events the log holds.
pub async fn provisioned_events(conn: &mut sqlx::AnyConnection) -> BTreeMap<String, usize> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT body FROM events WHERE type = 'database.provisioned'")
        .fetch_all(&mut *conn)
        .await
        .expect("read events");
    let mut counts = BTreeMap::new();
    for r in rows {
        let body: String = r.get(0);
        let event: Value = serde_json::from_str(&body).expect("event body is JSON");
        let id = event["data"]["databaseId"]
            .as_str()
            .unwrap_or_else(|| panic!("no data.databaseId in {body}"))
            .to_owned();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Database id → state, from the control plane's registry.
pub async fn database_states(conn: &mut sqlx::AnyConnection) -> BTreeMap<String, String> {
    use sqlx::Row;
    sqlx::query("SELECT id, state FROM databases")
        .fetch_all(&mut *conn)
        .await
        .expect("read databases")
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

/// Asserts the log holds exactly one `database.provisioned` event per ready database and
/// none for any other.
pub async fn assert_one_provisioned_event_per_ready_database(conn: &mut sqlx::AnyConnection) {
    let events = provisioned_events(conn).await;
    let states = database_states(conn).await;
    for (id, n) in &events {
        assert_eq!(*n, 1, "database {id} provisioned {n} times");
        assert_eq!(
            states.get(id).map(String::as_str),
            Some("ready"),
            "database {id} has a provisioned event but is not ready"
        );
    }
    for (id, state) in &states {
        if state == "ready" {
            assert!(
                events.contains_key(id),
                "ready database {id} has no provisioned event"
            );
        }
    }
}

/// A private `nats-server` with JetStream on a free port and a temporary store dir; killed
/// when dropped. Restartable on the same port and store.
pub struct NatsServer {
    pub port: u16,
    store: TempDir,
    child: Option<ChildGuard>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let mut nats = Self {
            port: free_port(),
            store: TempDir::new().expect("tempdir"),
            child: None,
        };
        nats.restart().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the broker vanishes without a goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Starts it (again) on the same port and store; waits until it accepts connections.
    pub async fn restart(&mut self) {
        let bin = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let mut cmd = Command::new(bin);
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(self.store.path().join("js"));
        let mut child = ChildGuard::spawn("nats-server", cmd, self.store.path());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.exited() {
                panic!(
                    "nats-server exited with {status}:\n{}",
                    child.stderr_tail(20)
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "nats-server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
    }
}
