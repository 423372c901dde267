//! Template migrations: each template's ordered, immutable list of migrations, recorded
//! after they applied to the template itself, then rolled out to every database created from
//! it (`rollout`), applied lazily before a query reaches a database still behind (`catch_up`),
//! tried without effect (`dry_run`), and reported (`status`).

pub mod dry_run;
mod progress;
pub mod rollout;
pub mod status;
pub mod versions;

use persql_events::{ControlPlane, Envelope, StoreError, TemplateMigrationAdded, now_ms, outbox};
use persql_storage::{DbLocation, MigrateOutcome, Migration, Migrations, Storage, StorageError};
use sha2::{Digest, Sha256};
use sqlx::{Row, any::AnyRow};

pub use dry_run::{DryRunFailure, DryRunReport};
pub use rollout::{Rollout, RolloutTrigger};
pub use status::{FailedDatabase, MigrationCounts, MigrationStatus};
pub use versions::TemplateVersions;

/// A recorded migration of a template.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateMigration {
    pub version: i64,
    pub name: String,
    pub sql: String,
    /// Hex SHA-256 of `sql`.
    pub checksum: String,
    pub created_at: i64,
}

/// A migration to record.
#[derive(Clone, Debug)]
pub struct NewMigration<'a> {
    pub version: i64,
    pub name: &'a str,
    pub sql: &'a str,
}

/// The template a migration belongs to.
#[derive(Clone, Debug)]
pub struct Template<'a> {
    pub id: &'a str,
    pub namespace_id: &'a str,
    pub namespace_slug: &'a str,
}

impl Template<'_> {
    fn location(&self) -> Result<DbLocation, MigrationError> {
        DbLocation::new(self.namespace_id, self.id).map_err(MigrationError::Template)
    }
}

/// Why a migration could not be recorded (or inspected).
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This version is recorded with different SQL: migrations are immutable.
    #[error("migration {0} is already recorded with different SQL")]
    Changed(i64),
    /// Versions must increase: `latest` is already recorded.
    #[error("version {version} is not above the latest recorded version {latest}")]
    NotIncreasing { version: i64, latest: i64 },
    /// The SQL failed on the template (rolled back, nothing recorded).
    #[error("the migration failed on the template: {0}")]
    Template(StorageError),
    /// No such migration version.
    #[error("no such migration")]
    NotFound,
}

impl From<sqlx::Error> for MigrationError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

/// Hex SHA-256 of a migration's SQL, as `persql migrate` computes it for its files.
pub fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

const SOURCE: &str = "/persql/api";

