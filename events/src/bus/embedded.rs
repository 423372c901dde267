//! Embedded bus: the control plane's `events` table is the log; consumers tail it by `seq`
//! and move their offset in the same transaction as their effect.

use std::{sync::Arc, time::Duration};

use sqlx::Row;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Handler, backoff};
use crate::{
    envelope::Envelope,
    store::{ControlPlane, StoreError},
};

/// How often tailers look for events appended by other processes sharing the control plane.
const POLL: Duration = Duration::from_millis(200);
const BATCH: i64 = 5000;
/// How far behind (in time) a consumer lets its stored offset fall while it only skips events
/// it does not handle: re-reading those after a restart is harmless, and storing the offset
/// for every read would cost each consumer one durable commit per group commit of the log.
const SKIP_PERSIST_EVERY: Duration = Duration::from_secs(1);
/// Under load, a reader of query events commits about once per `LINGER`: after committing a
/// step of at least `LINGER_FROM` events that reached the log's head it waits `LINGER` before
/// reading the next, so the batcher's next batches (one per 20 ms: up to five in 100 ms) share
/// one transaction. A consumer with a backlog (a full read, or more batches held after its
/// step) goes on at once.
///
/// Each transaction has a fixed cost that does not shrink with its size: metering's
/// savepoints, balance and usage upserts and `balance.charged` event, the offset, the
/// durable commit, and every tailer's wake-up to read that event. Under the metering bench's
/// point-SELECT load (docs/benchmarks.md) the wait cut the control-plane thread time metering
/// adds by about half; the price is charge lag under load (roughly 100 ms more at p50),
/// which the bench reports. A quiet stream (steps of fewer events) is applied
/// at once. The API's running estimate of not-yet-charged spend (`Funding`) is what bounds
/// overdraft, so the wait does not widen it.
const LINGER: Duration = Duration::from_millis(100);
const LINGER_FROM: usize = 64;
/// The type of the one event every query logs.
const QUERY_EXECUTED: &str = <crate::QueryExecuted as crate::EventPayload>::TYPE;

