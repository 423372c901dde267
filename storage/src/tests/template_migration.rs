//! Template migrations: once per database, user_version in the same transaction, refused
//! statements, dry runs, and images carrying the version.

use std::sync::Arc;

use super::{storage, with_table};
use crate::{Migration, Migrations, Role, Statement, StorageError};

fn migrations(list: &[(i64, &str)]) -> Migrations {
    list.iter()
        .map(|(version, sql)| Migration {
            version: *version,
            sql: (*sql).to_owned(),
        })
        .collect::<Vec<_>>()
        .into()
}

#[tokio::test]
async fn migrations_apply_once_and_move_user_version() {
    let (_dir, s) = storage();
    let db = with_table(&s, "a").await;
    let m = migrations(&[
        (
            1,
            "ALTER TABLE t ADD COLUMN done INTEGER NOT NULL DEFAULT 0",
        ),
        (2, "CREATE INDEX t_done ON t(done); CREATE TABLE u(x)"),
    ]);
    let out = s.migrate(&db, m.clone()).await.unwrap();
    assert_eq!((out.before, out.after), (0, 2));
    assert!(out.failed.is_none());
    // A second run finds the file at version 2 and applies nothing (the ALTER would fail).
    let again = s.migrate_uncached(&db, m).await.unwrap();
    assert_eq!((again.before, again.after), (2, 2));
    assert!(again.failed.is_none());
    assert_eq!(s.user_version(&db).await.unwrap(), 2);
    assert_eq!(s.describe(&db).await.unwrap().schema_version, 2);
}

#[tokio::test]
async fn a_failing_migration_leaves_the_last_good_version() {
    let (_dir, s) = storage();
    let db = with_table(&s, "a").await;
    s.query(
        &db,
        Role::Admin,
        Statement::new("INSERT INTO t(v) VALUES ('x'), ('x')"),
    )
    .await
    .unwrap();
    let m = migrations(&[
        (1, "CREATE TABLE log(x)"),
        (2, "CREATE TABLE other(y); CREATE UNIQUE INDEX t_v ON t(v)"),
        (3, "CREATE TABLE never(z)"),
    ]);
    let out = s.migrate_uncached(&db, m).await.unwrap();
    assert_eq!(out.after, 1);
    let (version, error) = out.failed.unwrap();
    assert_eq!(version, 2);
    assert!(
        matches!(error, StorageError::Sql(ref m) if m.contains("UNIQUE")),
        "{error:?}"
    );
    let schema = s.describe(&db).await.unwrap();
    assert_eq!(schema.schema_version, 1);
    let tables: Vec<_> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(
        tables.contains(&"log") && !tables.contains(&"other"),
        "{tables:?}"
    );
    // Still serving.
    s.query(
        &db,
        Role::Write,
        Statement::new("INSERT INTO t(v) VALUES ('y')"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn migrations_run_under_the_admin_authorizer() {
    let (_dir, s) = storage();
    let db = with_table(&s, "a").await;
    for sql in [
        "ATTACH DATABASE 'x.db' AS x",
        "CREATE TABLE ok(x); VACUUM",
        "BEGIN; CREATE TABLE x(y); COMMIT",
        "PRAGMA user_version = 9",
        "SELECT load_extension('x')",
        "CREATE TEMP TABLE tmp(x)",
    ] {
        let out = s.migrate(&db, migrations(&[(1, sql)])).await.unwrap();
        let (_, error) = out.failed.expect(sql);
        assert!(
            matches!(error, StorageError::StatementNotAllowed(_)),
            "{sql}: {error:?}"
        );
        assert_eq!(out.after, 0, "{sql}");
    }
    let names: Vec<_> = s
        .describe(&db)
        .await
        .unwrap()
        .tables
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["t".to_owned()]);
}

#[tokio::test]
async fn try_migrations_changes_nothing() {
    let (_dir, s) = storage();
    let db = with_table(&s, "a").await;
    let ok = migrations(&[(1, "ALTER TABLE t ADD COLUMN z")]);
    assert!(s.try_migrations(&db, ok).await.unwrap().is_none());
    let bad = migrations(&[(1, "ALTER TABLE missing ADD COLUMN z")]);
    let (version, error) = s.try_migrations(&db, bad).await.unwrap().unwrap();
    assert_eq!(version, 1);
    assert!(error.to_string().contains("no such table"), "{error}");
    let schema = s.describe(&db).await.unwrap();
    assert_eq!(schema.schema_version, 0);
    assert_eq!(schema.tables[0].columns.len(), 2);
}

#[tokio::test]
async fn databases_created_from_a_migrated_template_carry_its_version() {
    let (_dir, s) = storage();
    let tpl = with_table(&s, "tpl").await;
    assert_eq!(
        s.create(&super::loc("before"), Some(&tpl)).await.unwrap(),
        0
    );
    let m: Migrations = Arc::from(vec![Migration {
        version: 4,
        sql: "ALTER TABLE t ADD COLUMN w".into(),
    }]);
    s.migrate(&tpl, m).await.unwrap();
    let new = super::loc("after");
    assert_eq!(s.create(&new, Some(&tpl)).await.unwrap(), 4);
    let schema = s.describe(&new).await.unwrap();
    assert_eq!(schema.schema_version, 4);
    assert_eq!(schema.tables[0].columns.len(), 3);
}
