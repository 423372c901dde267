//! The bus and its durable consumers, on whichever backends the environment selects
//! (embedded log, or Postgres + NATS JetStream): each event takes effect exactly once
//! across retries, restarts and duplicate deliveries.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use persql_events::{
    Bus, BusConfig, ControlPlane, Envelope, EventPayload, Handler, HandlerError, Tx, outbox,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::support::Backends;

#[derive(Serialize, Deserialize)]
struct Ping {
    n: i64,
}

impl EventPayload for Ping {
    const TYPE: &'static str = "test.ping";
}

/// Records each event's effect in a table whose primary key rejects a second application.
struct Recorder {
    fail_once_on: i64,
    failed: AtomicBool,
}

#[async_trait]
impl Handler for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn types(&self) -> &'static [&'static str] {
        &["test.ping"]
    }
    async fn handle(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError> {
        let ping: Ping = event
            .decode::<Ping>()
            .expect("ping")
            .map_err(|e| HandlerError(e.to_string()))?;
        if ping.n == self.fail_once_on && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(HandlerError("injected transient failure".into()));
        }
        sqlx::query("INSERT INTO effects (event_id, n) VALUES ($1, $2)")
            .bind(&event.id)
            .bind(ping.n)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

async fn append(cp: &ControlPlane, range: std::ops::Range<i64>) -> Vec<Envelope> {
    let events: Vec<Envelope> = range
        .map(|n| Envelope::new("/test", "acme", "pings", &Ping { n }))
        .collect();
    let mut tx = cp.begin().await.expect("begin");
    outbox::append(&mut tx, cp.backend(), &events)
        .await
        .expect("append");
    cp.commit(tx).await.expect("commit");
    events
}

async fn effects(cp: &ControlPlane) -> (i64, i64) {
    let r = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT n) FROM effects")
        .fetch_one(cp.pool())
        .await
        .expect("count");
    (r.get(0), r.get(1))
}

async fn wait_for(cp: &ControlPlane, n: i64) {
    for _ in 0..300 {
        if effects(cp).await.0 >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "consumer did not reach {n} effects: {:?}",
        effects(cp).await
    );
}