pub(super) async fn consume(
    cp: ControlPlane,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) {
    let name = handler.name();
    let mut offset = loop {
        match load_offset(&cp, name).await {
            Ok(o) => break o,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "cannot read consumer offset; retrying");
                if sleep_or_shutdown(Duration::from_secs(1), &shutdown).await {
                    return;
                }
            }
        }
    };
    let mut appended = cp.appended();
    let mut attempt = 0;
    // `offset` as last committed, and when.
    let mut stored = offset;
    let mut stored_at = std::time::Instant::now();
    let types = handler.types();
    let wanted = |t: &str| types.contains(&t);
    // Only readers of query events gain from the batcher's batches handed over in memory.
    let handed = wanted(QUERY_EXECUTED);
    let reader = handed.then(|| cp.handoff().want());
    while !shutdown.is_cancelled() {
        let step = if handed {
            next_step(&cp, offset, &wanted).await
        } else {
            read_after(&cp, offset, i64::MAX, BATCH, &wanted)
                .await
                .map(Step::from)
        };
        let step = match step {
            Ok(step) => step,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "reading the event log failed");
                attempt += 1;
                if sleep_or_shutdown(backoff(attempt), &shutdown).await {
                    break;
                }
                continue;
            }
        };
        let Some(last) = step.last else {
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        };
        let nothing = step.segments.iter().all(|s| s.is_empty());
        if nothing && stored_at.elapsed() < SKIP_PERSIST_EVERY {
            offset = last;
            if let Some(reader) = reader {
                // Nothing to apply: after a restart these come from the log, not from here.
                cp.handoff().release(reader, last);
            }
            continue;
        }
        let events: usize = step.segments.iter().map(|s| s.len()).sum();
        let behind = step.behind;
        match apply(&cp, handler.as_ref(), &step.segments, last).await {
            Ok(()) => {
                attempt = 0;
                offset = last;
                (stored, stored_at) = (last, std::time::Instant::now());
                for segment in &step.segments {
                    handler.committed(segment).await;
                }
                // Lets go of the step's batches before the linger, not after it.
                drop(step);
                if let Some(reader) = reader {
                    cp.handoff().release(reader, last);
                }
                if handed && !behind && events >= LINGER_FROM {
                    tokio::select! {
                        _ = tokio::time::sleep(LINGER) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
            Err(e) => {
                attempt += 1;
                tracing::warn!(consumer = name, error = %e, attempt, "applying events failed; retrying");
                if sleep_or_shutdown(backoff(attempt), &shutdown).await {
                    break;
                }
            }
        }
    }
    // Stopping: store how far the skipped events reach (best effort; see SKIP_PERSIST_EVERY).
    if offset != stored
        && let Err(e) = apply(&cp, handler.as_ref(), &[], offset).await
    {
        tracing::debug!(consumer = name, error = %e, "storing the consumer offset at shutdown failed");
    }
}

/// Applies `segments` (in log order) and moves the consumer's offset to `last`, in one
/// transaction.
async fn apply(
    cp: &ControlPlane,
    handler: &dyn Handler,
    segments: &[Segment],
    last: i64,
) -> Result<(), String> {
    let mut tx = cp.begin().await.map_err(|e| e.to_string())?;
    let mut any = false;
    for events in segments.iter().filter(|s| !s.is_empty()) {
        any = true;
        handler
            .handle_batch(&mut tx, events)
            .await
            .map_err(|e| e.to_string())?;
    }
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, seq) VALUES ($1, $2) \
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
    )
    .bind(handler.name())
    .bind(last)
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    if any {
        // Handlers may append events (metering's `balance.*`): wake the tailers.
        cp.commit(tx).await.map_err(|e| e.to_string())
    } else {
        // Only the offset moved: nothing for the log's tailers to read, so do not wake them.
        tx.commit().await.map_err(|e| e.to_string())
    }
}

async fn load_offset(cp: &ControlPlane, name: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT seq FROM consumer_offsets WHERE consumer = $1")
        .bind(name)
        .fetch_optional(cp.pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>(0)?,
        None => 0,
    })
}

/// Events read from the log: `last` is the highest `seq` read (also when its row did not decode,
/// so a consumer never sticks on a bad row); `full` when the read stopped at its limit.
struct Batch {
    last: Option<i64>,
    full: bool,
    events: Vec<(i64, Envelope)>,
}

/// The log between two offsets, for readers that handle `query.executed`.
const READ_ALL: &str =
    "SELECT seq, type, body FROM events WHERE seq > $1 AND seq < $2 ORDER BY seq LIMIT $3";
/// The same without `query.executed`, through the partial index `events_without_queries`
/// (migration 0006). One query event per query makes up nearly the whole log: a reader that
/// drops them (the provisioner, the rollout trigger, each API process's cache invalidation)
/// never steps over those rows, so its cost follows the other events only. Its batch's
/// `last` is then the newest other event, not the log's head.
const READ_WITHOUT_QUERIES: &str = "SELECT seq, type, body FROM events \
     WHERE seq > $1 AND seq < $2 AND type <> 'query.executed' ORDER BY seq LIMIT $3";

/// Events with `after < seq < before`, oldest first. Rows that do not decode are logged and
/// skipped. Only rows whose type `wanted` accepts are decoded.
async fn read_after(
    cp: &ControlPlane,
    after: i64,
    before: i64,
    limit: i64,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Batch, StoreError> {
    let sql = if wanted(QUERY_EXECUTED) {
        READ_ALL
    } else {
        READ_WITHOUT_QUERIES
    };
    let rows: Vec<(i64, String, String)> = match cp.log_reader() {
        Some(reader) => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(before)
                .bind(limit)
                .fetch_all(reader)
                .await?
        }
        None => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(before)
                .bind(limit)
                .fetch_all(cp.pool())
                .await?
        }
    };
    let full = rows.len() as i64 >= limit;
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for (seq, ty, body) in rows {
        last = Some(seq);
        if !wanted(&ty) {
            continue;
        }
        match serde_json::from_str::<Envelope>(&body) {
            Ok(e) => out.push((seq, e)),
            Err(e) => tracing::error!(seq, error = %e, "undecodable event in the log; skipped"),
        }
    }
    Ok(Batch {
        last,
        full,
        events: out,
    })
}

