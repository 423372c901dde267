//! Waiting for a busy database happens on the async runtime: waiters hold no blocking
//! thread, and a waiter that gives up leaves the queue without running.

use std::time::{Duration, Instant};

use super::{storage, with_table};
use crate::{Role, Statement};

/// A read that keeps SQLite busy for a while (a few hundred ms in a debug build).
const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                    WHERE x < 300000) SELECT count(*) AS n FROM c";

/// A runtime whose blocking pool has two threads: easy to pin, if waiters held them.
fn small_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_queue_on_one_database_does_not_hold_up_another() {
    small_runtime().block_on(async {
        let (_dir, s) = storage();
        let busy = with_table(&s, "busy").await;
        let idle = with_table(&s, "idle").await;
        let t = Instant::now();
        s.query(&busy, Role::Read, Statement::new(SLOW))
            .await
            .unwrap();
        let slow = t.elapsed();
        let flood: Vec<_> = (0..12)
            .map(|_| {
                let (s, busy) = (s.clone(), busy.clone());
                tokio::spawn(async move { s.query(&busy, Role::Read, Statement::new(SLOW)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        s.query(&idle, Role::Read, Statement::new("SELECT 1"))
            .await
            .unwrap();
        let waited = t.elapsed();
        // Were the waiters on blocking threads, `SELECT 1` would queue behind about a
        // dozen slow queries.
        assert!(
            waited < slow * 3,
            "SELECT 1 on another database took {waited:?} (one slow query: {slow:?})"
        );
        for q in flood {
            q.await.unwrap().unwrap();
        }
    });
}

#[test]
fn a_waiter_that_gives_up_never_runs() {
    small_runtime().block_on(async {
        let (_dir, s) = storage();
        let db = with_table(&s, "db").await;
        let slow = {
            let (s, db) = (s.clone(), db.clone());
            tokio::spawn(async move { s.query(&db, Role::Read, Statement::new(SLOW)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let insert = s.query(
            &db,
            Role::Write,
            Statement::new("INSERT INTO t(v) VALUES ('late')"),
        );
        let gave_up = tokio::time::timeout(Duration::from_millis(10), insert).await;
        assert!(gave_up.is_err(), "the insert should still be waiting");
        slow.await.unwrap().unwrap();
        let r = s
            .query(
                &db,
                Role::Read,
                Statement::new("SELECT count(*) AS n FROM t"),
            )
            .await
            .unwrap();
        assert_eq!(r.rows[0]["n"], 0, "the abandoned insert ran");
    });
}
