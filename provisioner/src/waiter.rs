//! Waiting until a database is query-ready: woken in-process when the provisioner commits
//! (or when this process sees `database.provisioned` on the bus), with a polling fallback
//! for provisioners in other processes.

use std::{sync::Arc, time::Duration};

use persql_events::ControlPlane;
use tokio::sync::Notify;

use crate::registry::{DatabaseRecord, DatabaseState, RegistryError, get_in};

/// Wakes callers waiting for databases to become ready.
#[derive(Clone, Default)]
pub struct ReadyWaiter {
    notify: Arc<Notify>,
}

impl ReadyWaiter {
    /// A fresh waiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every waiter to re-check the registry.
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Waits until database `id` is ready or failed, or `timeout` passes (`Ok(None)`).
    pub async fn wait(
        &self,
        cp: &ControlPlane,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<DatabaseRecord>, RegistryError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut poll = Duration::from_millis(5);
        loop {
            // Register interest before checking, so a wake between the check and the
            // wait is not lost.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match get_in(cp.pool(), id).await? {
                Some(rec) if rec.state != DatabaseState::Pending => return Ok(Some(rec)),
                Some(_) => {}
                None => return Err(RegistryError::NotFound),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            let _ =
                tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + poll), notified)
                    .await;
            poll = (poll * 2).min(Duration::from_millis(100));
        }
    }
}
