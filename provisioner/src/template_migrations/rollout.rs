//! The rollout: brings every database created from a template up to the template's latest
//! migration, a bounded number at a time, each database's migrations in their own tenant
//! transactions. Progress is committed per page of databases (control-plane
//! `schema_version`, failures, and one `migration.applied` / `migration.failed` event per
//! database, appended together), so a restart resumes with the databases still behind; the
//! tenant file's `user_version` makes re-running a migration on a database impossible.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::StreamExt;
use persql_events::{
    ControlPlane, Envelope, Handler, HandlerError, MigrationApplied, MigrationFailed, StoreError,
    Tx, outbox,
};
use persql_storage::{DbLocation, MigrateOutcome, Migrations, Storage, StorageError};
use sqlx::Row;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::progress::{advance, fail};

const PAGE: i64 = 512;
const SOURCE: &str = "/persql/provisioner";

/// Rolls template migrations out to databases.
pub struct Rollout {
    cp: ControlPlane,
    storage: Storage,
    concurrency: usize,
    wake: Arc<Notify>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Databases whose known version moved forward.
    pub applied: u64,
    /// Databases a migration failed on.
    pub failed: u64,
}

/// One database behind its template.
struct Target {
    id: String,
    namespace_id: String,
    namespace_slug: String,
    known: i64,
}

