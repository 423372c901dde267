//! The rollout's control-plane writes: a database's known version moving forward, and the
//! failures it records (with their attempt counts).

use persql_events::{Backend, StoreError, Tx, now_ms};
use sqlx::Row;

/// Records that `version` failed on the database; returns its attempt count.
pub(super) async fn fail(
    tx: &mut Tx,
    template_id: &str,
    database_id: &str,
    version: i64,
    error: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO migration_failures \
         (database_id, template_id, version, state, error, attempts, updated_at) \
         VALUES ($1, $2, $3, 'failed', $4, 1, $5) \
         ON CONFLICT (database_id, version) DO UPDATE SET state = 'failed', \
         error = excluded.error, attempts = migration_failures.attempts + 1, \
         updated_at = excluded.updated_at RETURNING attempts",
    )
    .bind(database_id)
    .bind(template_id)
    .bind(version)
    .bind(error)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

/// Moves the databases' known version to `version` (never back) and drops the failures
/// they have now overcome.
pub(super) async fn advance(
    tx: &mut Tx,
    backend: Backend,
    version: i64,
    ids: &[(i64, String)],
) -> Result<(), StoreError> {
    let list = backend.list(2, ids.len());
    let update = format!(
        "UPDATE databases SET schema_version = {} WHERE schema_version < {} AND id IN ({list})",
        backend.param(1),
        backend.param(1),
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(update)).bind(version);
    if backend == Backend::Sqlite {
        // Anonymous `?` placeholders bind in order of appearance.
        q = q.bind(version);
    }
    for (_, id) in ids {
        q = q.bind(id.clone());
    }
    q.execute(&mut **tx).await?;
    let delete = format!(
        "DELETE FROM migration_failures WHERE version <= {} AND database_id IN ({list})",
        backend.param(1)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(delete)).bind(version);
    for (_, id) in ids {
        q = q.bind(id.clone());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
