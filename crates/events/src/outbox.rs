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
    // 5 bound values per row; chunk lengths from a fixed set keep the statements prepared.
    for chunk in crate::sql::shaped_chunks(events) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(backend, chunk.len())));
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

/// `INSERT … VALUES …` for `rows` events. Events with deterministic ids (e.g. one storage
/// sample per database and interval, whichever process takes it) are logged once.
fn insert_sql(backend: Backend, rows: usize) -> String {
    format!(
        "INSERT INTO events (id, namespace, type, body, created_at) VALUES {} ON CONFLICT (id) DO NOTHING",
        backend.rows(1, rows, 5)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_places_one_group_per_event() {
        assert_eq!(
            insert_sql(Backend::Postgres, 2),
            "INSERT INTO events (id, namespace, type, body, created_at) VALUES ($1, $2, $3, $4, $5), \
             ($6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
        );
        assert!(insert_sql(Backend::Sqlite, 1).contains("VALUES (?, ?, ?, ?, ?) ON CONFLICT"));
    }
}
