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

/// The log after an offset, for readers that handle `query.executed`.
const READ_ALL: &str = "SELECT seq, type, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";
/// The log after an offset without `query.executed`, through the partial index
/// `events_without_queries` (migration 0006). One query event per query makes up nearly the
/// whole log: a reader that drops them (the provisioner, the rollout trigger, each API
/// process's cache invalidation) never steps over those rows, so its cost follows the other
/// events only. Its batch's `last` is then the newest other event, not the log's head.
const READ_WITHOUT_QUERIES: &str = "SELECT seq, type, body FROM events \
     WHERE seq > $1 AND type <> 'query.executed' ORDER BY seq LIMIT $2";

/// Events with `seq > after`, oldest first. Rows that do not decode are logged and skipped.
/// Only rows whose type `wanted` accepts are decoded (`None`: all).
async fn read_after(
    cp: &ControlPlane,
    after: i64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventPayload, QueryExecuted, TokensRevoked, outbox};

    fn query() -> Envelope {
        Envelope::new(
            "/t",
            "acme",
            "databases/d",
            &QueryExecuted {
                database_id: "d".into(),
                namespace_id: "n".into(),
                billed_namespace_id: "n".into(),
                token_id: "t".into(),
                role: "read".into(),
                statements: 1,
                rows_read: 1,
                rows_written: 0,
                bytes: 10,
                duration_us: 5,
                error: None,
            },
        )
    }

    fn revoked() -> Envelope {
        Envelope::new(
            "/t",
            "acme",
            "tokens",
            &TokensRevoked {
                token_ids: vec!["t".into()],
                reason: "test".into(),
            },
        )
    }

    #[test]
    fn the_filtered_read_names_the_query_event_type() {
        assert!(READ_WITHOUT_QUERIES.contains(&format!("type <> '{}'", QueryExecuted::TYPE)));
    }

    #[tokio::test]
    async fn readers_that_skip_query_events_use_the_index_and_see_every_other_event() {
        let dir = tempfile::tempdir().unwrap();
        let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
        let (q1, r1, q2, q3, r2, q4) = (query(), revoked(), query(), query(), revoked(), query());
        let mut tx = cp.begin().await.unwrap();
        outbox::append(
            &mut tx,
            cp.backend(),
            &[q1.clone(), r1.clone(), q2, q3, r2.clone(), q4.clone()],
        )
        .await
        .unwrap();
        cp.commit(tx).await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {READ_WITHOUT_QUERIES}"
        )))
        .bind(0i64)
        .bind(10i64)
        .fetch_all(cp.pool())
        .await
        .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.3.contains("USING INDEX events_without_queries")),
            "{plan:?}"
        );

        let skip_queries = |t: &str| t != QUERY_EXECUTED;
        let batch = read_after(&cp, 0, 10, &skip_queries).await.unwrap();
        let ids: Vec<&str> = batch.events.iter().map(|(_, e)| e.id.as_str()).collect();
        assert_eq!(ids, [r1.id.as_str(), r2.id.as_str()]);
        // `last` is the newest event it read: the second revocation (seq 5), not the head.
        assert_eq!(batch.last, Some(5));
        let after = read_after(&cp, 5, 10, &skip_queries).await.unwrap();
        assert_eq!((after.last, after.events.len()), (None, 0));
        // A limit cuts the filtered read at the limit's worth of other events.
        let first = read_after(&cp, 0, 1, &skip_queries).await.unwrap();
        assert_eq!((first.last, first.events.len()), (Some(2), 1));

        let all = read_after(&cp, 0, 10, &|_: &str| true).await.unwrap();
        assert_eq!(all.last, Some(6));
        assert_eq!(all.events.len(), 6);
        assert_eq!(all.events[0].1.id, q1.id);
        assert_eq!(all.events[5].1.id, q4.id);
        cp.close().await;
    }
}
