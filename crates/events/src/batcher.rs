//! Group commit for query usage events: the query path hands events to a channel and a
//! background task appends them in batches, so no query waits on a control-plane write.

use std::{sync::Arc, time::Duration};

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{envelope::Envelope, outbox, store::ControlPlane};

/// Upper bound on events per append transaction.
const MAX_BATCH: usize = 5000;
/// How long a lone event may wait for company before it is written.
const LINGER: Duration = Duration::from_millis(20);

/// Sender side of the batcher. Cloneable; `send` applies backpressure when the writer
/// falls behind by more than the channel's capacity.
#[derive(Clone)]
pub struct QueryEventBatcher {
    tx: mpsc::Sender<Envelope>,
}

impl QueryEventBatcher {
    /// Starts the writer task. It drains what is queued before exiting on `shutdown`.
    pub fn spawn(cp: ControlPlane, shutdown: CancellationToken) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(65_536);
        let handle = tokio::spawn(run(cp, rx, shutdown));
        (Self { tx }, handle)
    }

    /// Queues an event. Waits only when the queue is full.
    pub async fn send(&self, event: Envelope) {
        if self.tx.send(event).await.is_err() {
            tracing::warn!("query event dropped: the batcher has stopped");
        }
    }
}

async fn run(cp: ControlPlane, mut rx: mpsc::Receiver<Envelope>, shutdown: CancellationToken) {
    let mut buf = Vec::with_capacity(MAX_BATCH);
    // True when the last drain stopped at MAX_BATCH: more is queued, write it at once.
    let mut behind = false;
    loop {
        let first = tokio::select! {
            e = rx.recv() => e,
            _ = shutdown.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { return };
        buf.push(first);
        // Sleep out the linger, then take what queued meanwhile. Waiting on `recv` instead
        // would wake this task (and often park/unpark a runtime thread) once per query.
        if !behind && !shutdown.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        while buf.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => buf.push(e),
                Err(_) => break,
            }
        }
        behind = buf.len() == MAX_BATCH;
        write(&cp, &mut buf).await;
    }
}

/// Appends `buf` in one transaction, retrying transient failures a few times, and hands the
/// committed batch to this process's embedded consumers (they need not read it back).
async fn write(cp: &ControlPlane, buf: &mut Vec<Envelope>) {
    // Moved out, so `buf` keeps its capacity.
    let events: Arc<[Envelope]> = buf.drain(..).collect();
    for attempt in 0..5u32 {
        match append(cp, &events).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempt, events = events.len(), "writing query events failed");
                tokio::time::sleep(crate::bus::backoff(attempt)).await;
            }
        }
    }
    tracing::error!(
        events = events.len(),
        "query events dropped after repeated write failures"
    );
}

async fn append(cp: &ControlPlane, events: &Arc<[Envelope]>) -> Result<(), crate::StoreError> {
    let mut tx = cp.begin().await?;
    let first = outbox::append_numbered(&mut tx, cp.backend(), events).await?;
    cp.commit_handing_off(tx, first, events.clone()).await
}
