//! Execution: values, parameters, limits, timeouts, batches.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{loc, storage, storage_with, with_table};
use crate::{Limits, Params, Role, Statement, StorageError};

fn positional(sql: &str, values: Vec<serde_json::Value>) -> Statement {
    Statement::with_params(sql, Params::Positional(values))
}

#[tokio::test]
async fn select_returns_typed_json_rows() {
    let (_dir, s) = storage();
    let db = with_table(&s, "vals").await;
    let sql =
        "SELECT NULL AS n, 42 AS i, 9007199254740993 AS big, 1.5 AS r, 'x' AS t, x'0001' AS b";
    let r = s.query(&db, Role::Read, Statement::new(sql)).await.unwrap();
    assert_eq!(r.columns, ["n", "i", "big", "r", "t", "b"]);
    assert_eq!(
        serde_json::Value::Object(r.rows[0].clone()),
        json!({"n": null, "i": 42, "big": "9007199254740993", "r": 1.5, "t": "x", "b": {"base64": "AAE="}})
    );
    assert_eq!(r.changes, 0);
}

#[tokio::test]
async fn positional_and_named_params_bind_and_round_trip() {
    let (_dir, s) = storage();
    let db = with_table(&s, "params").await;
    let ins = positional("INSERT INTO t(v) VALUES (?)", vec![json!("a")]);
    let r = s.query(&db, Role::Write, ins).await.unwrap();
    assert_eq!((r.changes, r.rows_written, r.last_insert_rowid), (1, 1, 1));
    let mut named = serde_json::Map::new();
    named.insert("v".into(), json!("a"));
    named.insert("@blob".into(), json!({"base64": "AAE="}));
    let sel = Statement::with_params(
        "SELECT id, :v AS v, @blob AS b FROM t WHERE v = $v",
        Params::Named(named),
    );
    let r = s.query(&db, Role::Read, sel).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(r.rows[0].clone()),
        json!({"id": 1, "v": "a", "b": {"base64": "AAE="}})
    );
}

#[tokio::test]
async fn bad_params_are_invalid_params() {
    let (_dir, s) = storage();
    let db = with_table(&s, "badp").await;
    let named = |pairs: &[(&str, serde_json::Value)]| {
        Params::Named(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    };
    let cases = [
        positional("SELECT ?, ?", vec![json!(1)]),
        positional("SELECT ?", vec![json!(1), json!(2)]),
        Statement::new("SELECT ?"),
        positional("SELECT ?", vec![json!([1, 2])]),
        positional("SELECT ?", vec![json!({"k": 1})]),
        Statement::with_params("SELECT :a", named(&[("a", json!(1)), ("b", json!(2))])),
        Statement::with_params("SELECT :a, :b", named(&[("a", json!(1))])),
        Statement::with_params("SELECT ?", named(&[("a", json!(1))])),
    ];
    for stmt in cases {
        let err = s.query(&db, Role::Read, stmt.clone()).await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidParams(_)),
            "{stmt:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn tenant_sql_errors_are_sql_errors() {
    let (_dir, s) = storage();
    let db = with_table(&s, "sqlerr").await;
    s.query(
        &db,
        Role::Write,
        Statement::new("INSERT INTO t(id, v) VALUES (1, 'a')"),
    )
    .await
    .unwrap();
    for sql in [
        "SELEC 1",
        "SELECT * FROM missing",
        "INSERT INTO t(id, v) VALUES (1, 'dup')",
        "SELECT 1; SELECT 2",
        "-- only a comment",
    ] {
        let err = s
            .query(&db, Role::Write, Statement::new(sql))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Sql(_)), "{sql}: {err:?}");
    }
}

#[tokio::test]
async fn querying_a_missing_database_is_not_found() {
    let (_dir, s) = storage();
    let err = s
        .query(&loc("nope"), Role::Read, Statement::new("SELECT 1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound));
    assert!(!s.exists(&loc("nope")));
}

#[tokio::test]
async fn size_limits_give_specific_errors() {
    let limits = Limits {
        max_sql_bytes: 100,
        max_params: 2,
        max_result_rows: 3,
        max_result_bytes: 2_000,
        ..Limits::default()
    };
    let (_dir, s) = storage_with(limits);
    let db = with_table(&s, "limits").await;
    let long = format!("SELECT '{}'", "x".repeat(200));
    assert!(matches!(
        s.query(&db, Role::Read, Statement::new(long)).await,
        Err(StorageError::SqlTooLong)
    ));
    let many = positional("SELECT ?, ?, ?", vec![json!(1), json!(2), json!(3)]);
    assert!(matches!(
        s.query(&db, Role::Read, many).await,
        Err(StorageError::TooManyParams)
    ));
    let rows =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 4) SELECT x FROM c";
    assert!(matches!(
        s.query(&db, Role::Read, Statement::new(rows)).await,
        Err(StorageError::ResultTooLarge)
    ));
    let bytes = "SELECT zeroblob(5000) AS b";
    assert!(matches!(
        s.query(&db, Role::Read, Statement::new(bytes)).await,
        Err(StorageError::ResultTooLarge)
    ));
}

#[tokio::test]
async fn dml_returning_too_many_rows_is_rolled_back() {
    let limits = Limits {
        max_result_rows: 2,
        ..Limits::default()
    };
    let (_dir, s) = storage_with(limits);
    let db = with_table(&s, "ret").await;
    let sql = "INSERT INTO t(v) VALUES ('a'), ('b'), ('c') RETURNING id";
    assert!(matches!(
        s.query(&db, Role::Write, Statement::new(sql)).await,
        Err(StorageError::ResultTooLarge)
    ));
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT count(*) AS n FROM t"),
        )
        .await
        .unwrap();
    assert_eq!(r.rows[0]["n"], json!(0));
}

