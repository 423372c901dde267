//! The provisioner consumer: turns `database.provision_requested` into a database file with
//! its template's schema, marks it ready and emits `database.provisioned`, in one
//! control-plane transaction with the consumer's position.

use std::time::Instant;

use async_trait::async_trait;
use persql_events::{
    Envelope, Handler, HandlerError, ProvisionFailed, ProvisionRequested, Provisioned, Tx, now_ms,
    outbox,
};
use persql_storage::{DbLocation, Storage, StorageError};

use crate::{
    registry::{DatabaseState, get_in},
    waiter::ReadyWaiter,
};

/// Creates databases from templates.
pub struct ProvisionHandler {
    storage: Storage,
    backend: persql_events::Backend,
    waiter: ReadyWaiter,
}

impl ProvisionHandler {
    /// A handler creating files in `storage`, waking `waiter` after each commit.
    pub fn new(storage: Storage, backend: persql_events::Backend, waiter: ReadyWaiter) -> Self {
        Self {
            storage,
            backend,
            waiter,
        }
    }
}

const SOURCE: &str = "/persql/provisioner";

#[async_trait]
impl Handler for ProvisionHandler {
    fn name(&self) -> &'static str {
        "provisioner"
    }

    fn types(&self) -> &'static [&'static str] {
        &["database.provision_requested"]
    }

    async fn handle(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError> {
        let Some(Ok(req)) = event.decode::<ProvisionRequested>() else {
            tracing::error!(id = %event.id, "malformed provision request; skipped");
            return Ok(());
        };
        let started = Instant::now();
        // Idempotent under redelivery: a database already ready (or deleted) is left alone.
        let Some(rec) = get_in(&mut **tx, &req.database_id)
            .await
            .map_err(|e| HandlerError(e.to_string()))?
        else {
            return Ok(());
        };
        if rec.state != DatabaseState::Pending {
            return Ok(());
        }
        let loc = location(&req.namespace_id, &req.database_id)?;
        let template = match &req.template_id {
            Some(t) => Some(location(&req.namespace_id, t)?),
            None => None,
        };
        // The file is created before the transaction commits. If we crash in between, the
        // redelivered request finds the row still pending and `create` replaces the file:
        // nobody can have written to a database that was never reported ready.
        let version = match self.storage.create(&loc, template.as_ref()).await {
            Ok(version) => version,
            Err(StorageError::NotFound) => {
                return fail(
                    tx,
                    self.backend,
                    event,
                    &req,
                    "template database no longer exists",
                )
                .await;
            }
            Err(e) => return Err(HandlerError(format!("creating {}: {e}", req.database_id))),
        };
        // The image carries the template's migration version (its user_version).
        sqlx::query(
            "UPDATE databases SET state = 'ready', ready_at = $1, schema_version = $2 WHERE id = $3",
        )
        .bind(now_ms())
        .bind(version)
            .bind(&req.database_id)
            .execute(&mut **tx)
            .await?;
        let done = Envelope::new(
            SOURCE,
            &event.namespace,
            &event.subject,
            &Provisioned {
                database_id: req.database_id.clone(),
                namespace_id: req.namespace_id.clone(),
                slug: req.slug.clone(),
                template_id: req.template_id.clone(),
                billed_namespace_id: req.billed_namespace_id.clone(),
                duration_us: started.elapsed().as_micros() as u64,
            },
        );
        outbox::append(tx, self.backend, &[done]).await?;
        Ok(())
    }

    async fn committed(&self, events: &[Envelope]) {
        if !events.is_empty() {
            self.waiter.wake();
        }
    }
}

fn location(namespace_id: &str, database_id: &str) -> Result<DbLocation, HandlerError> {
    DbLocation::new(namespace_id, database_id)
        .map_err(|e| HandlerError(format!("bad location: {e}")))
}

async fn fail(
    tx: &mut Tx,
    backend: persql_events::Backend,
    event: &Envelope,
    req: &ProvisionRequested,
    reason: &str,
) -> Result<(), HandlerError> {
    tracing::warn!(database = %req.database_id, reason, "provision failed");
    sqlx::query("UPDATE databases SET state = 'failed', error = $1 WHERE id = $2")
        .bind(reason)
        .bind(&req.database_id)
        .execute(&mut **tx)
        .await?;
    let failed = Envelope::new(
        SOURCE,
        &event.namespace,
        &event.subject,
        &ProvisionFailed {
            database_id: req.database_id.clone(),
            namespace_id: req.namespace_id.clone(),
            reason: reason.to_owned(),
        },
    );
    outbox::append(tx, backend, &[failed]).await?;
    Ok(())
}
