//! `Storage`: the async entry point over tenant SQLite files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::cache::{Inner, remove_if_exists, sidecar};
use crate::conn::Conn;
use crate::describe::Schema;
use crate::template_migration::{MigrateOutcome, Migrations, Open};
use crate::{BatchError, DbLocation, QueryResult, Role, Statement, StorageConfig, StorageError};

/// Tenant databases: one SQLite file per database, connections cached.
#[derive(Clone)]
pub struct Storage {
    pub(crate) inner: Arc<Inner>,
}

impl Storage {
    /// Creates `root/tenants` and `root/images` and an empty handle cache.
    pub fn new(cfg: StorageConfig) -> Result<Self, StorageError> {
        Ok(Self {
            inner: Arc::new(Inner::new(cfg)?),
        })
    }

    /// The database file of `loc`.
    pub fn path(&self, loc: &DbLocation) -> PathBuf {
        self.inner.path(loc)
    }

    /// True when the database file exists.
    pub fn exists(&self, loc: &DbLocation) -> bool {
        self.inner.path(loc).exists()
    }

    /// Runs `f` on the blocking pool: rusqlite and file I/O block the thread,
    /// which must not be an async worker.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Internal(format!("blocking task failed: {e}")))?
    }

    /// Creates the database (replacing a file left by an earlier attempt),
    /// with `template`'s schema and user_version but none of its rows. Returns that
    /// user_version (the template's migration version; 0 without a template).
    pub async fn create(
        &self,
        loc: &DbLocation,
        template: Option<&DbLocation>,
    ) -> Result<i64, StorageError> {
        let (loc, template) = (loc.clone(), template.cloned());
        self.blocking(move |inner| inner.create(&loc, template.as_ref()))
            .await
    }

    /// Runs `f` on the cached connection of `loc`, opening it first when needed. The turn on
    /// the connection is awaited here, on the async runtime, and only then does `f` take a
    /// blocking thread: a queue of requests for one busy database holds no thread of the
    /// blocking pool, which every other database's requests need. Dropping the future while
    /// it waits leaves the queue.
    async fn on_conn<T, F>(&self, loc: &DbLocation, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Conn) -> T + Send + 'static,
    {
        self.on_conn_by(loc, None, f).await
    }

    /// [`Storage::on_conn`] for a request due by `deadline`: waiting for the connection past
    /// it is `Timeout`, as running past it would be.
    async fn on_conn_by<T, F>(
        &self,
        loc: &DbLocation,
        deadline: Option<Instant>,
        f: F,
    ) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Conn) -> T + Send + 'static,
    {
        let handle = match self.inner.handles.get(loc) {
            Some(h) => h,
            None => {
                let loc = loc.clone();
                self.blocking(move |inner| inner.handle(&loc)).await?
            }
        };
        let mut conn = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), handle.lock_owned())
                .await
                .map_err(|_| StorageError::Timeout)?,
            None => handle.lock_owned().await,
        };
        self.blocking(move |inner| Ok(f(inner, &mut conn))).await
    }

    /// When a request arriving now must be done: one deadline for all its work, waiting
    /// for the database's connection included.
    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.cfg.limits.query_timeout
    }

    /// Runs one statement under `role`.
    pub async fn query(
        &self,
        loc: &DbLocation,
        role: Role,
        stmt: Statement,
    ) -> Result<QueryResult, StorageError> {
        let deadline = self.deadline();
        self.on_conn_by(loc, Some(deadline), move |inner, conn| {
            conn.query(role, &stmt, &inner.cfg.limits, deadline)
        })
        .await?
    }

    /// Runs `stmts` under `role` in one transaction; the first failure rolls
    /// everything back and names the failing statement.
    pub async fn batch(
        &self,
        loc: &DbLocation,
        role: Role,
        stmts: Vec<Statement>,
    ) -> Result<Vec<QueryResult>, BatchError> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = self.deadline();
        self.on_conn_by(loc, Some(deadline), move |inner, conn| {
            conn.batch(role, &stmts, &inner.cfg.limits, deadline)
        })
        .await
        .map_err(|error| BatchError { index: 0, error })?
    }

    /// The schema of the database, within the request's deadline and at most
    /// `max_result_bytes` of names and DDL (`ResultTooLarge` past it).
    pub async fn describe(&self, loc: &DbLocation) -> Result<Schema, StorageError> {
        let deadline = self.deadline();
        self.on_conn_by(loc, Some(deadline), move |inner, conn| {
            conn.describe(deadline, inner.cfg.limits.max_result_bytes)
        })
        .await?
    }

    /// `PRAGMA schema_version`: changes whenever the schema changes.
    pub async fn schema_version(&self, loc: &DbLocation) -> Result<i64, StorageError> {
        self.on_conn(loc, |_, conn| {
            conn.trusted(|db| db.query_row("PRAGMA schema_version", [], |r| r.get(0)))
        })
        .await?
    }

    /// Applies the migrations above the database's `user_version` (see [`Migration`]),
    /// caching its handle: for a database about to be queried, or a template.
    pub async fn migrate(
        &self,
        loc: &DbLocation,
        migrations: Migrations,
    ) -> Result<MigrateOutcome, StorageError> {
        self.migrate_with(loc, migrations, Open::Cached).await
    }

    /// Like [`Storage::migrate`], but a database whose handle is not cached gets a connection
    /// of its own for the time of the migration: a rollout over every database leaves the
    /// handle cache (the hot databases) alone.
    pub async fn migrate_uncached(
        &self,
        loc: &DbLocation,
        migrations: Migrations,
    ) -> Result<MigrateOutcome, StorageError> {
        self.migrate_with(loc, migrations, Open::Transient).await
    }

    async fn migrate_with(
        &self,
        loc: &DbLocation,
        migrations: Migrations,
        open: Open,
    ) -> Result<MigrateOutcome, StorageError> {
        match open {
            // Someone is waiting for this database (a query catching up, a template).
            Open::Cached => {
                self.on_conn(loc, move |inner, c| {
                    c.migrate(&migrations, &inner.cfg.limits)
                })
                .await?
            }
            // A rollout over every database: bulk work, on the lower-priority lane.
            Open::Transient => {
                let loc = loc.clone();
                self.background(move |inner| {
                    inner.with_conn(&loc, open, |c| c.migrate(&migrations, &inner.cfg.limits))
                })
                .await
            }
        }
    }

    /// Runs `f` on the background lane: lower-priority threads for bulk work.
    async fn background<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.inner.background.run(move || f(&inner)).await
    }

    /// Runs the migrations above the database's `user_version` in one transaction and
    /// rolls it back, changing nothing: the first failure (version and error), if any.
    pub async fn try_migrations(
        &self,
        loc: &DbLocation,
        migrations: Migrations,
    ) -> Result<Option<(i64, StorageError)>, StorageError> {
        let loc = loc.clone();
        self.background(move |inner| {
            inner.with_conn(&loc, Open::Transient, |c| {
                c.try_migrations(&migrations, &inner.cfg.limits)
            })
        })
        .await
    }

    /// `PRAGMA user_version`: the template migration version the database has.
    pub async fn user_version(&self, loc: &DbLocation) -> Result<i64, StorageError> {
        if self.inner.handles.contains_key(loc) {
            return self.on_conn(loc, |_, c| c.user_version()).await?;
        }
        let loc = loc.clone();
        self.blocking(move |inner| inner.with_conn(&loc, Open::Transient, |c| c.user_version()))
            .await
    }

    /// A consistent copy of the database (SQLite backup API) in a temp file, made within
    /// the request's deadline (`Timeout` past it).
    pub async fn export(&self, loc: &DbLocation) -> Result<tempfile::NamedTempFile, StorageError> {
        let loc = loc.clone();
        let deadline = self.deadline();
        self.blocking(move |inner| {
            let path = inner.path(&loc);
            if !path.exists() {
                return Err(StorageError::NotFound);
            }
            // A separate reader, so a long export does not hold the cached
            // connection's lock; WAL lets it read a snapshot meanwhile.
            let src = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            let out = tempfile::Builder::new()
                .suffix(".db")
                .tempfile_in(&inner.images)?;
            let mut dst = rusqlite::Connection::open(out.path())?;
            {
                let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
                loop {
                    match backup.step(1024)? {
                        rusqlite::backup::StepResult::Done => break,
                        rusqlite::backup::StepResult::More => {}
                        // Busy or locked: a writer holds the source for a moment.
                        _ => std::thread::sleep(std::time::Duration::from_millis(1)),
                    }
                    if Instant::now() >= deadline {
                        return Err(StorageError::Timeout);
                    }
                }
            }
            dst.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))?;
            dst.close().map_err(|(_, e)| StorageError::from(e))?;
            Ok(out)
        })
        .await
    }

    /// Bytes on disk: the database file plus its WAL.
    pub async fn size(&self, loc: &DbLocation) -> Result<u64, StorageError> {
        let path = self.path(loc);
        self.blocking(move |_| {
            let db = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StorageError::NotFound);
                }
                Err(e) => return Err(e.into()),
            };
            let wal = std::fs::metadata(sidecar(&path, "-wal")).map_or(0, |m| m.len());
            Ok(db + wal)
        })
        .await
    }

    /// Evicts the cached connection and removes the file, its WAL and shm.
    pub async fn delete(&self, loc: &DbLocation) -> Result<(), StorageError> {
        if let Some(handle) = self.inner.handles.remove(loc) {
            // Waits (asynchronously) for the statement in flight.
            drop(handle.lock().await);
        }
        let loc = loc.clone();
        self.blocking(move |inner| {
            let path = inner.path(&loc);
            remove_if_exists(&path)?;
            remove_if_exists(&sidecar(&path, "-wal"))?;
            remove_if_exists(&sidecar(&path, "-shm"))?;
            Ok(())
        })
        .await
    }
}