fn migration(r: &AnyRow) -> Result<TemplateMigration, sqlx::Error> {
    Ok(TemplateMigration {
        version: r.try_get(0)?,
        name: r.try_get(1)?,
        sql: r.try_get(2)?,
        checksum: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

/// The template's migrations, oldest first.
pub async fn list(
    cp: &ControlPlane,
    template_id: &str,
) -> Result<Vec<TemplateMigration>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, name, sql, checksum, created_at FROM template_migrations \
         WHERE template_id = $1 ORDER BY version",
    )
    .bind(template_id)
    .fetch_all(cp.pool())
    .await?;
    Ok(rows.iter().map(migration).collect::<Result<_, _>>()?)
}

/// The template's migrations above `after`, oldest first, as storage applies them.
pub async fn since(
    cp: &ControlPlane,
    template_id: &str,
    after: i64,
) -> Result<Migrations, StoreError> {
    let rows = sqlx::query(
        "SELECT version, sql FROM template_migrations WHERE template_id = $1 AND version > $2 \
         ORDER BY version",
    )
    .bind(template_id)
    .bind(after)
    .fetch_all(cp.pool())
    .await?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(Migration {
                version: r.try_get(0)?,
                sql: r.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(list.into())
}

/// Records a migration: idempotent for the same version and SQL, 409-worthy for the same
/// version with other SQL or a version not above the latest. The migration is applied to the
/// template first (one transaction, with every earlier one the template may lack); if that
/// fails nothing is recorded. Recording appends `template.migration_added` in the same
/// control-plane transaction, which is held (a per-template advisory lock on Postgres, the
/// write lock on SQLite) while the template is migrated, so concurrent calls for one
/// template apply and record in one order. The flag says whether this call recorded it.
pub async fn record(
    cp: &ControlPlane,
    storage: &Storage,
    template: &Template<'_>,
    new: &NewMigration<'_>,
) -> Result<(TemplateMigration, bool), MigrationError> {
    let sum = checksum(new.sql);
    // Fast path for re-runs (`persql migrate` skips these itself, curl may not).
    if let Some(found) = find(cp, template.id, new.version).await? {
        return same_or_changed(found, &sum);
    }
    let mut tx = cp.begin().await?;
    if cp.backend() == persql_events::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7202, hashtext($1))")
            .bind(template.id)
            .execute(&mut *tx)
            .await?;
    }
    let rows = sqlx::query(
        "SELECT version, name, sql, checksum, created_at FROM template_migrations \
         WHERE template_id = $1 ORDER BY version",
    )
    .bind(template.id)
    .fetch_all(&mut *tx)
    .await?;
    let recorded = rows.iter().map(migration).collect::<Result<Vec<_>, _>>()?;
    if let Some(found) = recorded.iter().find(|m| m.version == new.version) {
        return same_or_changed(found.clone(), &sum);
    }
    let latest = recorded.last().map_or(0, |m| m.version);
    if new.version <= latest {
        return Err(MigrationError::NotIncreasing {
            version: new.version,
            latest,
        });
    }
    let mut all: Vec<Migration> = recorded
        .into_iter()
        .map(|m| Migration {
            version: m.version,
            sql: m.sql,
        })
        .collect();
    all.push(Migration {
        version: new.version,
        sql: new.sql.to_owned(),
    });
    let outcome: MigrateOutcome = storage
        .migrate(&template.location()?, all.into())
        .await
        .map_err(MigrationError::Template)?;
    if let Some((_, e)) = outcome.failed {
        return Err(MigrationError::Template(e));
    }
    let created_at = now_ms();
    sqlx::query(
        "INSERT INTO template_migrations (template_id, version, name, sql, checksum, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(template.id)
    .bind(new.version)
    .bind(new.name)
    .bind(new.sql)
    .bind(&sum)
    .bind(created_at)
    .execute(&mut *tx)
    .await?;
    let event = Envelope::new(
        SOURCE,
        template.namespace_slug,
        &format!("databases/{}", template.id),
        &TemplateMigrationAdded {
            template_id: template.id.to_owned(),
            namespace_id: template.namespace_id.to_owned(),
            version: new.version,
            name: new.name.to_owned(),
            checksum: sum.clone(),
        },
    );
    outbox::append(&mut tx, cp.backend(), &[event]).await?;
    // Should this commit fail after the template committed, the template is one version
    // ahead of the record; a retried call finds its user_version there and records it.
    cp.commit(tx).await?;
    Ok((
        TemplateMigration {
            version: new.version,
            name: new.name.to_owned(),
            sql: new.sql.to_owned(),
            checksum: sum,
            created_at,
        },
        true,
    ))
}

/// The recorded migration when its SQL is the same, else `Changed`.
fn same_or_changed(
    found: TemplateMigration,
    sum: &str,
) -> Result<(TemplateMigration, bool), MigrationError> {
    if found.checksum == sum {
        Ok((found, false))
    } else {
        Err(MigrationError::Changed(found.version))
    }
}

/// Migration `version` of the template.
pub async fn find(
    cp: &ControlPlane,
    template_id: &str,
    version: i64,
) -> Result<Option<TemplateMigration>, StoreError> {
    let row = sqlx::query(
        "SELECT version, name, sql, checksum, created_at FROM template_migrations \
         WHERE template_id = $1 AND version = $2",
    )
    .bind(template_id)
    .bind(version)
    .fetch_optional(cp.pool())
    .await?;
    Ok(row.as_ref().map(migration).transpose()?)
}

/// Brings one database up to its template's latest migration before it is queried:
/// applies what is above `known` (a hint; the file's user_version decides), caching the
/// database's handle. The control plane learns of it from the next rollout pass.
pub async fn catch_up(
    cp: &ControlPlane,
    storage: &Storage,
    template_id: &str,
    loc: &DbLocation,
    known: i64,
) -> Result<MigrateOutcome, MigrationError> {
    let pending = since(cp, template_id, known).await?;
    storage
        .migrate(loc, pending)
        .await
        .map_err(MigrationError::Template)
}
