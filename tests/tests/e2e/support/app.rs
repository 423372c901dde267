//! `TestApp`: the real server started in-process on a free port with a temporary data dir,
//! stopped, restarted, or pointed at a `persql` process running elsewhere.

use std::{
    path::{Path, PathBuf},
    sync::Once,
    time::Duration,
};

use futures::FutureExt;
use persql_api::{Components, Config, Running};
use sqlx::Row;
use tempfile::TempDir;
use tokio::{
    net::TcpListener,
    task::{JoinError, JoinHandle},
};

use super::{ADMIN, Backends};

/// Installs the tracing subscriber once per test binary, only when `TEST_LOG` is set.
fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            persql_api::telemetry::init_tracing();
        }
    });
}

/// A PerSQL server under test and an HTTP client of it.
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
    /// Starts the server on fresh backends (see [`Backends::fresh`]) and a temporary data dir.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// [`spawn`](Self::spawn) with `tweak` applied to the config first.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let tmp = TempDir::new().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let backends = Backends::fresh().await;
        let mut app = Self::start(dir, backends, tweak).await;
        app._tmp = Some(tmp);
        app
    }

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
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// [`restart`](Self::restart) with `tweak` applied to the new server's config.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> Self {
        let tmp = self._tmp.take();
        self.stop().await;
        let mut app = Self::start(self.dir.clone(), self.backends.clone(), tweak).await;
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

    /// Stops the server cleanly. A server task that panicked or ended with an error fails
    /// the test here.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown.cancel();
            if let Some(s) = self.server.take() {
                server_outcome(s.await);
            }
            r.stop().await;
        }
    }
}

/// Re-raises a server task's panic in the test, and fails it on an I/O error from `serve`.
/// (A task cancelled because the runtime is shutting down has nothing to report.)
fn server_outcome(joined: Result<std::io::Result<()>, JoinError>) {
    match joined {
        Ok(served) => served.expect("the server stopped with an error"),
        Err(e) => {
            if let Ok(panic) = e.try_into_panic() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.shutdown.cancel();
        }
        // Dropped without `stop`: a server task that has already ended (it can only have
        // ended early, by panicking or failing) still fails the test, unless it is failing.
        if let Some(s) = self.server.take_if(|s| s.is_finished())
            && !std::thread::panicking()
            && let Some(joined) = s.now_or_never()
        {
            server_outcome(joined);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panicking_server() -> JoinHandle<std::io::Result<()>> {
        tokio::spawn(async { panic!("the server task panicked") })
    }

    #[tokio::test]
    #[should_panic(expected = "the server task panicked")]
    async fn a_server_task_panic_fails_the_test_on_stop() {
        server_outcome(panicking_server().await);
    }

    #[tokio::test]
    #[should_panic(expected = "the server task panicked")]
    async fn a_server_task_panic_fails_the_test_on_drop() {
        let mut app = TestApp::remote(1, Path::new("."), &Backends::embedded());
        let server = panicking_server();
        while !server.is_finished() {
            tokio::task::yield_now().await;
        }
        app.server = Some(server);
        drop(app);
    }
}
