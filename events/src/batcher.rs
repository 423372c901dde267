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
    // Numbering costs a statement; only worth it when a consumer here takes the batch.
    let first = if cp.handoff().wanted() {
        outbox::append_numbered(&mut tx, cp.backend(), events).await?
    } else {
        outbox::append(&mut tx, cp.backend(), events).await?;
        None
    };
    cp.commit_handing_off(tx, first, events.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bus::test_query as query, store::ControlPlane};

    async fn logged(cp: &ControlPlane, n: i64) {
        for _ in 0..500 {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(cp.pool())
                .await
                .unwrap();
            if count >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} events logged");
    }

    #[tokio::test]
    async fn batches_are_held_for_consumers_only_once_one_wants_them() {
        let dir = tempfile::tempdir().unwrap();
        let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
        let shutdown = CancellationToken::new();
        let (batcher, task) = QueryEventBatcher::spawn(cp.clone(), shutdown.clone());
        batcher.send(query()).await;
        logged(&cp, 1).await;
        assert!(cp.handoff().after(0, usize::MAX).is_empty());

        let _reader = cp.handoff().want();
        let (a, b) = (query(), query());
        batcher.send(a.clone()).await;
        batcher.send(b.clone()).await;
        logged(&cp, 3).await;
        // A batch is handed over just after its commit: the log may show it a moment sooner.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let held = loop {
            let held = cp.handoff().after(0, usize::MAX);
            let n: usize = held.iter().map(|c| c.events.len()).sum();
            if n >= 2 || tokio::time::Instant::now() >= deadline {
                break held;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let ids: Vec<&str> = held
            .iter()
            .flat_map(|c| c.events.iter().map(|e| e.id.as_str()))
            .collect();
        assert_eq!(ids, [a.id.as_str(), b.id.as_str()]);
        // Held at the `seq`s the log gave them.
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM events WHERE id IN ($1, $2) ORDER BY seq")
                .bind(&a.id)
                .bind(&b.id)
                .fetch_all(cp.pool())
                .await
                .unwrap();
        assert_eq!(seqs, [held[0].first, held.last().unwrap().last()]);
        shutdown.cancel();
        task.await.unwrap();
        cp.close().await;
    }
}