#[tokio::test]
async fn counters_include_trigger_writes_and_full_scans() {
    let (_dir, s) = storage();
    let db = with_table(&s, "count").await;
    let setup = [
        "CREATE TABLE log(v TEXT)",
        "CREATE TRIGGER tl AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.v); END",
    ];
    for sql in setup {
        s.query(&db, Role::Admin, Statement::new(sql))
            .await
            .unwrap();
    }
    let r = s
        .query(
            &db,
            Role::Write,
            Statement::new("INSERT INTO t(v) VALUES ('a'), ('b')"),
        )
        .await
        .unwrap();
    assert_eq!((r.changes, r.rows_written, r.last_insert_rowid), (2, 4, 2));
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT count(*) FROM log WHERE v <> 'z'"),
        )
        .await
        .unwrap();
    assert_eq!(r.rows_read, 1 + 1, "one row returned plus the scan steps");
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT v FROM t WHERE id = 1"),
        )
        .await
        .unwrap();
    assert_eq!((r.rows_read, r.rows_written), (1, 0));
}

#[tokio::test]
async fn a_runaway_query_times_out_while_another_database_answers() {
    let limits = Limits {
        query_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (_dir, s) = storage_with(limits);
    let slow_db = with_table(&s, "slow").await;
    let fast_db = with_table(&s, "fast").await;
    let sql =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
    let start = Instant::now();
    let slow = tokio::spawn({
        let s = s.clone();
        async move { s.query(&slow_db, Role::Read, Statement::new(sql)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast = s
        .query(&fast_db, Role::Read, Statement::new("SELECT 1"))
        .await
        .unwrap();
    assert_eq!(fast.rows.len(), 1);
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "the other database answered meanwhile"
    );
    assert!(matches!(slow.await.unwrap(), Err(StorageError::Timeout)));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_full_database_reports_database_full_and_stays_usable() {
    let limits = Limits {
        max_database_bytes: 64 * 1024,
        ..Limits::default()
    };
    let (_dir, s) = storage_with(limits);
    let db = with_table(&s, "full").await;
    let sql = "INSERT INTO t(v) SELECT hex(randomblob(1000)) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 200) SELECT x FROM c)";
    assert!(matches!(
        s.query(&db, Role::Write, Statement::new(sql)).await,
        Err(StorageError::DatabaseFull)
    ));
    s.query(
        &db,
        Role::Write,
        Statement::new("INSERT INTO t(v) VALUES ('small')"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_batch_is_all_or_nothing() {
    let (_dir, s) = storage();
    let db = with_table(&s, "batch").await;
    let stmts = vec![
        Statement::new("INSERT INTO t(id, v) VALUES (1, 'a')"),
        Statement::new("INSERT INTO t(id, v) VALUES (1, 'dup')"),
    ];
    let err = s.batch(&db, Role::Write, stmts).await.unwrap_err();
    assert_eq!(err.index, 1);
    assert!(matches!(err.error, StorageError::Sql(_)));
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT count(*) AS n FROM t"),
        )
        .await
        .unwrap();
    assert_eq!(r.rows[0]["n"], json!(0));
    let ok = vec![
        Statement::new("INSERT INTO t(v) VALUES ('a')"),
        Statement::new("SELECT v FROM t"),
    ];
    let results = s.batch(&db, Role::Write, ok).await.unwrap();
    assert_eq!(results[1].rows[0]["v"], json!("a"));
}

#[tokio::test]
async fn a_batch_checks_every_statement_against_the_role() {
    let (_dir, s) = storage();
    let db = with_table(&s, "batchrole").await;
    let stmts = vec![
        Statement::new("SELECT 1"),
        Statement::new("INSERT INTO t(v) VALUES ('a')"),
    ];
    let err = s.batch(&db, Role::Read, stmts).await.unwrap_err();
    assert_eq!(err.index, 1);
    assert!(matches!(err.error, StorageError::StatementNotAllowed(_)));
    let stmts = vec![
        Statement::new("INSERT INTO t(v) VALUES ('a')"),
        Statement::new("COMMIT"),
    ];
    let err = s.batch(&db, Role::Write, stmts).await.unwrap_err();
    assert!(matches!(err.error, StorageError::StatementNotAllowed(_)));
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT count(*) AS n FROM t"),
        )
        .await
        .unwrap();
    assert_eq!(
        r.rows[0]["n"],
        json!(0),
        "nothing committed, connection back in autocommit"
    );
    assert!(
        s.batch(&db, Role::Write, Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
}
