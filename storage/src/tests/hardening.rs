//! Issue #21: no request aborts the process, outgrows its memory bounds, outlives its
//! deadline, or fools the authorizer.

use std::time::{Duration, Instant};

use crate::{Limits, Role, Statement, StorageError};

use super::{storage, storage_with, with_table};

#[tokio::test]
async fn thousands_of_statements_are_refused_without_recursion() {
    let (_dir, s) = storage();
    let db = with_table(&s, "many").await;
    // rusqlite's tail check recursed once per statement: this overflowed the stack.
    let err = s
        .query(&db, Role::Read, Statement::new("SELECT 1;".repeat(8000)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Sql(m) if m.contains("one statement")),
        "{err:?}"
    );
    // One statement with trailing semicolons, or semicolons inside it, still runs.
    for sql in [
        "SELECT 1;;; ;".to_owned(),
        format!("SELECT 1{}", ";".repeat(8000)),
        "SELECT ';' AS s -- ;".to_owned(),
    ] {
        let r = s.query(&db, Role::Read, Statement::new(sql.clone())).await;
        assert!(r.is_ok(), "{sql}: {r:?}");
    }
    let trigger = "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;";
    s.query(&db, Role::Admin, Statement::new(trigger))
        .await
        .unwrap();
}

#[tokio::test]
async fn huge_values_fail_in_sqlite_instead_of_being_materialised() {
    let (_dir, s) = storage();
    let db = with_table(&s, "huge").await;
    // printf() answers NULL for what it may not make.
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT printf('%.*c', 999999990, 'x') AS p"),
        )
        .await;
    match r {
        Ok(r) => assert_eq!(r.rows[0]["p"], serde_json::Value::Null),
        Err(e) => panic!("{e:?}"),
    }
    for sql in [
        "SELECT zeroblob(999999999)",
        "SELECT length(randomblob(300000000))",
    ] {
        let err = s
            .query(&db, Role::Read, Statement::new(sql))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::Sql(m) if m.contains("too big")),
            "{sql}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_batch_result_is_capped_as_a_whole() {
    let (_dir, s) = storage_with(Limits {
        max_result_bytes: 10_000,
        max_batch_result_bytes: 15_000,
        ..Limits::default()
    });
    let db = with_table(&s, "batch").await;
    let one = || Statement::new("SELECT zeroblob(6000) AS b");
    s.batch(&db, Role::Read, vec![one()]).await.unwrap();
    let err = s
        .batch(&db, Role::Read, vec![one(), one(), one()])
        .await
        .unwrap_err();
    assert_eq!(err.index, 1);
    assert!(matches!(err.error, StorageError::ResultTooLarge), "{err:?}");
}

#[tokio::test]
async fn one_deadline_covers_every_statement_of_a_batch() {
    let limit = Duration::from_millis(300);
    let (_dir, s) = storage_with(Limits {
        query_timeout: limit,
        ..Limits::default()
    });
    let db = with_table(&s, "slow").await;
    // Each statement is a handful of VM steps (the progress handler never runs) but a few
    // milliseconds of work; together they take seconds.
    let stmts = vec![Statement::new("SELECT length(randomblob(4000000))"); 400];
    let start = Instant::now();
    let err = s.batch(&db, Role::Read, stmts).await.unwrap_err();
    assert!(matches!(err.error, StorageError::Timeout), "{err:?}");
    assert!(start.elapsed() < limit * 4, "{:?}", start.elapsed());
}

#[tokio::test]
async fn a_comment_does_not_make_an_ordinary_table_a_shadow_table() {
    let (_dir, s) = storage();
    let db = with_table(&s, "fooled").await;
    for sql in [
        "CREATE VIRTUAL TABLE x /* using fts5 */ USING rtree(id, a, b)",
        "CREATE TABLE x_data(v)",
    ] {
        s.query(&db, Role::Admin, Statement::new(sql))
            .await
            .unwrap();
    }
    for fresh in [false, true] {
        if fresh {
            // Eviction waits for the connection's statement in flight: a blocking wait.
            let (inner, loc) = (s.inner.clone(), db.clone());
            tokio::task::spawn_blocking(move || inner.evict(&loc))
                .await
                .unwrap();
        }
        for sql in ["INSERT INTO x_data VALUES (1)", "DELETE FROM x_data"] {
            let err = s
                .query(&db, Role::Read, Statement::new(sql))
                .await
                .unwrap_err();
            assert!(
                matches!(err, StorageError::StatementNotAllowed(_)),
                "{sql}: {err:?}"
            );
        }
    }
    // The real shadow tables are still what the module writes when a reader connects.
    let r = s
        .query(&db, Role::Read, Statement::new("SELECT id FROM x"))
        .await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn describe_is_bounded_in_size_and_time() {
    let (_dir, s) = storage_with(Limits {
        max_result_bytes: 20_000,
        ..Limits::default()
    });
    let db = with_table(&s, "schema").await;
    let columns: Vec<String> = (0..100)
        .map(|i| format!("column_number_{i} TEXT"))
        .collect();
    for i in 0..10 {
        let sql = format!("CREATE TABLE wide_{i} ({})", columns.join(", "));
        s.query(&db, Role::Admin, Statement::new(sql))
            .await
            .unwrap();
    }
    let err = s.describe(&db).await.unwrap_err();
    assert!(matches!(err, StorageError::ResultTooLarge), "{err:?}");

    let (_dir, s) = storage_with(Limits {
        query_timeout: Duration::ZERO,
        ..Limits::default()
    });
    let l = super::loc("late");
    s.create(&l, None).await.unwrap();
    let err = s.describe(&l).await.unwrap_err();
    assert!(matches!(err, StorageError::Timeout), "{err:?}");
}
