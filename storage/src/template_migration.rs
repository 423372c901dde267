//! Template migrations on one tenant database: each pending migration runs in its own
//! transaction under the admin authorizer, and `PRAGMA user_version` moves to its version in
//! that same transaction, so the file itself says which migrations it has (never one twice).

use std::sync::Arc;
use std::time::Instant;

use rusqlite::fallible_iterator::FallibleIterator;

use crate::authorizer::Mode;
use crate::cache::Inner;
use crate::conn::{self, Conn};
use crate::exec::refused;
use crate::{DbLocation, Role, StorageError, keyword};

/// One migration of a template: the SQL (one or more statements) that takes a database
/// from the previous version to `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Positive, increasing per template; becomes the database's `user_version`.
    pub version: i64,
    /// The statements, separated by `;`.
    pub sql: String,
}

/// What applying migrations to one database did.
#[derive(Debug)]
pub struct MigrateOutcome {
    /// `user_version` before.
    pub before: i64,
    /// `user_version` after: the last migration that committed.
    pub after: i64,
    /// The migration that failed (rolled back; later ones were not tried), with why.
    pub failed: Option<(i64, StorageError)>,
}

/// How a migration reaches the database's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Open {
    /// Through the handle cache (opening and caching it): the database is about to be used.
    Cached,
    /// The cached handle when there is one, else a connection of its own, closed afterwards:
    /// a rollout over every database must not push hot handles out of the cache.
    Transient,
}

impl Inner {
    /// Runs `f` on the connection of `loc`, opened as `open` says.
    pub(crate) fn with_conn<T>(
        &self,
        loc: &DbLocation,
        open: Open,
        f: impl FnOnce(&mut Conn) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let cached = match open {
            Open::Cached => Some(self.handle(loc)?),
            Open::Transient => self.handles.get(loc),
        };
        match cached {
            Some(h) => f(&mut h.blocking_lock()),
            None => {
                let mut c = conn::open(&self.path(loc), &self.cfg, false)?;
                f(&mut c)
            }
        }
    }
}

impl Conn {
    /// `PRAGMA user_version`.
    pub(crate) fn user_version(&self) -> Result<i64, StorageError> {
        self.trusted(|db| db.query_row("PRAGMA user_version", [], |r| r.get(0)))
    }

    /// Applies the migrations above the file's `user_version`, in order, each in its own
    /// `BEGIN IMMEDIATE` transaction; stops at the first failure.
    pub(crate) fn migrate(
        &mut self,
        migrations: &[Migration],
        limits: &crate::Limits,
    ) -> Result<MigrateOutcome, StorageError> {
        let before = self.user_version()?;
        let mut after = before;
        for m in migrations {
            if m.version <= after {
                continue;
            }
            self.trusted(|db| db.execute_batch("BEGIN IMMEDIATE"))?;
            // Read again under the write lock: another process may have migrated the file
            // between our first read and the lock.
            let current = self.user_version()?;
            if m.version <= current {
                self.trusted(|db| db.execute_batch("COMMIT"))?;
                after = current;
                continue;
            }
            let applied = self
                .run_script(&m.sql, limits)
                .and_then(|()| {
                    self.trusted(|db| {
                        db.execute_batch(&format!("PRAGMA user_version = {}", m.version))
                    })
                })
                .and_then(|()| self.trusted(|db| db.execute_batch("COMMIT")));
            if let Err(e) = applied {
                self.rollback();
                return Ok(MigrateOutcome {
                    before,
                    after,
                    failed: Some((m.version, e)),
                });
            }
            after = m.version;
        }
        self.refresh_shadow_tables()?;
        Ok(MigrateOutcome {
            before,
            after,
            failed: None,
        })
    }

    /// Runs the migrations above `user_version` in one transaction and rolls it back:
    /// the first failure, if any, with its version.
    pub(crate) fn try_migrations(
        &mut self,
        migrations: &[Migration],
        limits: &crate::Limits,
    ) -> Result<Option<(i64, StorageError)>, StorageError> {
        self.trusted(|db| db.execute_batch("BEGIN IMMEDIATE"))?;
        let current = self.user_version();
        let mut failed = None;
        match current {
            Ok(current) => {
                for m in migrations.iter().filter(|m| m.version > current) {
                    if let Err(e) = self.run_script(&m.sql, limits) {
                        failed = Some((m.version, e));
                        break;
                    }
                }
            }
            Err(e) => {
                self.rollback();
                return Err(e);
            }
        }
        self.rollback();
        Ok(failed)
    }

    /// Runs every statement of `sql` as an admin tenant would (authorizer, refused
    /// keywords), inside the caller's transaction.
    fn run_script(&mut self, sql: &str, limits: &crate::Limits) -> Result<(), StorageError> {
        // Schema changes on large tables take longer than a query may.
        self.gate.lock().deadline = Some(Instant::now() + limits.query_timeout * 12);
        self.db.flush_prepared_statement_cache();
        self.cached_role = None;
        let gate = self.gate.clone();
        let out = (|| {
            let mut batch = rusqlite::Batch::new(&self.db, sql);
            let mut statements = 0;
            loop {
                gate.lock().enter(Mode::Tenant(Role::Admin));
                let Some(mut stmt) = batch.next().map_err(|e| refused(&gate, e))? else {
                    break;
                };
                {
                    let g = gate.lock();
                    if g.schema_write && !g.ddl {
                        return Err(StorageError::StatementNotAllowed(
                            "writes to sqlite_schema are not allowed".into(),
                        ));
                    }
                }
                // VACUUM and transaction control never reach the authorizer.
                keyword::check(&stmt.expanded_sql().unwrap_or_default(), Role::Admin)?;
                if stmt.parameter_count() > 0 {
                    return Err(StorageError::InvalidParams(
                        "migrations take no parameters".into(),
                    ));
                }
                let mut rows = stmt.raw_query();
                while rows.next().map_err(|e| refused(&gate, e))?.is_some() {}
                statements += 1;
            }
            if statements == 0 {
                return Err(StorageError::Sql("the migration has no statements".into()));
            }
            Ok(())
        })();
        let mut g = gate.lock();
        g.enter(Mode::Locked);
        g.deadline = None;
        out
    }
}

/// Migrations shared between the databases of one rollout.
pub type Migrations = Arc<[Migration]>;
