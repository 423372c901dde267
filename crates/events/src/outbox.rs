//! Appending events to the log/outbox inside the caller's transaction.

use crate::{
    envelope::Envelope,
    store::{Backend, StoreError, Tx, now_ms},
};

/// Appends `events` to the log inside `tx`, so each commits together with the change it
/// records. On Postgres a transaction-scoped advisory lock serializes appenders, which makes
/// `seq` order equal commit order — the embedded bus tails by `seq` and must never see a
/// lower `seq` commit after a higher one.
pub async fn append(tx: &mut Tx, backend: Backend, events: &[Envelope]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7201)")
            .execute(&mut **tx)
            .await?;
    }
    let created = now_ms();
    // SQLite allows 32766 bound variables per statement; 5 per row.
    for chunk in events.chunks(1000) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(chunk.len())));
        for e in chunk {
            query = query
                .bind(e.id.clone())
                .bind(e.namespace.clone())
                .bind(e.type_suffix().to_owned())
                .bind(serde_json::to_string(e)?)
                .bind(created);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `INSERT … VALUES ($1, …), …` for `rows` events. Numbered placeholders, which both
/// backends accept (sqlx's `QueryBuilder<Any>` would emit `?`, which Postgres rejects).
fn insert_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO events (id, namespace, type, body, created_at) VALUES ");
    for r in 0..rows {
        let b = r * 5;
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5
        ));
    }
    // Events with deterministic ids (e.g. one storage sample per database and interval,
    // whichever process takes it) are logged once.
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

/// `$first, $first+1, …`: a list of `n` numbered placeholders.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_numbers_every_placeholder() {
        assert_eq!(
            insert_sql(2),
            "INSERT INTO events (id, namespace, type, body, created_at) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
        );
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }
}
