//! Appending events to the log/outbox inside the caller's transaction.

use sqlx::{Any, QueryBuilder};

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
    // SQLite allows 32766 bound variables per statement; 6 per row.
    for chunk in events.chunks(1000) {
        let mut qb: QueryBuilder<Any> =
            QueryBuilder::new("INSERT INTO events (id, namespace, type, body, created_at) ");
        let mut bodies = Vec::with_capacity(chunk.len());
        for e in chunk {
            bodies.push(serde_json::to_string(e)?);
        }
        qb.push_values(chunk.iter().zip(bodies), |mut row, (e, body)| {
            row.push_bind(e.id.clone())
                .push_bind(e.namespace.clone())
                .push_bind(e.type_suffix().to_owned())
                .push_bind(body)
                .push_bind(created);
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}
