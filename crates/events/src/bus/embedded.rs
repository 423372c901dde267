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
    while !shutdown.is_cancelled() {
        let batch = match read_after(&cp, offset, BATCH, &wanted).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "reading the event log failed");
                attempt += 1;
                if sleep_or_shutdown(backoff(attempt), &shutdown).await {
                    break;
                }
                continue;
            }
        };
        let Some(last) = batch.last else {
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        };
        let wanted: Vec<Envelope> = batch
            .events
            .into_iter()
            .filter_map(|(_, e)| handler.types().contains(&e.type_suffix()).then_some(e))
            .collect();
        if wanted.is_empty() && stored_at.elapsed() < SKIP_PERSIST_EVERY {
            offset = last;
            continue;
        }
        match apply(&cp, handler.as_ref(), &wanted, last).await {
            Ok(()) => {
                attempt = 0;
                offset = last;
                (stored, stored_at) = (last, std::time::Instant::now());
                handler.committed(&wanted).await;
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

async fn apply(
    cp: &ControlPlane,
    handler: &dyn Handler,
    events: &[Envelope],
    last: i64,
) -> Result<(), String> {
    let mut tx = cp.begin().await.map_err(|e| e.to_string())?;
    if !events.is_empty() {
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
    if events.is_empty() {
        // Only the offset moved: nothing for the log's tailers to read, so do not wake them.
        tx.commit().await.map_err(|e| e.to_string())
    } else {
        // Handlers may append events (metering's `balance.*`): wake the tailers.
        cp.commit(tx).await.map_err(|e| e.to_string())
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
/// so a consumer never sticks on a bad row).
struct Batch {
    last: Option<i64>,
    events: Vec<(i64, Envelope)>,
}

/// Events with `seq > after`, oldest first. Rows that do not decode are logged and skipped.
/// Only rows whose type `wanted` accepts are decoded (`None`: all).
async fn read_after(
    cp: &ControlPlane,
    after: i64,
    limit: i64,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Batch, StoreError> {
    // One `query.executed` row per query makes up nearly the whole log: a reader that drops
    // them (the provisioner, the API's cache invalidation) leaves their bodies in the database
    // instead of copying ~600 bytes per query out of it.
    let sql = if wanted(QUERY_EXECUTED) {
        "SELECT seq, type, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
    } else {
        "SELECT seq, type, CASE WHEN type = 'query.executed' THEN NULL ELSE body END \
         FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
    };
    let rows: Vec<(i64, String, Option<String>)> = match cp.log_reader() {
        Some(reader) => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(limit)
                .fetch_all(reader)
                .await?
        }
        None => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(limit)
                .fetch_all(cp.pool())
                .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for (seq, ty, body) in rows {
        last = Some(seq);
        if !wanted(&ty) {
            continue;
        }
        let Some(body) = body else { continue };
        match serde_json::from_str::<Envelope>(&body) {
            Ok(e) => out.push((seq, e)),
            Err(e) => tracing::error!(seq, error = %e, "undecodable event in the log; skipped"),
        }
    }
    Ok(Batch { last, events: out })
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
            match read_after(&cp, offset, BATCH, &wanted).await {
                Ok(Batch {
                    last: Some(last),
                    events,
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
