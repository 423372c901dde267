//! Running tenant statements: one query, or a batch in one transaction.

use std::time::{Duration, Instant};

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::{Batch, CachedStatement, Connection, StatementStatus};

use crate::authorizer::{Mode, SharedGate};
use crate::conn::Conn;
use crate::params::bind;
use crate::{BatchError, Limits, Role, Statement, StorageError, keyword, values};

/// The outcome of one statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryResult {
    /// Result column names, in order.
    pub columns: Vec<String>,
    /// One object per row, column name -> value.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Rows returned plus `SQLITE_STMTSTATUS_FULLSCAN_STEP` (forward steps of
    /// full table scans, i.e. rows visited minus one per scan); index lookups
    /// count only what they return. Cheap, monotonic, and good enough to bill by.
    pub rows_read: u64,
    /// Rows inserted, updated or deleted, including by triggers (`total_changes` delta).
    pub rows_written: u64,
    /// Rows changed by this DML statement itself (`changes()`), 0 for reads.
    pub changes: u64,
    /// `last_insert_rowid()` of the connection after the statement.
    pub last_insert_rowid: i64,
    /// Wall time of the statement, preparing included.
    pub duration: Duration,
}

/// The bounds one request runs under: a single deadline for all its statements, and what
/// its results may still weigh.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// When the request must have finished (`Timeout` past it).
    pub deadline: Instant,
    /// Result bytes the request may still return (`ResultTooLarge` past it).
    pub bytes: usize,
}

impl Budget {
    /// `Timeout` once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<(), StorageError> {
        if Instant::now() >= self.deadline {
            Err(StorageError::Timeout)
        } else {
            Ok(())
        }
    }
}

