//! Separate processes: the real `persql` binary as a child with only the settings a test
//! chose, and `ChildGuard`, which kills a child when the test ends.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use reqwest::StatusCode;

use super::{ADMIN, Backends};

/// The `persql` command line built by this package.
pub const PERSQL_BIN: &str = env!("CARGO_BIN_EXE_persql-e2e");

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
fn persql_command(sub: &str, port: Option<u16>, dir: &Path, backends: &Backends) -> Command {
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
async fn wait_healthy(child: &mut ChildGuard, port: u16) {
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
