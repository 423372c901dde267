//! Creating databases from templates through schema images.

use serde_json::json;

use super::{loc, storage};
use crate::{Role, Statement, StorageError};

const TEMPLATE_DDL: &[&str] = &[
    "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE)",
    "CREATE TABLE notes(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users ON DELETE CASCADE, body TEXT DEFAULT '')",
    "CREATE INDEX notes_user ON notes(user_id)",
    "CREATE VIEW note_count AS SELECT user_id, count(*) AS n FROM notes GROUP BY user_id",
    "CREATE TRIGGER notes_trim AFTER INSERT ON notes BEGIN UPDATE notes SET body = trim(body) WHERE id = new.id; END",
    "CREATE VIRTUAL TABLE notes_fts USING fts5(body)",
    "INSERT INTO users(email) VALUES ('template-row@example.com')",
    "PRAGMA user_version",
];

async fn template(s: &crate::Storage) -> crate::DbLocation {
    let t = loc("tpl");
    s.create(&t, None).await.unwrap();
    for sql in TEMPLATE_DDL {
        s.query(&t, Role::Admin, Statement::new(*sql))
            .await
            .unwrap();
    }
    t
}

fn names(schema: &crate::Schema) -> Vec<String> {
    let mut n: Vec<String> = schema.tables.iter().map(|t| t.name.clone()).collect();
    n.extend(schema.views.iter().map(|v| v.name.clone()));
    n.extend(schema.triggers.iter().map(|t| t.name.clone()));
    n
}

#[tokio::test]
async fn create_from_template_copies_schema_but_never_rows() {
    let (_dir, s) = storage();
    let t = template(&s).await;
    let db = loc("fromtpl");
    s.create(&db, Some(&t)).await.unwrap();
    assert_eq!(
        names(&s.describe(&db).await.unwrap()),
        names(&s.describe(&t).await.unwrap())
    );
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT count(*) AS n FROM users"),
        )
        .await
        .unwrap();
    assert_eq!(r.rows[0]["n"], json!(0));
    // The new database works: triggers, fts and foreign keys included.
    for sql in [
        "INSERT INTO users(email) VALUES ('a@b')",
        "INSERT INTO notes(user_id, body) VALUES (1, '  hi  ')",
        "INSERT INTO notes_fts(body) VALUES ('hello world')",
    ] {
        s.query(&db, Role::Write, Statement::new(sql))
            .await
            .unwrap();
    }
    let r = s
        .query(&db, Role::Read, Statement::new("SELECT body FROM notes"))
        .await
        .unwrap();
    assert_eq!(r.rows[0]["body"], json!("hi"));
    let r = s
        .query(
            &db,
            Role::Read,
            Statement::new("SELECT * FROM notes_fts WHERE notes_fts MATCH 'hello'"),
        )
        .await;
    assert_eq!(r.unwrap().rows.len(), 1);
    let fk = s
        .query(
            &db,
            Role::Write,
            Statement::new("INSERT INTO notes(user_id) VALUES (99)"),
        )
        .await;
    assert!(
        matches!(fk, Err(StorageError::Sql(_))),
        "foreign keys are on"
    );
}

#[tokio::test]
async fn template_user_version_is_copied_and_changes_rebuild_the_image() {
    let (_dir, s) = storage();
    let t = template(&s).await;
    s.create(&loc("first"), Some(&t)).await.unwrap();
    // user_version is not writable by tenants; the control plane sets it
    // through the trusted path, which tests reach directly.
    let handle = s.inner.handle(&t).unwrap();
    handle
        .lock()
        .await
        .trusted(|db| db.execute_batch("PRAGMA user_version = 7"))
        .unwrap();
    drop(handle);
    s.query(
        &t,
        Role::Admin,
        Statement::new("ALTER TABLE notes ADD COLUMN title TEXT"),
    )
    .await
    .unwrap();
    let db = loc("second");
    s.create(&db, Some(&t)).await.unwrap();
    let schema = s.describe(&db).await.unwrap();
    assert_eq!(schema.schema_version, 7);
    let notes = schema.tables.iter().find(|t| t.name == "notes").unwrap();
    assert!(notes.columns.iter().any(|c| c.name == "title"));
    let first = s.describe(&loc("first")).await.unwrap();
    assert_eq!(first.schema_version, 0);
}

#[tokio::test]
async fn create_replaces_a_file_left_by_an_earlier_attempt() {
    let (_dir, s) = storage();
    let db = loc("again");
    s.create(&db, None).await.unwrap();
    s.query(&db, Role::Admin, Statement::new("CREATE TABLE stale(a)"))
        .await
        .unwrap();
    s.create(&db, None).await.unwrap();
    assert!(s.describe(&db).await.unwrap().tables.is_empty());
    let journal = s.query(&db, Role::Read, Statement::new("SELECT 1")).await;
    assert!(journal.is_ok());
}

#[tokio::test]
async fn create_from_a_missing_template_is_not_found() {
    let (_dir, s) = storage();
    let err = s
        .create(&loc("x"), Some(&loc("missing")))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound));
    assert!(!s.exists(&loc("x")));
}
