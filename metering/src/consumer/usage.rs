//! Daily usage per (namespace, day, database, caller): the read model behind `usage`.

use std::collections::BTreeMap;

use persql_events::{Backend, HandlerError, Tx, sql::shaped_chunks};

use super::Entry;

#[derive(Default)]
pub(super) struct UsageDelta {
    queries: i64,
    rows_read: i64,
    rows_written: i64,
    storage_bytes: i64,
    cost: i64,
}

/// Adds the batch's charges to the daily usage projection.
pub(super) async fn update_usage(
    tx: &mut Tx,
    backend: Backend,
    entries: &[&Entry],
) -> Result<(), HandlerError> {
    let mut by_key: BTreeMap<(&str, time::Date, &str, &str), UsageDelta> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.amount.nanos() <= 0) {
        let key = (
            e.namespace_id.as_str(),
            e.day,
            e.database_id.as_deref().unwrap_or(""),
            e.caller.as_deref().unwrap_or(""),
        );
        let u = by_key.entry(key).or_default();
        u.queries += e.queries;
        u.rows_read += e.rows_read;
        u.rows_written += e.rows_written;
        u.storage_bytes = u.storage_bytes.max(e.storage_bytes);
        u.cost = u.cost.saturating_sub(e.amount.nanos());
    }
    let keys: Vec<_> = by_key.into_iter().collect();
    for chunk in shaped_chunks(&keys) {
        let rows = backend.rows(1, chunk.len(), 9);
        let sql = format!(
            "INSERT INTO usage_daily (namespace_id, day, database_id, caller, queries, rows_read, rows_written, storage_bytes, cost_nanos) \
             VALUES {rows} ON CONFLICT (namespace_id, day, database_id, caller) DO UPDATE SET \
             queries = usage_daily.queries + excluded.queries, \
             rows_read = usage_daily.rows_read + excluded.rows_read, \
             rows_written = usage_daily.rows_written + excluded.rows_written, \
             storage_bytes = CASE WHEN excluded.storage_bytes > usage_daily.storage_bytes \
                             THEN excluded.storage_bytes ELSE usage_daily.storage_bytes END, \
             cost_nanos = usage_daily.cost_nanos + excluded.cost_nanos"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((ns, day, db, caller), u) in chunk {
            q = q
                .bind(*ns)
                .bind(day.to_string())
                .bind(*db)
                .bind(*caller)
                .bind(u.queries)
                .bind(u.rows_read)
                .bind(u.rows_written)
                .bind(u.storage_bytes)
                .bind(u.cost);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
