//! `NatsServer`: a private `nats-server` a test can kill and restart.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::{ChildGuard, free_port};

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
