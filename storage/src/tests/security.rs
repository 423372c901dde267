//! The authorizer and statement-kind checks, per role.

use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthContext, Authorization};

use super::{storage, with_table};
use crate::{Role, Statement, StorageError};

const ROLES: [Role; 3] = [Role::Read, Role::Write, Role::Admin];

/// Refused for every role, whatever the role may otherwise do.
const REFUSED: &[&str] = &[
    "ATTACH 'x' AS y",
    "ATTACH ':memory:' AS y",
    "DETACH y",
    "VACUUM",
    "VACUUM INTO '/tmp/persql-vacuum-into.db'",
    "/* hidden */ vacuum main",
    "CREATE TEMP TABLE tt(a)",
    "CREATE TABLE temp.tt(a)",
    "CREATE TEMP VIEW tv AS SELECT 1",
    "CREATE TEMP TRIGGER ttr AFTER INSERT ON t BEGIN SELECT 1; END",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "RELEASE s",
    "SELECT load_extension('x')",
    "SELECT fts3_tokenizer('simple')",
    "PRAGMA journal_mode=delete",
    "PRAGMA journal_mode",
    "PRAGMA writable_schema=1",
    "PRAGMA foreign_keys=OFF",
    "PRAGMA main.synchronous=OFF",
    "PRAGMA user_version=5",
    "PRAGMA schema_version=5",
    "PRAGMA page_size=1024",
    "PRAGMA max_page_count=1000000000",
    "PRAGMA trusted_schema=1",
    "SELECT * FROM pragma_journal_mode",
    "INSERT INTO sqlite_master VALUES('table','x','x',0,'CREATE TABLE x(a)')",
    "UPDATE sqlite_schema SET sql = ''",
    "DELETE FROM sqlite_master",
    "CREATE VIRTUAL TABLE d USING dbstat",
];

/// Read-only statements every role may run.
const ALLOWED_READS: &[&str] = &[
    "SELECT * FROM t",
    "PRAGMA table_info(t)",
    "PRAGMA table_list",
    "PRAGMA index_list(t)",
    "PRAGMA foreign_key_list(t)",
    "PRAGMA integrity_check",
    "PRAGMA quick_check",
    "PRAGMA page_count",
    "PRAGMA user_version",
    "PRAGMA schema_version",
    "SELECT * FROM pragma_table_info('t')",
    "SELECT name FROM sqlite_schema",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) SELECT x FROM c",
];

/// DDL: admin only.
const DDL: &[&str] = &[
    "CREATE TABLE u(a)",
    "CREATE INDEX i ON t(v)",
    "CREATE VIEW vw AS SELECT v FROM t",
    "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = 'x' WHERE id = new.id; END",
    "ALTER TABLE t ADD COLUMN w TEXT",
    "REINDEX",
    "ANALYZE",
    "CREATE VIRTUAL TABLE f USING fts5(body)",
    "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)",
    "DROP VIEW v0",
    "DROP INDEX i0",
    "DROP TABLE t",
];

