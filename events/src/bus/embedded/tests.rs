//! Tests of the embedded bus: filtered reads, the hand-off, and one consumer over every writer.

use super::*;
use crate::{EventPayload, HandlerError, QueryExecuted, TokensRevoked, Tx, outbox};

/// A `query.executed` event (also used by the batcher's tests).
pub(crate) fn query() -> Envelope {
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
    .bind(i64::MAX)
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
    let batch = read_after(&cp, 0, i64::MAX, 10, &skip_queries)
        .await
        .unwrap();
    let ids: Vec<&str> = batch.events.iter().map(|(_, e)| e.id.as_str()).collect();
    assert_eq!(ids, [r1.id.as_str(), r2.id.as_str()]);
    // `last` is the newest event it read: the second revocation (seq 5), not the head.
    assert_eq!(batch.last, Some(5));
    let after = read_after(&cp, 5, i64::MAX, 10, &skip_queries)
        .await
        .unwrap();
    assert_eq!((after.last, after.events.len()), (None, 0));
    // A limit cuts the filtered read at the limit's worth of other events.
    let first = read_after(&cp, 0, i64::MAX, 1, &skip_queries)
        .await
        .unwrap();
    assert_eq!((first.last, first.events.len()), (Some(2), 1));

    let all = read_after(&cp, 0, i64::MAX, 10, &|_: &str| true)
        .await
        .unwrap();
    assert_eq!(all.last, Some(6));
    assert_eq!(all.events.len(), 6);
    assert_eq!(all.events[0].1.id, q1.id);
    assert_eq!(all.events[5].1.id, q4.id);
    // An upper bound stops the read before it; a read that stops at its limit is full.
    let between = read_after(&cp, 1, 4, 10, &|_: &str| true).await.unwrap();
    assert_eq!(
        (between.last, between.events.len(), between.full),
        (Some(3), 2, false)
    );
    assert!(
        read_after(&cp, 0, i64::MAX, 6, &|_: &str| true)
            .await
            .unwrap()
            .full
    );
    cp.close().await;
}

/// Appends `events` as the query-event batcher does: numbered and handed over.
async fn hand_off(cp: &ControlPlane, events: &[Envelope]) -> Option<i64> {
    let mut tx = cp.begin().await.unwrap();
    let first = outbox::append_numbered(&mut tx, cp.backend(), events)
        .await
        .unwrap();
    cp.commit_handing_off(tx, first, events.into())
        .await
        .unwrap();
    first
}

async fn append(cp: &ControlPlane, events: &[Envelope]) {
    let mut tx = cp.begin().await.unwrap();
    outbox::append(&mut tx, cp.backend(), events).await.unwrap();
    cp.commit(tx).await.unwrap();
}

fn ids(step: &Step) -> Vec<(bool, String)> {
    step.segments
        .iter()
        .flat_map(|s| {
            let handed = matches!(s, Segment::Handed(_));
            s.iter().map(move |e| (handed, e.id.clone()))
        })
        .collect()
}

#[tokio::test]
async fn readers_of_query_events_take_handed_batches_and_read_only_what_lies_between() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
    let (q1, q2, r1, q3, q4) = (query(), query(), revoked(), query(), query());
    assert_eq!(hand_off(&cp, &[q1.clone(), q2.clone()]).await, Some(1));
    append(&cp, std::slice::from_ref(&r1)).await;
    assert_eq!(hand_off(&cp, std::slice::from_ref(&q3)).await, Some(4));
    assert_eq!(hand_off(&cp, std::slice::from_ref(&q4)).await, Some(5));
    // An id already logged: the batch is in the log, but its numbers are unknown.
    assert_eq!(hand_off(&cp, std::slice::from_ref(&q4)).await, None);

    let all = |_: &str| true;
    let step = next_step(&cp, 0, &all).await.unwrap();
    assert_eq!(step.last, Some(2));
    assert_eq!(ids(&step), [(true, q1.id.clone()), (true, q2.id.clone())]);
    // The revocation between comes from the log, then both batches that follow it.
    let step = next_step(&cp, 2, &all).await.unwrap();
    assert_eq!(step.last, Some(5));
    let expected = [
        (false, r1.id.clone()),
        (true, q3.id.clone()),
        (true, q4.id.clone()),
    ];
    assert_eq!(ids(&step), expected);
    // Past the newest batch held: the log.
    let step = next_step(&cp, 5, &all).await.unwrap();
    assert_eq!((step.last, ids(&step).len()), (None, 0));
    // Only what the reader wants is in its segments; the offset still covers the rest.
    let queries_only = |t: &str| t == QUERY_EXECUTED;
    let step = next_step(&cp, 2, &queries_only).await.unwrap();
    assert_eq!(step.last, Some(5));
    assert_eq!(ids(&step), [(true, q3.id.clone()), (true, q4.id.clone())]);
    let revocations_only = |t: &str| t != QUERY_EXECUTED;
    let step = next_step(&cp, 0, &revocations_only).await.unwrap();
    assert_eq!(step.last, Some(2));
    assert!(ids(&step).is_empty());
    cp.close().await;
}

