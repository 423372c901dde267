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
    insert(tx, backend, events).await.map(|_| ())
}

/// Like [`append`], and tells the `seq` of the first event when every event was inserted
/// and their `seq`s are known to be consecutive: on SQLite, where the transaction holds the
/// write lock from `BEGIN IMMEDIATE` and `AUTOINCREMENT` numbers its rows one after another,
/// so the last row's `last_insert_rowid()` gives them all. `None` otherwise (on Postgres, or
/// when an id was already logged): the events are in the log all the same.
pub async fn append_numbered(
    tx: &mut Tx,
    backend: Backend,
    events: &[Envelope],
) -> Result<Option<i64>, StoreError> {
    let inserted = insert(tx, backend, events).await?;
    if backend != Backend::Sqlite || events.is_empty() || inserted != events.len() as u64 {
        return Ok(None);
    }
    let last: i64 = sqlx::query_scalar("SELECT last_insert_rowid()")
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(last - events.len() as i64 + 1))
}

/// Inserts `events`; returns how many were new.
async fn insert(tx: &mut Tx, backend: Backend, events: &[Envelope]) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7201)")
            .execute(&mut **tx)
            .await?;
    }
    let created = now_ms();
    let mut inserted = 0;
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
        inserted += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
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
