//! The ledger: one row per charged event, keyed by event id, so a redelivered event has no
//! second effect.

use std::collections::HashSet;

use persql_events::{Backend, HandlerError, Tx, sql::shaped_chunks};
use sqlx::Row;

use super::Entry;

/// Which entries of a batch the ledger did not hold yet.
pub(super) enum Fresh {
    All,
    Only(HashSet<String>),
}

/// Inserts ledger rows and tells which were new (the others were charged by an earlier
/// delivery and must have no further effect). The common case, every entry new, is checked
/// by the inserted-row count, sparing a returned row per event; when some already existed
/// (redelivery, replay) the insert is undone and redone returning the new ids.
pub(super) async fn insert_ledger(
    tx: &mut Tx,
    backend: Backend,
    entries: &[Entry],
) -> Result<Fresh, HandlerError> {
    sqlx::query("SAVEPOINT ledger_insert")
        .execute(&mut **tx)
        .await?;
    let mut inserted = 0;
    for chunk in shaped_chunks(entries) {
        inserted += ledger_insert(backend, chunk, false)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    if inserted != entries.len() as u64 {
        sqlx::query("ROLLBACK TO SAVEPOINT ledger_insert")
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("RELEASE SAVEPOINT ledger_insert")
        .execute(&mut **tx)
        .await?;
    if inserted == entries.len() as u64 {
        return Ok(Fresh::All);
    }
    let mut fresh = HashSet::with_capacity(entries.len());
    for chunk in shaped_chunks(entries) {
        for row in ledger_insert(backend, chunk, true)
            .fetch_all(&mut **tx)
            .await?
        {
            fresh.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(Fresh::Only(fresh))
}

/// `INSERT INTO ledger` for `chunk`, skipping event ids already charged.
pub(super) fn ledger_insert(
    backend: Backend,
    chunk: &[Entry],
    returning: bool,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    let rows = backend.rows(1, chunk.len(), 7);
    let returning = if returning { " RETURNING event_id" } else { "" };
    let sql = format!(
        "INSERT INTO ledger (event_id, namespace_id, kind, amount_nanos, database_id, caller, created_at) \
         VALUES {rows} ON CONFLICT (event_id) DO NOTHING{returning}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in chunk {
        q = q
            .bind(&e.event_id)
            .bind(&e.namespace_id)
            .bind(e.kind)
            .bind(e.amount.nanos())
            .bind(e.database_id.as_deref())
            .bind(e.caller.as_deref())
            .bind(e.time_ms);
    }
    q
}
