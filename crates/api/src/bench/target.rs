//! PerSQL started in-process on a loopback port, and the few HTTP calls the bench needs.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{Components, Config, Running};

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
        config.admin_token = Some(admin.clone());
        // Tokens must outlive a full-size run (provisioning 100k databases takes minutes).
        config.token_ttl_secs = config.token_ttl_secs.max(24 * 3600);
        tweak(&mut config);
        let running = crate::start(config, Components::All).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = running.state.clone().context("no HTTP state")?;
        let server = tokio::spawn(crate::serve(listener, state, running.shutdown.clone()));
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
    pub fn state(&self) -> anyhow::Result<&crate::state::AppState> {
        self.running.state.as_ref().context("no HTTP state")
    }

    /// Stops the server and background tasks.
    pub async fn stop(self) {
        self.running.shutdown.cancel();
        let _ = self.server.await;
        self.running.stop().await;
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
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {text}");
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
