//! PerSQL started in-process on a loopback port, and the few HTTP calls the bench needs.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

use persql_api::{Components, Config, Running};

/// A running PerSQL (every component, embedded defaults) serving on `base`.
pub struct PerSql {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    running: Running,
    server: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for PerSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerSql").field("base", &self.base).finish()
    }
}

impl PerSql {
    /// Starts PerSQL on `data_dir` with a generated operator token; returns it too.
    pub async fn start(data_dir: PathBuf) -> anyhow::Result<(Self, String)> {
        Self::start_with(data_dir, |_| {}).await
    }

    /// Like `start`, with `tweak` applied to the configuration first.
    pub async fn start_with(
        data_dir: PathBuf,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<(Self, String)> {
        let admin = format!("psql_admin_{}", hex::encode(rand::random::<[u8; 20]>()));
        let mut config = Config::for_data_dir(data_dir);
        config.http.admin_token = Some(persql_api::tokens::Secret::from_config(admin.clone()));
        // Tokens must outlive a full-size run (provisioning 100k databases takes minutes).
        config.http.token_ttl_secs = config.http.token_ttl_secs.max(24 * 3600);
        tweak(&mut config);
        let running = persql_api::start(config, Components::All).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = running.state.clone().context("no HTTP state")?;
        let server = tokio::spawn(persql_api::serve(listener, state, running.shutdown.clone()));
        Ok((
            Self {
                base,
                running,
                server,
            },
            admin,
        ))
    }

    /// The running instance's state (control plane, storage), for set-up that bypasses HTTP.
    pub fn state(&self) -> anyhow::Result<&persql_api::state::AppState> {
        self.running.state.as_ref().context("no HTTP state")
    }

    /// Stops the server and background tasks.
    pub async fn stop(self) {
        self.running.shutdown.cancel();
        let _ = self.server.await;
        self.running.stop().await;
    }
}

/// PerSQL as a child process on a loopback port: this binary run as `<bench> serve …`, which
/// is PerSQL's own `persql serve` command line (see [`crate::main`]), on embedded defaults.
/// For comparisons of two configurations: two instances sharing the bench's process are not
/// alike (configured the same, the one started first spends less CPU per query than the
/// other), and production runs one instance a process.
pub struct PerSqlProcess {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: tokio::process::Child,
}

impl PerSqlProcess {
    /// Starts `serve` on `data_dir` with `args` after the defaults (and no `PERSQL_*`
    /// variable of the bench's environment) and a generated operator token; waits until
    /// `/healthz` answers; returns the token too. The server's output goes to
    /// `<data_dir>/server.log`.
    pub async fn start(data_dir: PathBuf, args: &[&str]) -> anyhow::Result<(Self, String)> {
        let admin = format!("psql_admin_{}", hex::encode(rand::random::<[u8; 20]>()));
        std::fs::create_dir_all(&data_dir)?;
        // A free port, released for the child to bind (another process taking it meanwhile
        // makes the start fail, not the run wrong).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log_path = data_dir.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PERSQL_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .arg(crate::cli::SERVE)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            // Tokens must outlive the run.
            .args(["--token-ttl-secs", "86400"])
            .args(args)
            .env("PERSQL_ADMIN_TOKEN", &admin)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting `persql serve`")?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("`persql serve` exited ({status}) before answering:\n{log}");
            }
            let up = client.get(format!("{base}/healthz")).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return Ok((Self { base, child }, admin));
            }
            if std::time::Instant::now() > deadline {
                bail!("`persql serve` did not answer /healthz within 60 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The child's process id (`None` once it has been waited for).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server (SIGKILL: nothing of a bench's instance needs to outlive it).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A database a user was provisioned, with its token.
#[derive(Debug)]
pub struct Provisioned {
    pub namespace: String,
    pub slug: String,
    pub token: String,
}

/// Minimal HTTP client for PerSQL's management calls.
#[derive(Clone, Debug)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A client for the PerSQL at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    /// `POST path` with `body` as `token`; the JSON answer, or an error naming the status.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let req = self.client.post(format!("{}{path}", self.base)).json(&body);
        Self::send(req, token, "POST", path).await
    }

    /// `GET path` as `token`; the JSON answer, or an error naming the status.
    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let req = self.client.get(format!("{}{path}", self.base));
        Self::send(req, token, "GET", path).await
    }

    async fn send(
        req: reqwest::RequestBuilder,
        token: &str,
        method: &str,
        path: &str,
    ) -> anyhow::Result<Value> {
        let resp = req
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Creates namespace `slug`, funded; returns its workspace token.
    pub async fn create_namespace(&self, admin: &str, slug: &str) -> anyhow::Result<String> {
        let v = self
            .post("/v1/admin/namespaces", admin, json!({ "slug": slug }))
            .await?;
        // Metering is on, as in production: fund the namespace well past the run's usage.
        self.post(
            &format!("/v1/admin/namespaces/{slug}/topups"),
            admin,
            json!({ "amount": "1000000", "reference": "bench" }),
        )
        .await?;
        str_field(&v, "token")
    }

    /// Creates template database `slug` in `ns` and runs `ddl` on it, one statement a call.
    pub async fn create_template(
        &self,
        ws: &str,
        ns: &str,
        slug: &str,
        ddl: &[&str],
    ) -> anyhow::Result<()> {
        self.post("/v1/databases", ws, json!({ "slug": slug }))
            .await?;
        for sql in ddl {
            self.post(
                &format!("/v1/databases/{ns}/{slug}/query"),
                ws,
                json!({ "sql": sql }),
            )
            .await?;
        }
        Ok(())
    }

    /// Provisions `subject` from `template`.
    pub async fn provision(
        &self,
        ws: &str,
        subject: &str,
        template: &str,
    ) -> anyhow::Result<Provisioned> {
        let v = self
            .post(
                "/v1/users/provision",
                ws,
                json!({ "subject": subject, "template": template }),
            )
            .await?;
        Ok(Provisioned {
            namespace: str_field(&v, "namespaceSlug")?,
            slug: v["database"]["slug"]
                .as_str()
                .context("no database.slug")?
                .to_owned(),
            token: str_field(&v, "token")?,
        })
    }
}

fn str_field(v: &Value, name: &str) -> anyhow::Result<String> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no `{name}` in {v}"))
}
