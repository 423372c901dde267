//! Behaviour tests of `Storage` against real files in a temp directory.

mod build;
mod exec;
mod files;
mod hardening;
mod security;
mod template;
mod template_migration;
mod waiting;

use std::time::Duration;

use crate::{DbLocation, Limits, Role, Statement, Storage, StorageConfig};

/// A storage in a fresh temp dir, kept alive by the returned guard.
pub(super) fn storage_with(limits: Limits) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        root: dir.path().to_owned(),
        limits,
        ..StorageConfig::default()
    };
    (dir, Storage::new(cfg).unwrap())
}

/// A storage with default limits.
pub(super) fn storage() -> (tempfile::TempDir, Storage) {
    storage_with(Limits {
        query_timeout: Duration::from_secs(5),
        ..Limits::default()
    })
}

/// A location from literal ids.
pub(super) fn loc(db: &str) -> DbLocation {
    DbLocation::new("ns", db).unwrap()
}

/// A created database with table `t(id INTEGER PRIMARY KEY, v TEXT)`.
pub(super) async fn with_table(s: &Storage, db: &str) -> DbLocation {
    let l = loc(db);
    s.create(&l, None).await.unwrap();
    s.query(
        &l,
        Role::Admin,
        Statement::new("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"),
    )
    .await
    .unwrap();
    l
}
