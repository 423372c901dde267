//! Progress of a template's migrations: counts per version, the databases a version failed
//! on (with SQLite's error), and retrying them.
//!
//! A database has migration `v` when its control-plane `schema_version` is at least `v`
//! (set at provision from the template image, moved by the rollout); it failed `v` when a
//! `migration_failures` row says so; otherwise `v` is pending for it.

use persql_events::{ControlPlane, Envelope, StoreError, TemplateMigrationRetried, outbox};
use sqlx::Row;

use super::{MigrationError, Template, TemplateMigration, list};

/// How far one migration has come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationCounts {
    /// Ready databases created from the template.
    pub total: i64,
    pub applied: i64,
    pub pending: i64,
    pub failed: i64,
}

/// A migration with its counts.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationStatus {
    pub migration: TemplateMigration,
    pub counts: MigrationCounts,
}

/// A database a migration failed on.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedDatabase {
    pub database_id: String,
    pub slug: String,
    /// The version it stays at.
    pub current_version: i64,
    /// SQLite's message.
    pub error: String,
    pub attempts: i64,
    pub updated_at: i64,
}

/// Every migration of the template with its counts, oldest first.
pub async fn statuses(
    cp: &ControlPlane,
    template_id: &str,
) -> Result<Vec<MigrationStatus>, StoreError> {
    let migrations = list(cp, template_id).await?;
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM databases WHERE template_id = $1 AND state = 'ready'")
            .bind(template_id)
            .fetch_one(cp.pool())
            .await?
            .try_get(0)?;
    let mut out = Vec::with_capacity(migrations.len());
    for migration in migrations {
        let counts = counts(cp, template_id, migration.version, total).await?;
        out.push(MigrationStatus { migration, counts });
    }
    Ok(out)
}

async fn counts(
    cp: &ControlPlane,
    template_id: &str,
    version: i64,
    total: i64,
) -> Result<MigrationCounts, StoreError> {
    let applied: i64 = sqlx::query(
        "SELECT COUNT(*) FROM databases WHERE template_id = $1 AND state = 'ready' \
         AND schema_version >= $2",
    )
    .bind(template_id)
    .bind(version)
    .fetch_one(cp.pool())
    .await?
    .try_get(0)?;
    let failed: i64 = sqlx::query(
        "SELECT COUNT(*) FROM migration_failures f JOIN databases d ON d.id = f.database_id \
         WHERE f.template_id = $1 AND f.version = $2 AND f.state = 'failed' \
         AND d.state = 'ready' AND d.schema_version < $2",
    )
    .bind(template_id)
    .bind(version)
    .fetch_one(cp.pool())
    .await?
    .try_get(0)?;
    Ok(MigrationCounts {
        total,
        applied,
        failed,
        pending: (total - applied - failed).max(0),
    })
}

/// One migration with its counts.
pub async fn status(
    cp: &ControlPlane,
    template_id: &str,
    version: i64,
) -> Result<MigrationStatus, MigrationError> {
    let migration = super::find(cp, template_id, version)
        .await?
        .ok_or(MigrationError::NotFound)?;
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM databases WHERE template_id = $1 AND state = 'ready'")
            .bind(template_id)
            .fetch_one(cp.pool())
            .await?
            .try_get(0)?;
    let counts = counts(cp, template_id, version, total).await?;
    Ok(MigrationStatus { migration, counts })
}

/// Up to `limit` databases migration `version` failed on, by id after `after`.
pub async fn failures(
    cp: &ControlPlane,
    template_id: &str,
    version: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<FailedDatabase>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.id, d.slug, d.schema_version, f.error, f.attempts, f.updated_at \
         FROM migration_failures f JOIN databases d ON d.id = f.database_id \
         WHERE f.template_id = $1 AND f.version = $2 AND f.state = 'failed' \
         AND d.schema_version < $2 AND d.id > $3 \
         ORDER BY d.id LIMIT $4",
    )
    .bind(template_id)
    .bind(version)
    .bind(after)
    .bind(limit)
    .fetch_all(cp.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FailedDatabase {
                database_id: r.try_get(0)?,
                slug: r.try_get(1)?,
                current_version: r.try_get(2)?,
                error: r.try_get(3)?,
                attempts: r.try_get(4)?,
                updated_at: r.try_get(5)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Queues the databases migration `version` failed on for another attempt (their rows turn
/// `retrying`, keeping the attempt count) and appends `template.migration_retried`, which
/// wakes the rollout. Returns how many were queued.
pub async fn retry(
    cp: &ControlPlane,
    template: &Template<'_>,
    version: i64,
) -> Result<u64, MigrationError> {
    super::find(cp, template.id, version)
        .await?
        .ok_or(MigrationError::NotFound)?;
    let mut tx = cp.begin().await?;
    let queued = sqlx::query(
        "UPDATE migration_failures SET state = 'retrying' \
         WHERE template_id = $1 AND version = $2 AND state = 'failed'",
    )
    .bind(template.id)
    .bind(version)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let event = Envelope::new(
        super::SOURCE,
        template.namespace_slug,
        &format!("databases/{}", template.id),
        &TemplateMigrationRetried {
            template_id: template.id.to_owned(),
            namespace_id: template.namespace_id.to_owned(),
            version,
            databases: queued,
        },
    );
    outbox::append(&mut tx, cp.backend(), &[event]).await?;
    cp.commit(tx).await?;
    Ok(queued)
}
