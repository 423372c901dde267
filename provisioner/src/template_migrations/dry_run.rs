//! Dry runs: a migration tried in rolled-back transactions on the template and on a random
//! sample of its databases, reporting which would fail and why; nothing changes.

use futures::StreamExt;
use persql_events::{ControlPlane, StoreError};
use persql_storage::{DbLocation, Migration, Storage, StorageError};
use sqlx::Row;

use super::{MigrationError, NewMigration, Template, since};

/// Databases tried at once.
const CONCURRENCY: usize = 4;

/// A database the migration would fail on.
#[derive(Clone, Debug, PartialEq)]
pub struct DryRunFailure {
    /// `None` for the template itself.
    pub database_id: Option<String>,
    pub slug: Option<String>,
    /// The version that would fail (an earlier one the database still lacks, or this one).
    pub version: i64,
    /// SQLite's message.
    pub error: String,
}

/// What a dry run found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DryRunReport {
    /// Databases of the template tried (the template not included).
    pub sampled: u64,
    /// Where it would fail; empty when it would apply everywhere tried.
    pub failures: Vec<DryRunFailure>,
}

/// Tries `new` (after the migrations each database still lacks) on the template and on up to
/// `sample` of its ready databases chosen at random, each in a transaction rolled back.
pub async fn dry_run(
    cp: &ControlPlane,
    storage: &Storage,
    template: &Template<'_>,
    new: &NewMigration<'_>,
    sample: i64,
) -> Result<DryRunReport, MigrationError> {
    // The same refusals as recording: a dry run answers what the real call would.
    let recorded = super::list(cp, template.id).await?;
    let latest = recorded.last().map_or(0, |m| m.version);
    if let Some(found) = recorded.iter().find(|m| m.version == new.version) {
        if found.checksum != super::checksum(new.sql) {
            return Err(MigrationError::Changed(new.version));
        }
    } else if new.version <= latest {
        return Err(MigrationError::NotIncreasing {
            version: new.version,
            latest,
        });
    }
    let mut all = since(cp, template.id, 0).await?.to_vec();
    all.retain(|m| m.version < new.version);
    all.push(Migration {
        version: new.version,
        sql: new.sql.to_owned(),
    });
    let all: persql_storage::Migrations = all.into();
    let mut report = DryRunReport::default();
    let tpl = template.location()?;
    if let Some((version, e)) = storage
        .try_migrations(&tpl, all.clone())
        .await
        .map_err(MigrationError::Template)?
    {
        report.failures.push(DryRunFailure {
            database_id: None,
            slug: None,
            version,
            error: e.to_string(),
        });
    }
    let picked = pick(cp, template.id, sample).await?;
    report.sampled = picked.len() as u64;
    let tried = futures::stream::iter(picked)
        .map(|(id, namespace_id, slug)| {
            let all = all.clone();
            async move {
                let out = match DbLocation::new(&namespace_id, &id) {
                    Ok(loc) => storage.try_migrations(&loc, all).await,
                    Err(e) => Err(e),
                };
                (id, slug, out)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for (id, slug, out) in tried {
        match out {
            Ok(None) | Err(StorageError::NotFound) => {}
            Ok(Some((version, e))) => report.failures.push(DryRunFailure {
                database_id: Some(id),
                slug: Some(slug),
                version,
                error: e.to_string(),
            }),
            Err(e) => return Err(MigrationError::Template(e)),
        }
    }
    report.failures.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(report)
}

/// Up to `n` ready databases of the template, chosen at random: (id, namespace id, slug).
async fn pick(
    cp: &ControlPlane,
    template_id: &str,
    n: i64,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, namespace_id, slug FROM databases WHERE template_id = $1 AND state = 'ready' \
         ORDER BY random() LIMIT $2",
    )
    .bind(template_id)
    .bind(n)
    .fetch_all(cp.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}
