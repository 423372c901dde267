//! Describe, schema version, export, size and delete.

use serde_json::json;

use super::{loc, storage, with_table};
use crate::{Role, Statement, StorageError};

#[tokio::test]
async fn describe_lists_columns_indexes_foreign_keys_views_and_triggers() {
    let (_dir, s) = storage();
    let db = with_table(&s, "desc").await;
    for sql in [
        "CREATE TABLE c(id INTEGER PRIMARY KEY, t_id INTEGER NOT NULL REFERENCES t ON DELETE CASCADE, n TEXT DEFAULT 'x')",
        "CREATE UNIQUE INDEX c_n ON c(n, t_id)",
        "CREATE VIEW cv AS SELECT n FROM c",
        "CREATE TRIGGER ct AFTER DELETE ON c BEGIN SELECT 1; END",
    ] {
        s.query(&db, Role::Admin, Statement::new(sql))
            .await
            .unwrap();
    }
    let schema = s.describe(&db).await.unwrap();
    let json = serde_json::to_value(&schema).unwrap();
    assert_eq!(json["schemaVersion"], json!(0));
    assert_eq!(json["tables"][0]["name"], json!("t"));
    let c = &json["tables"][1];
    assert_eq!(
        c["columns"][0],
        json!({"name": "id", "type": "INTEGER", "notNull": false, "default": null, "primaryKey": 1})
    );
    assert_eq!(c["columns"][2]["default"], json!("'x'"));
    assert_eq!(c["indexes"][0]["columns"], json!(["n", "t_id"]));
    assert_eq!(c["indexes"][0]["unique"], json!(true));
    assert_eq!(
        c["foreignKeys"][0],
        json!({"columns": ["t_id"], "table": "t", "to": ["id"], "onUpdate": "NO ACTION", "onDelete": "CASCADE"})
    );
    assert_eq!(json["views"][0]["name"], json!("cv"));
    assert_eq!(
        json["triggers"][0],
        json!({"name": "ct", "table": "c", "ddl": "CREATE TRIGGER ct AFTER DELETE ON c BEGIN SELECT 1; END"})
    );
}

#[tokio::test]
async fn describe_estimates_rows_by_bounded_count_then_by_statistics() {
    let (_dir, s) = storage();
    let db = with_table(&s, "rows").await;
    let estimate = |schema: &crate::Schema, table: &str| {
        let t = schema.tables.iter().find(|t| t.name == table).unwrap();
        serde_json::to_value(t.row_estimate).unwrap()
    };
    s.query(
        &db,
        Role::Admin,
        Statement::new("CREATE TABLE \"odd \"\"name\" (a)"),
    )
    .await
    .unwrap();
    let insert = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                  INSERT INTO t(v) SELECT i FROM n";
    let stmt = |n: i64| Statement {
        sql: insert.into(),
        params: crate::Params::Positional(vec![json!(n)]),
    };
    s.query(&db, Role::Write, stmt(3)).await.unwrap();
    let schema = s.describe(&db).await.unwrap();
    assert_eq!(
        estimate(&schema, "t"),
        json!({"count": 3, "method": "exact"})
    );
    assert_eq!(
        estimate(&schema, "odd \"name"),
        json!({"count": 0, "method": "exact"})
    );
    s.query(&db, Role::Write, stmt(10_500)).await.unwrap();
    let schema = s.describe(&db).await.unwrap();
    assert_eq!(
        estimate(&schema, "t"),
        json!({"count": 10_000, "method": "atLeast"})
    );
    s.query(&db, Role::Admin, Statement::new("ANALYZE"))
        .await
        .unwrap();
    let schema = s.describe(&db).await.unwrap();
    assert_eq!(
        estimate(&schema, "t"),
        json!({"count": 10_503, "method": "statistics"})
    );
    assert!(schema.tables.iter().all(|t| !t.name.starts_with("sqlite_")));
    assert!(schema.to_text().contains("table t (about 10503 rows)"));
}

#[tokio::test]
async fn schema_version_moves_with_ddl() {
    let (_dir, s) = storage();
    let db = with_table(&s, "sv").await;
    let before = s.schema_version(&db).await.unwrap();
    s.query(&db, Role::Admin, Statement::new("CREATE TABLE u(a)"))
        .await
        .unwrap();
    assert!(s.schema_version(&db).await.unwrap() > before);
}

#[tokio::test]
async fn export_is_a_consistent_copy_with_the_rows() {
    let (_dir, s) = storage();
    let db = with_table(&s, "exp").await;
    s.query(
        &db,
        Role::Write,
        Statement::new("INSERT INTO t(v) VALUES ('kept')"),
    )
    .await
    .unwrap();
    let file = s.export(&db).await.unwrap();
    let copy = rusqlite::Connection::open(file.path()).unwrap();
    let v: String = copy.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "kept");
    assert!(matches!(
        s.export(&loc("none")).await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn size_counts_the_file_and_its_wal() {
    let (_dir, s) = storage();
    let db = with_table(&s, "size").await;
    assert!(s.size(&db).await.unwrap() >= 4096);
    assert!(matches!(
        s.size(&loc("none")).await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn delete_evicts_the_handle_and_removes_every_file() {
    let (_dir, s) = storage();
    let db = with_table(&s, "del").await;
    let path = s.path(&db);
    s.delete(&db).await.unwrap();
    assert!(!s.exists(&db));
    for suffix in ["-wal", "-shm"] {
        assert!(!std::path::Path::new(&format!("{}{suffix}", path.display())).exists());
    }
    let err = s
        .query(&db, Role::Read, Statement::new("SELECT 1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound));
    s.delete(&db).await.unwrap();
}

#[tokio::test]
async fn the_handle_cache_stays_bounded_and_reopens_evicted_databases() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::StorageConfig {
        root: dir.path().to_owned(),
        max_open: 2,
        ..Default::default()
    };
    let s = crate::Storage::new(cfg).unwrap();
    let dbs: Vec<_> = (0..5).map(|i| loc(&format!("lru{i}"))).collect();
    for db in &dbs {
        s.create(db, None).await.unwrap();
        s.query(db, Role::Admin, Statement::new("CREATE TABLE x(a)"))
            .await
            .unwrap();
    }
    for db in dbs.iter().chain(dbs.iter()) {
        s.query(db, Role::Write, Statement::new("INSERT INTO x VALUES (1)"))
            .await
            .unwrap();
    }
    s.inner.handles.run_pending_tasks();
    assert!(s.inner.handles.entry_count() <= 2);
}