/// Records what it was handed, in order.
#[derive(Default)]
struct Recorder {
    seen: parking_lot::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Handler for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn types(&self) -> &'static [&'static str] {
        &["query.executed", "token.revoked"]
    }
    async fn handle(&self, _tx: &mut Tx, _event: &Envelope) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn committed(&self, events: &[Envelope]) {
        self.seen.lock().extend(events.iter().map(|e| e.id.clone()));
    }
}

#[tokio::test]
async fn a_consumer_sees_the_whole_log_once_in_order_whoever_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
    // Another process on the same control plane: its batches are not handed over here.
    let other = ControlPlane::connect(None, dir.path()).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let consumer = tokio::spawn(consume(cp.clone(), recorder.clone(), shutdown.clone()));
    for round in 0..40 {
        let batch: Vec<Envelope> = (0..1 + round % 7).map(|_| query()).collect();
        match round % 4 {
            0 | 1 => {
                hand_off(&cp, &batch).await;
            }
            2 => append(&cp, &[revoked(), query()]).await,
            _ => {
                hand_off(&other, &batch).await;
            }
        }
        if round % 5 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let logged: Vec<String> = sqlx::query_scalar("SELECT id FROM events ORDER BY seq")
        .fetch_all(cp.pool())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while recorder.seen.lock().len() < logged.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    consumer.await.unwrap();
    assert_eq!(*recorder.seen.lock(), logged);
    cp.close().await;
    other.close().await;
}

/// Logs each `handle_batch` (`true`) and `committed` (`false`) call, with its time: a
/// transaction's calls are its segments' `handle_batch`es, then their `committed`s.
#[derive(Default)]
struct Steps {
    calls: parking_lot::Mutex<Vec<(bool, std::time::Instant, usize)>>,
}

#[async_trait::async_trait]
impl Handler for Steps {
    fn name(&self) -> &'static str {
        "steps"
    }
    fn types(&self) -> &'static [&'static str] {
        &["query.executed"]
    }
    async fn handle(&self, _tx: &mut Tx, _event: &Envelope) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn handle_batch(&self, _tx: &mut Tx, events: &[Envelope]) -> Result<(), HandlerError> {
        let call = (true, std::time::Instant::now(), events.len());
        self.calls.lock().push(call);
        Ok(())
    }
    async fn committed(&self, events: &[Envelope]) {
        let call = (false, std::time::Instant::now(), events.len());
        self.calls.lock().push(call);
    }
}

#[tokio::test]
async fn under_load_a_reader_of_query_events_waits_a_linger_after_each_big_commit() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
    let steps = Arc::new(Steps::default());
    let shutdown = CancellationToken::new();
    let consumer = tokio::spawn(consume(cp.clone(), steps.clone(), shutdown.clone()));
    // Batches as the batcher commits them under load, each big enough to linger after.
    let (batches, size) = (30, LINGER_FROM + 16);
    let committed = || {
        let calls = steps.calls.lock();
        calls.iter().filter(|c| !c.0).map(|c| c.2).sum::<usize>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let until = |n: usize| async move {
        while committed() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    for i in 0..batches {
        let batch: Vec<Envelope> = (0..size).map(|_| query()).collect();
        hand_off(&cp, &batch).await;
        if i == 0 {
            // The first transaction is under way before the rest arrive.
            until(size).await;
        }
    }
    until(batches * size).await;
    shutdown.cancel();
    consumer.await.unwrap();
    let calls = steps.calls.lock().clone();
    assert_eq!(committed(), batches * size, "every event is applied once");
    // A transaction starts at a `handle_batch` that follows a `committed`: each held at
    // least LINGER_FROM events, so the next one's first call comes LINGER or more after its
    // last `committed`.
    let gaps: Vec<Duration> = calls
        .windows(2)
        .filter(|w| !w[0].0 && w[1].0)
        .map(|w| w[1].1 - w[0].1)
        .collect();
    assert!(
        !gaps.is_empty(),
        "the batches came faster than one transaction"
    );
    assert!(gaps.iter().all(|g| *g >= LINGER), "{gaps:?}");
    cp.close().await;
}

#[tokio::test]
async fn a_step_with_more_waiting_after_it_is_behind_and_one_at_the_head_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
    let all = |_: &str| true;
    // Held batches with another writer's event between: the first step stops at the gap.
    assert_eq!(hand_off(&cp, &[query(), query()]).await, Some(1));
    append(&cp, &[revoked()]).await;
    assert_eq!(hand_off(&cp, &[query()]).await, Some(4));
    let step = next_step(&cp, 0, &all).await.unwrap();
    assert_eq!((step.last, step.behind), (Some(2), true));
    let step = next_step(&cp, 2, &all).await.unwrap();
    assert_eq!((step.last, step.behind), (Some(4), false));
    // A read of the log that stops at its limit is behind too.
    let backlog: Vec<Envelope> = (0..BATCH).map(|_| query()).collect();
    append(&cp, &backlog).await;
    let step = next_step(&cp, 4, &all).await.unwrap();
    assert_eq!((step.last, step.behind), (Some(4 + BATCH), true));
    append(&cp, &[query()]).await;
    let step = next_step(&cp, 4 + BATCH, &all).await.unwrap();
    assert_eq!((step.last, step.behind), (Some(5 + BATCH), false));
    cp.close().await;
}
