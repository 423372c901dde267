//! The metering consumer against a real control plane: exactly-once charging, balances,
//! usage.

use persql_events::{ControlPlane, EventPayload};
use sqlx::Row;

use super::*;

fn query(billed: &str) -> Envelope {
    Envelope::new(
        "/t",
        "acme",
        "databases/d",
        &QueryExecuted {
            database_id: "d".into(),
            namespace_id: billed.into(),
            billed_namespace_id: billed.into(),
            token_id: "t".into(),
            role: "read".into(),
            statements: 1,
            rows_read: 0,
            rows_written: 0,
            bytes: 0,
            duration_us: 1,
            error: None,
        },
    )
}

async fn apply(cp: &ControlPlane, handler: &MeteringHandler, events: &[Envelope]) {
    let mut tx = cp.begin().await.unwrap();
    handler.handle_batch(&mut tx, events).await.unwrap();
    cp.commit(tx).await.unwrap();
}

async fn charged(cp: &ControlPlane) -> (i64, i64, i64) {
    let balance: i64 = sqlx::query("SELECT balance_nanos FROM balances WHERE namespace_id = 'n'")
        .fetch_one(cp.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let ledger: i64 = sqlx::query("SELECT COUNT(*) FROM ledger")
        .fetch_one(cp.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let queries: i64 = sqlx::query("SELECT SUM(queries) FROM usage_daily")
        .fetch_one(cp.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    (balance, ledger, queries)
}

#[tokio::test]
async fn batches_longer_than_a_statement_are_charged_once_each_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
    let handler = MeteringHandler::replaying(Prices::default(), cp.backend());
    // 700 events: statements of 256, 256, 128, 32, 16, 8 and 4 rows.
    let first: Vec<Envelope> = (0..700).map(|_| query("n")).collect();
    apply(&cp, &handler, &first).await;
    let once = charged(&cp).await;
    assert_eq!((once.1, once.2), (700, 700));
    // 300 of them again, with 301 new ones in between: only the new ones are charged.
    let fresh: Vec<Envelope> = (0..301).map(|_| query("n")).collect();
    let mut mixed: Vec<Envelope> = first[..300].to_vec();
    mixed.extend(fresh);
    mixed.rotate_left(150);
    apply(&cp, &handler, &mixed).await;
    let (balance, ledger, queries) = charged(&cp).await;
    assert_eq!((ledger, queries), (1001, 1001));
    assert_eq!(balance * 700, once.0 * 1001);
    cp.close().await;
}

#[tokio::test]
async fn redelivered_and_duplicated_events_are_charged_once() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
    let handler = MeteringHandler::replaying(Prices::default(), cp.backend());
    let (a, b, c) = (query("n"), query("n"), query("n"));
    assert_eq!(QueryExecuted::TYPE, "query.executed");
    apply(&cp, &handler, &[a.clone(), b.clone()]).await;
    let once = charged(&cp).await;
    assert_eq!((once.1, once.2), (2, 2));
    // A redelivery of the whole batch changes nothing.
    apply(&cp, &handler, &[a.clone(), b.clone()]).await;
    assert_eq!(charged(&cp).await, once);
    // Old and new mixed, and one id twice in the same batch: only `c` is charged, once.
    apply(&cp, &handler, &[a, c.clone(), b, c]).await;
    let (balance, ledger, queries) = charged(&cp).await;
    assert_eq!((ledger, queries), (3, 3));
    assert_eq!(balance - once.0, once.0 / 2);
    cp.close().await;
}
