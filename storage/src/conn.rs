//! One tenant connection: opening it hardened, and its authorizer/progress hooks.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::{Connection, OpenFlags};

use crate::authorizer::{Mode, SharedGate, new_gate};
use crate::{Role, StorageConfig, StorageError};

/// How often (in VM instructions) the progress handler checks the deadline.
const PROGRESS_OPS: i32 = 1000;

/// A tenant connection and the state its hooks read.
pub(crate) struct Conn {
    /// The SQLite connection.
    pub db: Connection,
    /// Role, denial reason and deadline shared with the hooks.
    pub gate: SharedGate,
    /// Role whose statements are in the prepared-statement cache.
    pub cached_role: Option<Role>,
}

/// Opens the database at `path`; without `create` a missing file is `NotFound`.
pub(crate) fn open(path: &Path, cfg: &StorageConfig, create: bool) -> Result<Conn, StorageError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if !path.exists() {
        return Err(StorageError::NotFound);
    }
    let db = Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::CannotOpen) if !path.exists() => StorageError::NotFound,
        _ => StorageError::from(e),
    })?;
    configure(&db, cfg)?;
    let gate = new_gate();
    let auth_gate = gate.clone();
    db.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
        auth_gate.lock().authorize(&ctx)
    }))?;
    let progress_gate = gate.clone();
    db.progress_handler(
        PROGRESS_OPS,
        Some(move || {
            let mut g = progress_gate.lock();
            match g.deadline {
                Some(d) if std::time::Instant::now() >= d => {
                    g.timed_out = true;
                    true
                }
                _ => false,
            }
        }),
    )?;
    let conn = Conn {
        db,
        gate,
        cached_role: None,
    };
    conn.refresh_shadow_tables()?;
    Ok(conn)
}

/// Pragmas, defensive flags and limits, applied before any hook is installed.
fn configure(db: &Connection, cfg: &StorageConfig) -> Result<(), StorageError> {
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false)?;
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false)?;
    // Extension loading stays off: SQLite's default, and rusqlite is built
    // without `load_extension`, so nothing can turn it on.
    let limits = &cfg.limits;
    // The engine limit also applies when SQLite parses the stored schema,
    // whose DDL can outgrow the tenant limit (ALTER TABLE rewrites it): a
    // limit at exactly `max_sql_bytes` could make a database unopenable.
    // Tenant SQL is held to `max_sql_bytes` exactly before preparing.
    let engine_sql_limit = limits.max_sql_bytes.saturating_mul(10).max(1 << 20);
    db.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, clamp(engine_sql_limit))?;
    // No string, blob or row larger than a result may be: `zeroblob(1e9)` fails in SQLite
    // instead of taking a gigabyte (and its JSON form more), and no single opcode runs
    // long over one value. The stored schema must stay readable, hence the floor.
    let length = limits.max_result_bytes.max(engine_sql_limit);
    db.set_limit(Limit::SQLITE_LIMIT_LENGTH, clamp(length))?;
    db.set_limit(
        Limit::SQLITE_LIMIT_VARIABLE_NUMBER,
        clamp(limits.max_params),
    )?;
    db.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    db.busy_timeout(Duration::from_secs(5))?;
    let mode: String = db.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Internal(format!(
            "journal_mode is {mode}, not wal"
        )));
    }
    db.execute_batch(&format!(
        "PRAGMA synchronous={}; PRAGMA foreign_keys=ON;",
        cfg.synchronous.as_pragma()
    ))?;
    let page_size: i64 = db.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let page_size = u64::try_from(page_size).unwrap_or(4096).max(512);
    let pages = (limits.max_database_bytes / page_size).max(1);
    db.query_row(&format!("PRAGMA max_page_count={pages}"), [], |_| Ok(()))?;
    Ok(())
}

fn clamp(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Conn {
    /// Runs the crate's own SQL with the authorizer out of the way.
    pub(crate) fn trusted<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        self.gate.lock().enter(Mode::Trusted);
        let out = f(&self.db);
        self.gate.lock().enter(Mode::Locked);
        Ok(out?)
    }

    /// Reloads the shadow table names the authorizer needs (after DDL). SQLite decides
    /// them: a table is a shadow table when its virtual table's module (as SQLite parsed
    /// it) claims its name, which is also what defensive mode makes read-only. Never the
    /// text of the stored SQL, which a comment can fool.
    pub(crate) fn refresh_shadow_tables(&self) -> Result<(), StorageError> {
        let names = self.trusted(|db| {
            db.prepare(
                "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'",
            )?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        self.gate.lock().shadow_tables = names;
        Ok(())
    }

    /// Rolls back whatever transaction is open, leaving autocommit mode.
    pub(crate) fn rollback(&self) {
        if !self.db.is_autocommit()
            && let Err(e) = self.trusted(|db| db.execute_batch("ROLLBACK"))
        {
            tracing::warn!(error = %e, "rollback failed");
        }
        // Rolled-back DDL may have created or dropped shadow tables.
        if let Err(e) = self.refresh_shadow_tables() {
            tracing::warn!(error = %e, "reloading shadow tables failed");
        }
    }
}