#[tokio::test]
async fn every_role_is_refused_the_forbidden_statement_kinds() {
    let (_dir, s) = storage();
    let db = with_table(&s, "sec").await;
    for role in ROLES {
        for sql in REFUSED {
            let err = s.query(&db, role, Statement::new(*sql)).await.unwrap_err();
            assert!(
                matches!(err, StorageError::StatementNotAllowed(_)),
                "{role} {sql}: {err:?}"
            );
        }
    }
    assert!(!std::path::Path::new("/tmp/persql-vacuum-into.db").exists());
    // Nothing was left open by the refusals.
    s.query(
        &db,
        Role::Write,
        Statement::new("INSERT INTO t(v) VALUES ('ok')"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_role_may_read_and_run_read_only_pragmas() {
    let (_dir, s) = storage();
    let db = with_table(&s, "reads").await;
    for role in ROLES {
        for sql in ALLOWED_READS {
            s.query(&db, role, Statement::new(*sql))
                .await
                .unwrap_or_else(|e| panic!("{role} {sql}: {e:?}"));
        }
    }
}

#[tokio::test]
async fn read_and_write_tokens_cannot_run_ddl_but_admin_can() {
    let (_dir, s) = storage();
    let db = with_table(&s, "ddl").await;
    for sql in ["CREATE VIEW v0 AS SELECT 1", "CREATE INDEX i0 ON t(v, id)"] {
        s.query(&db, Role::Admin, Statement::new(sql))
            .await
            .unwrap();
    }
    for role in [Role::Read, Role::Write] {
        for sql in DDL {
            let err = s.query(&db, role, Statement::new(*sql)).await.unwrap_err();
            assert!(
                matches!(err, StorageError::DdlNotAllowed(_)),
                "{role} {sql}: {err:?}"
            );
        }
    }
    for sql in DDL {
        s.query(&db, Role::Admin, Statement::new(*sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
}

#[tokio::test]
async fn write_token_cannot_create_a_trigger() {
    let (_dir, s) = storage();
    let db = with_table(&s, "trig").await;
    let sql = "CREATE TRIGGER x AFTER DELETE ON t BEGIN DELETE FROM t; END";
    let err = s
        .query(&db, Role::Write, Statement::new(sql))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::DdlNotAllowed(m) if m.contains("TRIGGER")));
}

#[tokio::test]
async fn read_token_cannot_write_but_write_token_can() {
    let (_dir, s) = storage();
    let db = with_table(&s, "rw").await;
    for sql in [
        "INSERT INTO t(v) VALUES ('a')",
        "UPDATE t SET v = 'b'",
        "DELETE FROM t",
    ] {
        let err = s
            .query(&db, Role::Read, Statement::new(sql))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::StatementNotAllowed(m) if m == "read-only token"),
            "{err:?}"
        );
        s.query(&db, Role::Write, Statement::new(sql))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_statement_cached_for_one_role_is_reauthorized_for_another() {
    let (_dir, s) = storage();
    let db = with_table(&s, "cache").await;
    let insert = "INSERT INTO t(v) VALUES ('a')";
    s.query(&db, Role::Write, Statement::new(insert))
        .await
        .unwrap();
    let err = s
        .query(&db, Role::Read, Statement::new(insert))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::StatementNotAllowed(_)));
    let ddl = "CREATE TABLE IF NOT EXISTS z(a)";
    s.query(&db, Role::Admin, Statement::new(ddl))
        .await
        .unwrap();
    let err = s
        .query(&db, Role::Write, Statement::new(ddl))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::DdlNotAllowed(_)));
}

#[test]
fn vacuum_reaches_the_authorizer_only_as_a_nested_attach_at_run_time() {
    // Why `keyword::check` exists: preparing VACUUM (INTO) calls the
    // authorizer zero times; running it attaches the target internally.
    let db = rusqlite::Connection::open_in_memory().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    db.authorizer(Some(move |ctx: AuthContext<'_>| {
        log.lock().unwrap().push(format!("{:?}", ctx.action));
        Authorization::Deny
    }))
    .unwrap();
    for sql in ["VACUUM", "VACUUM INTO '/tmp/persql-probe-never.db'"] {
        seen.lock().unwrap().clear();
        let stmt = db.prepare(sql);
        assert!(stmt.is_ok(), "prepare of {sql} is not authorized at all");
        assert!(seen.lock().unwrap().is_empty());
        assert!(
            db.execute_batch(sql).is_err(),
            "running {sql} hits the denied ATTACH"
        );
        assert!(seen.lock().unwrap()[0].starts_with("Attach"));
    }
    assert!(!std::path::Path::new("/tmp/persql-probe-never.db").exists());
}

#[tokio::test]
async fn a_read_token_can_query_virtual_tables_on_a_fresh_connection() {
    let (_dir, s) = storage();
    let db = with_table(&s, "vt").await;
    for sql in [
        "CREATE VIRTUAL TABLE f USING fts5(body)",
        "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)",
        "INSERT INTO f(body) VALUES ('hello')",
        "INSERT INTO r VALUES (1, 0, 10)",
    ] {
        s.query(&db, Role::Admin, Statement::new(sql))
            .await
            .unwrap();
    }
    s.inner.handles.invalidate(&db);
    for sql in [
        "SELECT * FROM f WHERE f MATCH 'hello'",
        "SELECT id FROM r WHERE x0 < 5",
    ] {
        let r = s.query(&db, Role::Read, Statement::new(sql)).await;
        assert_eq!(r.unwrap_or_else(|e| panic!("{sql}: {e:?}")).rows.len(), 1);
    }
    // Shadow tables stay unwritable, and look-alike names are ordinary tables.
    s.query(&db, Role::Admin, Statement::new("CREATE TABLE r_notes(a)"))
        .await
        .unwrap();
    for sql in [
        "INSERT INTO r_notes VALUES (1)",
        "DELETE FROM f_data",
        "DELETE FROM r_node",
    ] {
        let err = s
            .query(&db, Role::Read, Statement::new(sql))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::StatementNotAllowed(_)),
            "{sql}: {err:?}"
        );
    }
    let err = s
        .query(&db, Role::Write, Statement::new("DELETE FROM r_node"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::StatementNotAllowed(_)),
        "defensive mode protects shadow tables: {err:?}"
    );
}
