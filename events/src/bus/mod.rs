//! The `Bus`: how events reach consumers. Embedded mode tails the log table in the
//! control plane; NATS mode relays the outbox to JetStream and consumes durable pull
//! consumers. Handlers are the same code on both.

mod embedded;
mod nats;

#[cfg(test)]
pub(crate) use embedded::test_query;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    envelope::Envelope,
    store::{ControlPlane, StoreError, Tx},
};

/// How to reach the bus.
#[derive(Clone, Debug, Default)]
pub struct BusConfig {
    /// `nats://host:port`; `None` selects the embedded log.
    pub nats_url: Option<String>,
    /// Subject prefix (default `persql`): subjects are `<prefix>.events.<namespace>.<type>`
    /// and the stream is named after it, so several deployments can share one NATS.
    pub prefix: String,
}

/// Accepts or rejects an event type suffix (`query.executed`).
pub type TypeFilter = fn(&str) -> bool;

/// A failure applying an event. Transient by definition: the batch is rolled back and
/// retried. Handlers record permanent failures themselves (as state and events) and succeed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

/// A durable consumer's logic.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Durable name: the embedded offset's key and the JetStream durable consumer's name.
    fn name(&self) -> &'static str;
    /// Event type suffixes (`database.provision_requested`, …) this handler acts on.
    fn types(&self) -> &'static [&'static str];
    /// Applies `event`'s effect inside `tx`, which commits together with the consumer's
    /// position (embedded) or dedup mark (NATS): each event takes effect exactly once.
    async fn handle(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError>;
    /// Applies a batch of events (in log order) inside one transaction. Handlers with
    /// per-batch savings (multi-row writes, aggregation) override this.
    async fn handle_batch(&self, tx: &mut Tx, events: &[Envelope]) -> Result<(), HandlerError> {
        for e in events {
            self.handle(tx, e).await?;
        }
        Ok(())
    }
    /// Runs after the transaction holding `events` committed (e.g. to wake waiters).
    async fn committed(&self, _events: &[Envelope]) {}
}

/// The event bus of one process.
#[derive(Clone)]
pub struct Bus {
    cp: ControlPlane,
    nats: Option<nats::NatsBus>,
}

impl Bus {
    /// Connects to NATS (creating the stream if missing) or selects the embedded log.
    pub async fn connect(cp: ControlPlane, config: &BusConfig) -> Result<Self, StoreError> {
        let nats = match &config.nats_url {
            Some(url) => Some(nats::NatsBus::connect(url, &config.prefix).await?),
            None => None,
        };
        Ok(Self { cp, nats })
    }

    /// The control plane this bus logs to.
    pub fn control_plane(&self) -> &ControlPlane {
        &self.cp
    }

    /// True when events travel over NATS JetStream.
    pub fn is_nats(&self) -> bool {
        self.nats.is_some()
    }

    /// Starts the outbox relay (NATS mode only): every process that appends events runs one.
    pub fn spawn_relay(&self, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        let nats = self.nats.clone()?;
        let cp = self.cp.clone();
        Some(tokio::spawn(async move { nats.relay(cp, shutdown).await }))
    }

    /// Starts a durable consumer running `handler` until `shutdown`.
    pub fn spawn_consumer(
        &self,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let cp = self.cp.clone();
        match self.nats.clone() {
            Some(nats) => tokio::spawn(async move { nats.consume(cp, handler, shutdown).await }),
            None => tokio::spawn(async move { embedded::consume(cp, handler, shutdown).await }),
        }
    }

    /// A live, non-durable tail of events appended from now on (for cache invalidation,
    /// `persql events tail`). Ends when `shutdown` fires or the receiver is dropped.
    pub async fn tail(
        &self,
        shutdown: CancellationToken,
    ) -> Result<mpsc::Receiver<Envelope>, StoreError> {
        self.tail_matching(shutdown, |_| true).await
    }

    /// Like `tail`, for events whose type suffix `wanted` accepts; the others are skipped
    /// before their JSON is decoded (an API process should not decode every query event).
    pub async fn tail_matching(
        &self,
        shutdown: CancellationToken,
        wanted: TypeFilter,
    ) -> Result<mpsc::Receiver<Envelope>, StoreError> {
        let (tx, rx) = mpsc::channel(1024);
        match &self.nats {
            Some(nats) => nats.tail(tx, shutdown, wanted).await?,
            None => embedded::tail(self.cp.clone(), tx, shutdown, wanted).await?,
        }
        Ok(rx)
    }
}

/// Backoff after a failed attempt: 100 ms doubling to 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}