impl Rollout {
    /// A rollout migrating at most `concurrency` databases at once.
    pub fn new(cp: ControlPlane, storage: Storage, concurrency: usize) -> Self {
        Self {
            cp,
            storage,
            concurrency: concurrency.max(1),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The durable consumer that wakes this rollout on `template.migration_added` and
    /// `template.migration_retried`.
    pub fn trigger(&self) -> RolloutTrigger {
        RolloutTrigger {
            wake: self.wake.clone(),
        }
    }

    /// Runs a pass now, then whenever woken or every `rescan` (databases that became ready
    /// while a pass ran from an older template image), until `shutdown`.
    pub fn spawn(self, rescan: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.pass(&shutdown).await {
                    Ok(r) if r != PassReport::default() => {
                        tracing::info!(
                            applied = r.applied,
                            failed = r.failed,
                            "migration rollout pass"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "migration rollout pass failed; retrying later")
                    }
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(rescan) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        })
    }

    /// Brings every database still behind (and not failed) up to its template's latest
    /// migration.
    pub async fn pass(&self, shutdown: &CancellationToken) -> Result<PassReport, StoreError> {
        let templates = sqlx::query(
            "SELECT template_id, MAX(version) FROM template_migrations GROUP BY template_id",
        )
        .fetch_all(self.cp.pool())
        .await?;
        let mut report = PassReport::default();
        // A page's control-plane commit (shared with query events and metering, so it can
        // wait) overlaps the next page's tenant work; at most one is in flight.
        let mut recording: Option<JoinHandle<Result<PassReport, StoreError>>> = None;
        for r in templates {
            let (template_id, latest): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            let migrations = super::since(&self.cp, &template_id, 0).await?;
            let mut after = String::new();
            while !shutdown.is_cancelled() {
                let page = self.behind(&template_id, latest, &after).await?;
                let Some(last) = page.last() else { break };
                after = last.id.clone();
                let results = futures::stream::iter(page)
                    .map(|t| {
                        let migrations = migrations.clone();
                        async move {
                            let out = self.apply(&t, migrations).await;
                            (t, out)
                        }
                    })
                    .buffer_unordered(self.concurrency)
                    .collect::<Vec<_>>()
                    .await;
                if let Some(previous) = recording.take() {
                    report.add(joined(previous).await?);
                }
                recording = Some(tokio::spawn(record(
                    self.cp.clone(),
                    template_id.clone(),
                    results,
                )));
            }
            if let Some(previous) = recording.take() {
                report.add(joined(previous).await?);
            }
        }
        Ok(report)
    }

    /// Ready databases of the template behind `latest`, not blocked by a failure, by id.
    async fn behind(
        &self,
        template_id: &str,
        latest: i64,
        after: &str,
    ) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.namespace_id, n.slug, d.schema_version FROM databases d \
             JOIN namespaces n ON n.id = d.namespace_id \
             WHERE d.template_id = $1 AND d.state = 'ready' AND d.schema_version < $2 AND d.id > $3 \
             AND NOT EXISTS (SELECT 1 FROM migration_failures f WHERE f.database_id = d.id \
                             AND f.version > d.schema_version AND f.state = 'failed') \
             ORDER BY d.id LIMIT $4",
        )
        .bind(template_id)
        .bind(latest)
        .bind(after)
        .bind(PAGE)
        .fetch_all(self.cp.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Target {
                    id: r.try_get(0)?,
                    namespace_id: r.try_get(1)?,
                    namespace_slug: r.try_get(2)?,
                    known: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn apply(
        &self,
        t: &Target,
        migrations: Migrations,
    ) -> Result<MigrateOutcome, StorageError> {
        let loc = DbLocation::new(&t.namespace_id, &t.id)?;
        self.storage.migrate_uncached(&loc, migrations).await
    }
}

/// The output of a spawned page commit.
async fn joined(
    handle: JoinHandle<Result<PassReport, StoreError>>,
) -> Result<PassReport, StoreError> {
    handle
        .await
        .map_err(|e| StoreError::Apply(format!("recording a rollout page: {e}")))?
}

impl PassReport {
    fn add(&mut self, other: PassReport) {
        self.applied += other.applied;
        self.failed += other.failed;
    }
}

/// Commits one page's outcomes and their events in one control-plane transaction.
async fn record(
    cp: ControlPlane,
    template_id: String,
    results: Vec<(Target, Result<MigrateOutcome, StorageError>)>,
) -> Result<PassReport, StoreError> {
    let template_id = template_id.as_str();
    let backend = cp.backend();
    let mut report = PassReport::default();
    let mut events = Vec::new();
    let mut moved: Vec<(i64, String)> = Vec::new();
    let mut tx = cp.begin().await?;
    for (t, out) in results {
        let out = match out {
            Ok(out) => out,
            // Deleted meanwhile: nothing to migrate.
            Err(StorageError::NotFound) => continue,
            Err(e) => {
                // Not the migration's fault (I/O, a lock held too long): the next pass retries.
                tracing::warn!(database = %t.id, error = %e, "migrating a database failed");
                continue;
            }
        };
        let subject = format!("databases/{}", t.id);
        if out.after > t.known {
            moved.push((out.after, t.id.clone()));
            report.applied += 1;
            events.push(Envelope::new(
                SOURCE,
                &t.namespace_slug,
                &subject,
                &MigrationApplied {
                    database_id: t.id.clone(),
                    namespace_id: t.namespace_id.clone(),
                    template_id: template_id.to_owned(),
                    version: out.after,
                    from_version: t.known,
                },
            ));
        }
        if let Some((version, error)) = out.failed {
            report.failed += 1;
            let error = error.to_string();
            let attempts = fail(&mut tx, template_id, &t.id, version, &error).await?;
            events.push(Envelope::new(
                SOURCE,
                &t.namespace_slug,
                &subject,
                &MigrationFailed {
                    database_id: t.id.clone(),
                    namespace_id: t.namespace_id.clone(),
                    template_id: template_id.to_owned(),
                    version,
                    current_version: out.after.max(t.known),
                    error,
                    attempts: attempts as u64,
                },
            ));
        }
    }
    moved.sort();
    for group in moved.chunk_by(|a, b| a.0 == b.0) {
        for chunk in persql_events::sql::shaped_chunks(group) {
            advance(&mut tx, backend, chunk[0].0, chunk).await?;
        }
    }
    outbox::append(&mut tx, backend, &events).await?;
    cp.commit(tx).await?;
    Ok(report)
}

/// Wakes the rollout when a migration is recorded or retried (any process).
pub struct RolloutTrigger {
    wake: Arc<Notify>,
}

#[async_trait]
impl Handler for RolloutTrigger {
    fn name(&self) -> &'static str {
        "migration-rollout"
    }

    fn types(&self) -> &'static [&'static str] {
        &["template.migration_added", "template.migration_retried"]
    }

    /// The work itself is derived from the registry (databases behind their template), so
    /// the event only has to wake the rollout after it commits.
    async fn handle(&self, _tx: &mut Tx, _event: &Envelope) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn committed(&self, events: &[Envelope]) {
        if !events.is_empty() {
            self.wake.notify_one();
        }
    }
}