/// This environment's backends, a fresh control plane (in a temp dir kept alive by the
/// caller) and the `effects` table the recorder writes.
async fn control_plane_with_effects() -> (Backends, tempfile::TempDir, ControlPlane) {
    let backends = Backends::fresh().await;
    let dir = tempfile::tempdir().expect("tmp");
    let cp = ControlPlane::connect(backends.database_url.as_deref(), dir.path())
        .await
        .expect("control plane");
    sqlx::query("CREATE TABLE effects (event_id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(cp.pool())
        .await
        .expect("table");
    (backends, dir, cp)
}

#[tokio::test]
async fn consumers_apply_each_event_exactly_once_across_failures_restarts_and_duplicates() {
    let (backends, _dir, cp) = control_plane_with_effects().await;
    let config = BusConfig {
        nats_url: backends.nats_url.clone(),
        prefix: backends.nats_prefix.clone(),
    };
    let bus = Bus::connect(cp.clone(), &config).await.expect("bus");
    let process = CancellationToken::new();
    let _relay = bus.spawn_relay(process.clone());
    let recorder = Arc::new(Recorder {
        fail_once_on: 7,
        failed: AtomicBool::new(false),
    });

    let first = append(&cp, 0..20).await;
    let run = CancellationToken::new();
    let consumer = bus.spawn_consumer(recorder.clone(), run.clone());
    wait_for(&cp, 20).await;
    assert!(
        recorder.failed.load(Ordering::SeqCst),
        "the injected failure happened and was retried"
    );
    run.cancel();
    consumer.await.expect("consumer stops");

    // Events appended while the consumer is down are applied when it resumes.
    append(&cp, 20..30).await;
    let run = CancellationToken::new();
    let _consumer = bus.spawn_consumer(recorder.clone(), run.clone());
    wait_for(&cp, 30).await;

    if let Some(url) = &backends.nats_url {
        // A duplicate delivery (same event, published again outside JetStream's own
        // duplicate window, i.e. under another message id) is recognised and skipped.
        let client = async_nats::connect(url).await.expect("nats");
        let js = async_nats::jetstream::new(client);
        let dup = &first[3];
        let body = serde_json::to_vec(dup).expect("json");
        js.publish(dup.nats_subject(&backends.nats_prefix), body.into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    } else {
        // The embedded log is the bus. A second append of an event already logged (a retried
        // outbox write) is a no-op there: ids are unique in the log, so it is never delivered
        // twice (the effects below stay exact).
        let mut tx = cp.begin().await.expect("begin");
        outbox::append(&mut tx, cp.backend(), std::slice::from_ref(&first[3]))
            .await
            .expect("append again");
        cp.commit(tx).await.expect("commit");
        let copies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE id = $1")
            .bind(&first[3].id)
            .fetch_one(cp.pool())
            .await
            .expect("count");
        assert_eq!(copies, 1, "the log holds one copy of the event");
    }
    append(&cp, 30..31).await;
    wait_for(&cp, 31).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        effects(&cp).await,
        (31, 31),
        "every event applied exactly once"
    );
    run.cancel();
    process.cancel();
}

#[derive(Serialize, Deserialize)]
struct Other {
    n: i64,
}

impl EventPayload for Other {
    const TYPE: &'static str = "test.other";
}

async fn stored_offset(cp: &ControlPlane) -> Option<i64> {
    sqlx::query("SELECT seq FROM consumer_offsets WHERE consumer = 'recorder'")
        .fetch_optional(cp.pool())
        .await
        .expect("offset")
        .map(|r| r.get(0))
}

/// The embedded log (on this environment's control plane): a consumer passing over events
/// it does not handle stores its offset lazily, and at shutdown at the latest; wanted events
/// around them still apply exactly once across restarts.
#[tokio::test]
async fn embedded_consumers_store_skipped_offsets_lazily_and_at_shutdown() {
    let (_backends, _dir, cp) = control_plane_with_effects().await;
    let bus = Bus::connect(cp.clone(), &BusConfig::default())
        .await
        .expect("embedded bus");
    let recorder = Arc::new(Recorder {
        fail_once_on: -1,
        failed: AtomicBool::new(false),
    });
    append(&cp, 0..3).await;
    let run = CancellationToken::new();
    let consumer = bus.spawn_consumer(recorder.clone(), run.clone());
    wait_for(&cp, 3).await;

    // Only events the recorder does not handle, in several commits.
    for n in 0..5 {
        let mut tx = cp.begin().await.expect("begin");
        let e = Envelope::new("/test", "acme", "others", &Other { n });
        outbox::append(&mut tx, cp.backend(), &[e])
            .await
            .expect("append");
        cp.commit(tx).await.expect("commit");
    }
    let last: i64 = sqlx::query("SELECT MAX(seq) FROM events")
        .fetch_one(cp.pool())
        .await
        .expect("max")
        .get(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.cancel();
    consumer.await.expect("consumer stops");
    assert_eq!(
        stored_offset(&cp).await,
        Some(last),
        "shutdown stores how far the skipped events reach"
    );

    // Restarted: nothing is applied twice, and a new wanted event applies once.
    append(&cp, 3..4).await;
    let run = CancellationToken::new();
    let consumer = bus.spawn_consumer(recorder.clone(), run.clone());
    wait_for(&cp, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        effects(&cp).await,
        (4, 4),
        "every ping applied exactly once"
    );
    let now: i64 = sqlx::query("SELECT MAX(seq) FROM events")
        .fetch_one(cp.pool())
        .await
        .expect("max")
        .get(0);
    assert_eq!(
        stored_offset(&cp).await,
        Some(now),
        "applying a wanted event stores the offset with its effect"
    );
    run.cancel();
    consumer.await.expect("consumer stops");
}