impl Conn {
    /// Runs one statement under `role` in its own transaction.
    pub(crate) fn query(
        &mut self,
        role: Role,
        stmt: &Statement,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<QueryResult, StorageError> {
        self.gate.lock().deadline = Some(deadline);
        let mut budget = Budget {
            deadline,
            bytes: limits.max_result_bytes,
        };
        let out = self.run(role, stmt, limits, &mut budget, false);
        if out.is_err() {
            self.rollback();
        }
        self.gate.lock().deadline = None;
        out
    }

    /// Runs `stmts` under `role` in one transaction: all or nothing. One deadline covers
    /// every statement, and their results together weigh at most
    /// `Limits::max_batch_result_bytes`.
    pub(crate) fn batch(
        &mut self,
        role: Role,
        stmts: &[Statement],
        limits: &Limits,
        deadline: Instant,
    ) -> Result<Vec<QueryResult>, BatchError> {
        let begin = if role == Role::Read {
            "BEGIN DEFERRED"
        } else {
            "BEGIN IMMEDIATE"
        };
        self.trusted(|db| db.execute_batch(begin))
            .map_err(|error| BatchError { index: 0, error })?;
        self.gate.lock().deadline = Some(deadline);
        let mut budget = Budget {
            deadline,
            bytes: limits.max_batch_result_bytes,
        };
        let mut results = Vec::with_capacity(stmts.len());
        let mut failure = None;
        for (index, stmt) in stmts.iter().enumerate() {
            match self.run(role, stmt, limits, &mut budget, true) {
                Ok(r) => results.push(r),
                Err(error) => {
                    failure = Some(BatchError { index, error });
                    break;
                }
            }
        }
        if failure.is_none()
            && let Err(error) = budget
                .check_time()
                .and_then(|()| self.trusted(|db| db.execute_batch("COMMIT")))
        {
            failure = Some(BatchError {
                index: stmts.len().saturating_sub(1),
                error,
            });
        }
        self.gate.lock().deadline = None;
        match failure {
            None => Ok(results),
            Some(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Prepares, authorizes, binds and steps one statement, taking its result's weight
    /// from `budget`.
    fn run(
        &mut self,
        role: Role,
        stmt: &Statement,
        limits: &Limits,
        budget: &mut Budget,
        in_batch: bool,
    ) -> Result<QueryResult, StorageError> {
        let start = Instant::now();
        budget.check_time()?;
        stmt.check_limits(limits)?;
        keyword::check(&stmt.sql, role)?;
        // The authorizer runs only when a statement is prepared, so cached
        // statements must never outlive the role they were authorized for.
        if self.cached_role != Some(role) {
            self.db.flush_prepared_statement_cache();
            self.cached_role = Some(role);
        }
        self.gate.lock().enter(Mode::Tenant(role));
        let gate = self.gate.clone();
        let refused = |e: rusqlite::Error| refused(&gate, e);
        let db = &self.db;
        let mut prepared = prepare_one(db, &stmt.sql).map_err(refused)?;
        {
            let g = gate.lock();
            if g.schema_write && !g.ddl {
                drop(g);
                prepared.discard();
                return Err(StorageError::StatementNotAllowed(
                    "writes to sqlite_schema are not allowed".into(),
                ));
            }
        }
        bind(&mut prepared, &stmt.params)?;
        let readonly = prepared.readonly();
        let own_txn = !readonly && !in_batch;
        if own_txn {
            // A DML statement with RETURNING has already changed the database
            // when its first row comes back; our own transaction lets a
            // too-large result roll that back.
            gate.lock().mode = Mode::Trusted;
            let begun = db.execute_batch("BEGIN IMMEDIATE");
            gate.lock().mode = Mode::Tenant(role);
            begun?;
        }
        let columns: Vec<String> = prepared
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let before = db.total_changes();
        prepared.reset_status(StatementStatus::FullscanStep);
        let mut rows = Vec::new();
        // Each value is weighed before it is converted: a result stops growing as soon as
        // it is over the budget (SQLITE_LIMIT_LENGTH bounds the value SQLite made).
        let cap = budget.bytes.min(limits.max_result_bytes);
        let mut bytes = 0usize;
        {
            let mut cursor = prepared.raw_query();
            while let Some(row) = cursor.next().map_err(refused)? {
                budget.check_time()?;
                if rows.len() >= limits.max_result_rows {
                    return Err(StorageError::ResultTooLarge);
                }
                let mut obj = serde_json::Map::with_capacity(columns.len());
                for (i, name) in columns.iter().enumerate() {
                    let value = row.get_ref(i).map_err(StorageError::from_tenant)?;
                    bytes += values::json_size(value) + name.len() + 4;
                    if bytes > cap {
                        return Err(StorageError::ResultTooLarge);
                    }
                    obj.insert(name.clone(), values::to_json(value));
                }
                rows.push(obj);
            }
        }
        budget.bytes -= bytes;
        let scanned =
            u64::try_from(prepared.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
        drop(prepared);
        let rows_written = db.total_changes().saturating_sub(before);
        let changes = if readonly { 0 } else { db.changes() };
        let last_insert_rowid = db.last_insert_rowid();
        if own_txn {
            gate.lock().mode = Mode::Trusted;
            let committed = db.execute_batch("COMMIT");
            gate.lock().mode = Mode::Tenant(role);
            committed.map_err(StorageError::from_tenant)?;
        }
        let was_ddl = gate.lock().ddl;
        gate.lock().enter(Mode::Locked);
        if was_ddl {
            self.refresh_shadow_tables()?;
        }
        Ok(QueryResult {
            rows_read: rows.len() as u64 + scanned,
            columns,
            rows,
            rows_written,
            changes,
            last_insert_rowid,
            duration: start.elapsed(),
        })
    }
}

/// Prepares the one statement of `sql` (cached). rusqlite's own check for a second
/// statement prepares the rest recursively, one stack frame per statement: thousands of
/// `SELECT 1;` overflow the thread's stack. Here the second statement is looked for with
/// SQLite's parser one statement at a time, before rusqlite sees the text.
fn prepare_one<'c>(db: &'c Connection, sql: &str) -> rusqlite::Result<CachedStatement<'c>> {
    // Trailing semicolons and blanks end the statement whatever precedes them.
    let sql = sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    // SQLite separates statements only with `;`.
    if sql.contains(';') {
        let mut statements = Batch::new(db, sql);
        let first = statements.next()?;
        if first.is_some() && statements.next()?.is_some() {
            return Err(rusqlite::Error::MultipleStatement);
        }
    }
    db.prepare_cached(sql)
}

/// The public error for a tenant statement SQLite refused: a timeout, the authorizer's
/// denial, or SQLite's own message.
pub(crate) fn refused(gate: &SharedGate, e: rusqlite::Error) -> StorageError {
    let mut g = gate.lock();
    if g.timed_out {
        StorageError::Timeout
    } else if let Some(d) = g.denial.take() {
        d.into_error()
    } else if g.schema_write && !g.ddl {
        StorageError::StatementNotAllowed("writes to sqlite_schema are not allowed".into())
    } else {
        match StorageError::from_tenant(e) {
            // SQLite refuses DML on schema and (defensive mode) shadow
            // tables before asking the authorizer.
            StorageError::Sql(m)
                if m.starts_with("table ") && m.ends_with("may not be modified") =>
            {
                StorageError::StatementNotAllowed(m)
            }
            other => other,
        }
    }
}