/// Events a consumer applies in one go, in log order: read from the log, or a batch this
/// process committed, handed over as it was.
enum Segment {
    Read(Vec<Envelope>),
    Handed(Arc<[Envelope]>),
}

impl std::ops::Deref for Segment {
    type Target = [Envelope];

    fn deref(&self) -> &[Envelope] {
        match self {
            Segment::Read(events) => events,
            Segment::Handed(events) => events,
        }
    }
}

/// One step of a consumer: its segments, and the offset they reach (`None`: nothing new).
/// `behind`: the step stopped at a limit or a gap with more already waiting after it (a
/// backlog, not the log's head).
struct Step {
    last: Option<i64>,
    segments: Vec<Segment>,
    behind: bool,
}

impl From<Batch> for Step {
    fn from(b: Batch) -> Self {
        Step {
            last: b.last,
            segments: vec![Segment::Read(
                b.events.into_iter().map(|(_, e)| e).collect(),
            )],
            behind: b.full,
        }
    }
}

/// The next step after `offset` for a reader of query events: the batches this process
/// committed after it (see [`crate::handoff`]), with whatever lies between the offset and
/// them read from the log; or, with none held, a read of the log.
async fn next_step(
    cp: &ControlPlane,
    offset: i64,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Step, StoreError> {
    let held = cp.handoff().after(offset, BATCH as usize);
    let (Some(first), Some(newest)) = (held.first(), held.last()) else {
        return read_after(cp, offset, i64::MAX, BATCH, wanted)
            .await
            .map(Step::from);
    };
    let last = newest.last();
    let mut step = if first.first > offset + 1 {
        // Rows between: other transactions' events (this consumer's own among them).
        let gap = read_after(cp, offset, first.first, BATCH, wanted).await?;
        if gap.full {
            return Ok(Step::from(gap));
        }
        Step::from(gap)
    } else {
        Step {
            last: None,
            segments: Vec::new(),
            behind: false,
        }
    };
    step.last = Some(last);
    step.behind = !cp.handoff().after(last, 1).is_empty();
    for batch in held {
        if batch.events.iter().all(|e| wanted(e.type_suffix())) {
            step.segments.push(Segment::Handed(batch.events));
        } else {
            let events = batch.events.iter().filter(|e| wanted(e.type_suffix()));
            step.segments.push(Segment::Read(events.cloned().collect()));
        }
    }
    Ok(step)
}

pub(super) async fn tail(
    cp: ControlPlane,
    out: mpsc::Sender<Envelope>,
    shutdown: CancellationToken,
    wanted: super::TypeFilter,
) -> Result<(), StoreError> {
    let start: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(cp.pool())
        .await?
        .try_get(0)?;
    tokio::spawn(async move {
        let mut offset = start;
        let mut appended = cp.appended();
        loop {
            match read_after(&cp, offset, i64::MAX, BATCH, &wanted).await {
                Ok(Batch {
                    last: Some(last),
                    events,
                    ..
                }) => {
                    for (_, e) in events {
                        if out.send(e).await.is_err() {
                            return;
                        }
                    }
                    offset = last;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "tailing the event log failed"),
            }
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => return,
                _ = out.closed() => return,
            }
        }
    });
    Ok(())
}

/// Sleeps for `d`; true when shutdown fired first.
pub(super) async fn sleep_or_shutdown(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.cancelled() => true,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::query as test_query;
